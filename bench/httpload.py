"""A bounded open-loop HTTP load on loopback: request i is due at start + i/rate, taken by one of N clients.

    result = run_load("http://127.0.0.1:8080", paths, headers, rate=200, clients=20)
    result.latencies_ms      # from when each request was due (no coordinated omission)

Each client is one keep-alive HTTP/1.1 connection written on asyncio streams
(a few µs of CPU per request): the load shares the two cores with the
server and the broker, and a general-purpose client (httpx costs ~1 ms of CPU
per request here) would take a good part of what it measures. A client
takes the next due request when it is free, so at most ``clients`` requests
are in flight ("bounded"); a request that waits for a free client counts
that wait in its latency, because the latency runs from when it was due.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)  # from when due
    service_ms: list[float] = field(default_factory=list)  # from when sent
    errors: dict[str, int] = field(default_factory=dict)  # status (or exception name) -> count
    server_timing: dict[str, list[float]] = field(default_factory=dict)  # span -> ms, from Server-Timing headers
    offered: float = 0.0
    achieved: float = 0.0  # completed requests per second over the whole run


class _Connection:
    def __init__(self, host: str, port: int, headers: dict[str, str]):
        self.host, self.port = host, port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, bytes, str | None]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\n{self.head}\r\n".encode())
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close, timing = None, False, False, None
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.lower() == "close":
                close = True
            elif name == "server-timing":
                timing = value
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        else:
            body = await self.reader.readexactly(length or 0)
        if close:
            self.close()
        return status, body, timing

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _load(url: str, paths: list[str], headers: dict[str, str], rate: float, clients: int,
                check=None) -> LoadResult:
    parts = urlsplit(url)
    conns = [_Connection(parts.hostname, parts.port, headers) for _ in range(clients)]
    result = LoadResult(offered=rate)
    # Open the connections and warm the server's per-thread readers first.
    await asyncio.gather(*(c.get(paths[i % len(paths)]) for i, c in enumerate(conns)))
    total = len(paths)
    next_index = 0
    start = time.perf_counter()

    async def client(conn: _Connection):
        nonlocal next_index
        while next_index < total:
            i = next_index
            next_index += 1
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.perf_counter()
            try:
                status, body, timing = await conn.get(paths[i])
                problem = None if status == 200 else str(status)
                for name, ms in parse_server_timing(timing):
                    result.server_timing.setdefault(name, []).append(ms)
                if problem is None and check is not None:
                    problem = check(body)
            except (OSError, ValueError, asyncio.IncompleteReadError) as err:
                conn.close()
                problem = type(err).__name__
            done = time.perf_counter()
            if problem is not None:
                result.errors[problem] = result.errors.get(problem, 0) + 1
            result.latencies_ms.append((done - due) * 1000)
            result.service_ms.append((done - sent) * 1000)

    await asyncio.gather(*(client(c) for c in conns))
    result.achieved = total / (time.perf_counter() - start)
    for c in conns:
        c.close()
    return result


def parse_server_timing(value: str | None) -> list[tuple[str, float]]:
    """``[(name, ms)]`` of a Server-Timing header such as ``record;dur=0.8, app;dur=6.1``."""
    out = []
    for item in (value or "").split(","):
        name, *params = [part.strip() for part in item.split(";")]
        for param in params:
            if param.startswith("dur="):
                out.append((name, float(param[4:])))
    return out


def run_load(url: str, paths: list[str], headers: dict[str, str], *, rate: float, clients: int,
             check=None) -> LoadResult:
    """Offer ``paths`` (one request each, in order) at ``rate`` per second from ``clients`` connections."""
    return asyncio.run(_load(url, paths, headers, rate, clients, check))


def nonempty_page(body: bytes) -> str | None:
    """A check for who-saw pages: None when the page has items, else what is wrong."""
    try:
        return None if json.loads(body)["items"] else "empty page"
    except (ValueError, KeyError, TypeError):
        return "not a page"


def main() -> int:
    """``python bench/httpload.py URL --rate R --clients N --header 'K: V' < paths``: prints the result as JSON."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("url")
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--check-page", action="store_true", help="count an empty who-saw page as an error")
    args = ap.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    paths = [line.strip() for line in sys.stdin if line.strip()]
    result = run_load(args.url, paths, headers, rate=args.rate, clients=args.clients,
                      check=nonempty_page if args.check_page else None)
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    json.dump({**result.__dict__, "cpu_seconds": usage.ru_utime + usage.ru_stime}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
