"""Server-Timing spans of one request (W3C Server Timing), for ``ledger serve --server-timing``.

    with timing.span("record"):
        ...                      # counted in this request's header: Server-Timing: record;dur=0.812, app;dur=6.1

Off by default. The middleware opens a table of spans per request in a
context variable; code below it adds to that table, in the route's worker
thread too (anyio runs the route in a copy of the context, which holds the
same table). Nothing is collected when no table is open, so the spans cost
a context-variable lookup when the option is off. Used by
bench/bench_http.py to measure the recording of reads inside the real
server under the real load.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_spans: ContextVar[dict[str, float] | None] = ContextVar("ledger_server_timing", default=None)


def open_table() -> dict[str, float]:
    """Start collecting for the current request; returns its table (name -> milliseconds)."""
    table: dict[str, float] = {}
    _spans.set(table)
    return table


@contextmanager
def span(name: str) -> Iterator[None]:
    table = _spans.get()
    if table is None:
        yield
        return
    started = time.perf_counter_ns()
    try:
        yield
    finally:
        table[name] = table.get(name, 0.0) + (time.perf_counter_ns() - started) / 1e6


def header_value(table: dict[str, float]) -> bytes:
    """``name;dur=ms`` items, comma-separated (names are this package's own tokens)."""
    return ", ".join(f"{name};dur={ms:.3f}" for name, ms in table.items()).encode()
