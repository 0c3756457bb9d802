"""``ledger witness serve``: the HTTP binding of a witness (c2sp.org/tlog-witness).

The protocol is :class:`ledger.tlog.witness.Witness`; this module only maps requests to it.
The submission and the monitoring prefix are both the server's root::

    POST /add-checkpoint                     cosign a checkpoint (400/403/404/409/422/200, per the spec)
    GET  /<hex SHA-256 of origin>/checkpoint the latest checkpoint cosigned for that origin, with the
                                             log's signatures and ours (404 if none): for monitors
    GET  /healthz                            200 "ok" (process up, for supervisors)

Limits, because anyone may call a witness: a body above :data:`MAX_REQUEST_BYTES` is answered 413
(from the ``Content-Length`` before any byte is read; a chunked one once it passes the limit, after
reading and dropping up to :data:`DRAIN_BYTES` so that the client can read the answer); a body not
received within :data:`BODY_SECONDS` is answered 408; uvicorn bounds the header block and the
number of connections. Any other path is 404, another method 405 with ``Allow``. An unexpected
error is logged with its traceback and answered ``500`` in plain text: a client never sees a
traceback.

A plain ASGI application under uvicorn (the only thing it needs from the ``http`` extra), no
FastAPI: four routes do not need a framework. The witness's SQLite work runs in a worker thread,
so a slow disk never stalls the event loop; :class:`Witness` serialises it and keeps the size
check and update in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import re

from ledger.tlog.witness import MAX_REQUEST_BYTES, Response, Witness

log = logging.getLogger("ledger.witness")

BODY_SECONDS = 10.0
DRAIN_BYTES = 1 << 20  # a body too large is still read (and dropped) up to here before the 413
MAX_CONNECTIONS = 64
_CHECKPOINT_PATH = re.compile(r"/([0-9a-f]{64})/checkpoint")
_ROUTES = "this witness serves POST /add-checkpoint and GET /<hex SHA-256 of the origin>/checkpoint"


class _Early(Exception):
    """The request is answered before its body was read (too large, too slow, client gone)."""

    def __init__(self, response: Response | None):
        self.response = response


class WitnessApp:
    """The ASGI application around one :class:`Witness`."""

    def __init__(self, witness: Witness, *, body_seconds: float = BODY_SECONDS):
        self.witness = witness
        self.body_seconds = body_seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":  # lifespan and websocket are switched off in serve()
            return
        method, path = scope["method"], scope["path"]
        headers: list[tuple[bytes, bytes]] = []
        try:
            response, headers = await self._route(method, path, scope, receive)
        except _Early as early:
            if early.response is None:  # the client went away: nobody to answer
                return
            response, headers = early.response, [(b"connection", b"close")]
        except Exception:
            log.exception("internal error answering %s %s", method, path[:200])
            response = Response.text(500, "internal error in the witness (logged); try again later")
        await _send(send, response, headers, head=method == "HEAD")

    async def _route(self, method: str, path: str, scope, receive):
        if path == "/add-checkpoint":
            if method != "POST":
                return Response.text(405, "add-checkpoint takes POST"), [(b"allow", b"POST")]
            body = await self._body(scope, receive)
            response = await asyncio.to_thread(self.witness.add_checkpoint, body)
            _log_add(response, body)
            return response, [(b"cache-control", b"no-store")]
        match = _CHECKPOINT_PATH.fullmatch(path)
        if match or path == "/healthz":
            if method not in ("GET", "HEAD"):
                return Response.text(405, f"{path} takes GET"), [(b"allow", b"GET, HEAD")]
            if match is None:
                return Response.text(200, "ok"), [(b"cache-control", b"no-store")]
            return await asyncio.to_thread(self.witness.checkpoint_for, match.group(1)), []
        return Response.text(404, f"no such path: {_ROUTES}"), []

    async def _body(self, scope, receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
            raise _Early(_too_large(int(declared)))
        chunks, size = [], 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_seconds
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=max(deadline - loop.time(), 0.001))
            except TimeoutError:
                raise _Early(Response.text(408, f"the request body did not arrive within "
                                                f"{self.body_seconds:g} s")) from None
            if message["type"] == "http.disconnect":
                raise _Early(None)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_REQUEST_BYTES:
                if size > DRAIN_BYTES or not message.get("more_body"):
                    raise _Early(_too_large(size, at_least=message.get("more_body", False)))
                chunks = []  # read on (discarding) so that the client, still sending, gets to read the 413
                continue
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


def _too_large(size: int, *, at_least: bool = False) -> Response:
    more = "at least " if at_least else ""
    return Response.text(413, f"request body of {more}{size} bytes is above the {MAX_REQUEST_BYTES}-byte limit "
                              "of an add-checkpoint request")


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _log_add(response: Response, body: bytes) -> None:
    if response.status == 200:
        log.info("add-checkpoint 200: cosigned (%d-byte request)", len(body))
    else:
        reason = response.body.decode("utf-8", "replace").strip().replace("\n", " ")[:300]
        log.info("add-checkpoint %d: %s", response.status, reason)


async def _send(send, response: Response, extra: list[tuple[bytes, bytes]], *, head: bool = False) -> None:
    headers = [(b"content-type", response.content_type.encode("ascii")),
               (b"content-length", str(len(response.body)).encode("ascii")),
               (b"x-content-type-options", b"nosniff"), *extra]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body})


def serve(witness: Witness, host: str, port: int, *, certfile: str | None = None,
          keyfile: str | None = None) -> int:
    """Run the witness under uvicorn until SIGINT/SIGTERM; closes the state file afterwards."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        uvicorn.run(WitnessApp(witness), host=host, port=port, http="h11", ws="none", lifespan="off",
                    log_level="info", access_log=False, server_header=False, date_header=True,
                    ssl_certfile=certfile, ssl_keyfile=keyfile, limit_concurrency=MAX_CONNECTIONS,
                    timeout_keep_alive=15, h11_max_incomplete_event_size=16 * 1024,
                    timeout_graceful_shutdown=5)
    finally:
        witness.close()
    return 0
