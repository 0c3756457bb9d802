"""The bearer token of a request (``Authorization: Bearer`` or the login cookie) → a Principal.

The cookie is set by the login form (HttpOnly, SameSite=Strict, Secure over
TLS) and is accepted on GET requests only; state-changing forms carry a
CSRF token besides (pages.py). A missing, malformed, forged, expired or
revoked token is a 401 with ``WWW-Authenticate: Bearer``; the token itself
never appears in an answer or a log line.
"""

from __future__ import annotations

from fastapi import Request

from .problems import forbidden, not_found, unauthorized
from .tokens import SCOPE_ADMIN, SCOPE_AUDIT, Principal, TokenError

COOKIE = "ledger_session"


def bearer_of(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        return token.strip()
    if request.method in ("GET", "HEAD"):
        return request.cookies.get(COOKIE)
    return None


def principal(request: Request) -> Principal:
    """The verified principal of ``request``; a 401 ApiError when there is none."""
    token = bearer_of(request)
    if not token:
        raise unauthorized("this needs a bearer token (Authorization: Bearer <token>)")
    try:
        return request.app.state.ledger_http.verifier.verify(token)
    except TokenError as err:
        raise unauthorized(err.reason) from None


def auditor(request: Request) -> Principal:
    """An ``audit:read`` principal; a subject token gets 404 (it must not learn what exists)."""
    p = principal(request)
    if p.is_subject:
        raise not_found()
    if not p.can(SCOPE_AUDIT):
        raise forbidden(SCOPE_AUDIT)
    return p


def admin(request: Request) -> Principal:
    p = principal(request)
    if p.is_subject:
        raise not_found()
    if not p.can(SCOPE_ADMIN):
        raise forbidden(SCOPE_ADMIN)
    return p


def reader_of_subject(request: Request, subject_id: str) -> Principal:
    """An auditor, or the subject token of ``subject_id`` itself; another customer's token gets 404."""
    p = principal(request)
    if p.is_subject:
        if p.subject != subject_id:
            raise not_found()
        return p
    if not p.can(SCOPE_AUDIT):
        raise forbidden(SCOPE_AUDIT)
    return p


def any_reader(request: Request) -> Principal:
    return principal(request)


__all__ = ["COOKIE", "principal", "auditor", "admin", "reader_of_subject", "any_reader"]
