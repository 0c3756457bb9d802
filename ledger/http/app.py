"""The FastAPI application: state, limits, security headers, health, the API and the pages.

    app = create_app(ServerState(ledger_path, verifier, recorder))

Limits on every request: the URL (:data:`MAX_URL`), the body
(:data:`MAX_BODY`: only the login form has one), the page size (1,000) and
the time a query may take (``request_seconds``). No route takes a file path
or SQL. Every response carries ``X-Content-Type-Options: nosniff`` and a
strict Content-Security-Policy; answers are ``Cache-Control: no-store``
unless they are the public OpenAPI document, the health checks or the
stylesheet.
"""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ledger.store import reads

from . import timing
from .cursor import CursorSigner
from .problems import error_response, install

MAX_URL = 4096
MAX_BODY = 16 * 1024
#: No script by default; the pages that verify in the browser add script-src 'self' (proofs_pages.py).
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
#: Readable without a token and not forced to no-store: no personal data (checkpoints and the log's
#: verifier keys are public statements meant to be copied to witnesses and customers).
_PUBLIC = ("/openapi.json", "/healthz", "/readyz", "/static/", "/v1/checkpoints", "/v1/log-vkey",
           "/v1/report-vkey")


@dataclass
class ServerState:
    ledger_path: Path
    verifier: object  # tokens.TokenVerifier
    recorder: object  # recording.ReadRecorder
    signer: CursorSigner = field(default_factory=CursorSigner)
    request_seconds: float = 10.0
    secure_cookies: bool = False
    log_origin: str = "ledger.local/audit"
    log_vkeys: tuple = ()  # tlog.note.Verifier of the log key(s) given to --log-vkey
    witness_vkeys: tuple = ()  # tlog.note.Verifier of the witnesses' keys given to --witness-vkey
    report_signer: object = None  # tlog.note.Signer of --report-key: signs subject reports; None: not configured
    kafka_lag: object = None  # readiness.KafkaLag; None: Kafka not configured
    #: Threads that run the routes' SQLite work (anyio's default is 40). The queries hold the GIL
    #: for most of their time, so more threads only queue for it (and keep more connections open).
    threads: int = 8
    #: Send a Server-Timing header (time recording the read, time in the application): --server-timing.
    server_timing: bool = False
    #: Called when the server stops (a worker process closes its recorder this way).
    on_shutdown: list = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def ledger(self):
        """This thread's read-only Ledger (opened once per worker thread, like the CLI's reader)."""
        led = getattr(self._local, "ledger", None)
        if led is None:
            from ..store import READER_CACHE_KIB, Ledger

            led = Ledger.open(self.ledger_path, readonly=True, cache_kib=READER_CACHE_KIB)
            self._local.ledger = led
        return led


class LimitsAndHeaders:
    """Pure ASGI middleware (Starlette's BaseHTTPMiddleware costs a task per request): limits, headers, request id."""

    def __init__(self, app, server_timing: bool = False):
        self.app = app
        self.server_timing = server_timing

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        spans = timing.open_table() if self.server_timing else None
        started = time.perf_counter_ns()
        scope.setdefault("state", {})["request_id"] = str(uuid.uuid4())
        headers = dict((k.lower(), v) for k, v in scope.get("headers", ()))
        refusal = None
        if len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b"")) > MAX_URL:
            refusal = error_response(414, "uri_too_long", f"the URL is longer than {MAX_URL} characters")
        elif b"transfer-encoding" in headers:
            refusal = error_response(411, "length_required", "send a Content-Length; chunked bodies are refused")
        elif b"content-length" in headers and (not headers[b"content-length"].isdigit()
                                               or int(headers[b"content-length"]) > MAX_BODY):
            refusal = error_response(413, "too_large", f"request bodies are limited to {MAX_BODY} bytes")
        public = scope["path"].startswith(_PUBLIC)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                raw = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS
                       and not (k.lower() == b"cache-control" and not public)]
                has_csp = any(k.lower() == b"content-security-policy" for k, _ in message.get("headers", []))
                csp = [v for k, v in message.get("headers", []) if k.lower() == b"content-security-policy"]
                raw += [(b"content-security-policy", csp[0] if has_csp else CSP.encode()),
                        (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                        (b"x-frame-options", b"DENY")]
                if not public:
                    raw.append((b"cache-control", b"no-store"))
                if spans is not None:
                    spans["app"] = (time.perf_counter_ns() - started) / 1e6
                    raw.append((b"server-timing", timing.header_value(spans)))
                message = {**message, "headers": raw}
            await send(message)

        if refusal is not None:
            return await refusal(scope, receive, send_with_headers)
        await self.app(scope, receive, send_with_headers)


_OURS = {b"content-security-policy", b"x-content-type-options", b"referrer-policy", b"x-frame-options"}


def create_app(state: ServerState) -> FastAPI:
    from . import api, findings, pages, proofs, proofs_pages
    from .readiness import kafka_lag_report

    @asynccontextmanager
    async def lifespan(app):
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = state.threads
        try:
            yield
        finally:
            for stop in state.on_shutdown:
                stop()

    app = FastAPI(title="ledger", version="1", lifespan=lifespan,
                  description="Who saw which customer's data, when, and why: the ledger's read API. Every "
                              "answered read of customer data is itself recorded in the ledger.",
                  docs_url=None, redoc_url=None)
    app.state.ledger_http = state
    install(app)

    app.add_middleware(LimitsAndHeaders, server_timing=state.server_timing)

    @app.get("/healthz", include_in_schema=True, summary="the process is up")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="the ledger is open; how recent its newest entry is; reads waiting in the outbox; "
                              "how far behind Kafka the writer is")
    def readyz(request: Request):
        try:
            led = state.ledger()
            heads = led.heads()
            newest_ms = reads.newest_timestamp(led)
        except Exception as err:  # any failure to read means not ready
            return error_response(503, "not_ready", f"the ledger cannot be read: {type(err).__name__}")
        behind = None if newest_ms is None else max(0.0, time.time() - newest_ms / 1000)
        return JSONResponse({
            "status": "ready", "partitions": len(heads),
            "newest_recorded_at": None if newest_ms is None else
            datetime.fromtimestamp(newest_ms / 1000, UTC).isoformat().replace("+00:00", "Z"),
            "seconds_since_newest_entry": behind,
            "reads_waiting_in_outbox": state.recorder.pending(),
            "kafka": kafka_lag_report(state.kafka_lag, led),
        })

    app.include_router(api.router)
    app.include_router(proofs.public_router)
    app.include_router(proofs.router)
    app.include_router(findings.router)
    app.include_router(pages.router)
    app.include_router(proofs_pages.router)
    pages.mount_static(app)
    return app
