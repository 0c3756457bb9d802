"""One JSON error shape for every error the server sends: ``{"error": {"code", "message", "field"}}``.

Library errors keep their meaning: a :class:`~ledger.errors.ValidationError`
is a 422 naming the parameter, a StoreError a 503 (the ledger file could
not be read; retrying may help). Anything unexpected is a 500 whose message
says nothing about the inside; the traceback goes to the server's log only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import LedgerError, StoreError, ValidationError
from .recording import RecordingError
from .tokens import TokenError

log = logging.getLogger("ledger.http")

NO_STORE = {"Cache-Control": "no-store"}


class ApiError(Exception):
    """An answer other than 2xx, with the code a client can branch on."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None):
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}
        super().__init__(message)


def not_found(what: str = "no such resource") -> ApiError:
    # The same answer whether the id exists or the token may not see it (a subject token must not learn which).
    return ApiError(404, "not_found", what)


def unauthorized(reason: str) -> ApiError:
    return ApiError(401, "unauthorized", reason,
                    headers={"WWW-Authenticate": 'Bearer realm="ledger", error="invalid_token"'})


def forbidden(scope: str) -> ApiError:
    return ApiError(403, "insufficient_scope", f"this needs a token with scope {scope}",
                    headers={"WWW-Authenticate": f'Bearer realm="ledger", error="insufficient_scope", scope="{scope}"'})


def error_body(code: str, message: str, field: str | None = None) -> dict:
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, field), status_code=status, headers={**NO_STORE, **(headers or {})})


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 406: "not_acceptable", 413: "too_large", 415: "unsupported_media_type",
                 429: "too_many_requests"}


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the one error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(TokenError)
    async def _token_error(request: Request, exc: TokenError):
        e = unauthorized(exc.reason)
        return error_response(e.status, e.code, e.message, None, e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404:
            message = "no such resource"
        return error_response(exc.status_code, code, message, None, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("query", "path", "header", "body")]
        return error_response(422, "invalid_parameter", str(first.get("msg", "invalid request")),
                              ".".join(loc) or None)

    @app.exception_handler(ValidationError)
    async def _ledger_validation(request: Request, exc: ValidationError):
        return error_response(422, "invalid_parameter", exc.reason, exc.field.lstrip("-").replace("-", "_"))

    @app.exception_handler(RecordingError)
    async def _recording_error(request: Request, exc: RecordingError):
        return error_response(503, "recording_failed", str(exc))

    @app.exception_handler(LedgerError)
    async def _ledger_error(request: Request, exc: LedgerError):
        if isinstance(exc, StoreError):
            return error_response(503, "ledger_unavailable", f"the ledger cannot be read now: {exc}")
        return error_response(400, "bad_request", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "the server failed to answer; the error is in its log")
