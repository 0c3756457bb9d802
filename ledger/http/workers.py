"""``ledger serve --workers N``: N server processes, each listening on its own socket of one port.

    run_workers(config, uvicorn_options, handed)   # returns when stopped (SIGTERM, SIGINT)

uvicorn's own supervisor binds one socket and lets every worker accept from
it; the kernel then wakes whichever worker it likes, and under a steady load
one worker took 80-99 % of the keep-alive connections in some runs. Here
each worker binds its own socket with ``SO_REUSEPORT`` (Linux), so the
kernel spreads new connections over the listening workers by a hash of
their addresses. The parent binds the port first (without listening: it
gets no connections) to resolve port 0 and to keep the port while a worker
restarts; it starts the workers (multiprocessing's spawn, as uvicorn does),
restarts one that dies, and on SIGTERM or SIGINT passes SIGTERM on and
waits for their graceful shutdown. The workers build their application from
the configuration the parent checked (``handed``: the JSON that
server.worker_app reads from :data:`server.WORKER_ENV`, with the one cursor
secret and the one outbox of all of them). Where the platform has no
``SO_REUSEPORT`` the caller keeps uvicorn's shared socket
(:func:`reuseport_available`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

log = logging.getLogger("ledger.http.workers")

#: A worker that dies sooner than this after its start counts as failing to start.
QUICK_DEATH_SECONDS = 5.0
#: This many quick deaths in a row of one worker stop the server (a bad start is not retried for ever).
MAX_QUICK_DEATHS = 3
GRACE_SECONDS = 15.0  # uvicorn's graceful shutdown is 10 s; then SIGKILL


def reuseport_available() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port with SO_REUSEPORT (and SO_REUSEADDR), not yet listening."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def run_workers(host: str, port: int, workers: int, options: dict, handed: str) -> int:
    """Run ``workers`` processes until SIGTERM/SIGINT; the exit status (1 when a worker cannot start)."""
    from ..errors import ConfigError

    try:
        reserved = reuseport_socket(host, port)
    except OSError as err:
        raise ConfigError(f"--listen {host}:{port}: cannot bind: {err.strerror or err}") from err
    port = reserved.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start(slot: int):
        proc = context.Process(target=_worker_main, args=(host, port, options, handed),
                               name=f"ledger-serve-worker-{slot}")
        proc.start()
        return proc, time.monotonic()

    def stop(signum, frame):
        stopping.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    scheme = "https" if options.get("ssl_certfile") else "http"
    log.info("serving on %s://%s:%d with %d worker processes (one SO_REUSEPORT socket each)",
             scheme, host, port, workers)
    running = [start(slot) for slot in range(workers)]
    quick_deaths = [0] * workers
    status = 0
    try:
        while not stopping.wait(0.5):
            for slot, (proc, started) in enumerate(running):
                if proc.is_alive():
                    continue
                quick = time.monotonic() - started < QUICK_DEATH_SECONDS
                quick_deaths[slot] = quick_deaths[slot] + 1 if quick else 0
                if quick_deaths[slot] >= MAX_QUICK_DEATHS:
                    log.error("worker %d exited %d times within %g s of starting (last status %s); stopping",
                              slot, MAX_QUICK_DEATHS, QUICK_DEATH_SECONDS, proc.exitcode)
                    status = 1
                    stopping.set()
                    break
                log.warning("worker %d (pid %s) exited with status %s; starting another", slot, proc.pid,
                            proc.exitcode)
                running[slot] = start(slot)
    finally:
        for proc, _ in running:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + GRACE_SECONDS
        for proc, _ in running:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        reserved.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return status


def _worker_main(host: str, port: int, options: dict, handed: str) -> None:
    """One worker process: its own listening socket on the shared port, the application, uvicorn."""
    import uvicorn

    from .server import WORKER_ENV, worker_app

    os.environ[WORKER_ENV] = handed
    sock = reuseport_socket(host, port)
    app = worker_app()
    server = uvicorn.Server(uvicorn.Config(app, **options))
    server.run(sockets=[sock])
