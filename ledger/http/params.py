"""Query parameters read with the CLI's own rules, and paging of the library's newest-first lists.

Times are ISO-8601 with an offset (``ledger.timeparse.parse_time``: a time
without one is refused, naming the parameter); ``since`` is inclusive and
``until`` exclusive on event time; ``as_of`` answers as the ledger stood at
recorded time. The library functions do the filtering: this module only
turns a page cursor into a narrower ``until`` and skips the rows of the
previous page that share its last instant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable, Iterator

from ledger.model.times import UTC, iso, parse_time, to_micros

from .problems import ApiError

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def time_param(value: str | None, name: str) -> datetime | None:
    """An aware UTC datetime from a query parameter, or None; ValidationError names ``name``."""
    return None if value is None else parse_time(value, option=name)


def page_size(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(422, "invalid_parameter", f"limit must be from 1 to {MAX_PAGE}", "limit")
    return limit


def row_key(row: dict) -> tuple[int, str]:
    """The list order of every query: event time, then event_id (both descending)."""
    return to_micros(parse_time(row["occurred_at"])), row["event_id"]


@dataclass
class Page:
    items: list[dict]
    next_state: dict | None  # what the next cursor carries, None on the last page
    as_of: str


def until_for(until: datetime | None, after: tuple[int, str] | None) -> datetime | None:
    """The exclusive ``until`` of a page that starts after ``after``: the sooner of the two."""
    if after is None:
        return until
    after_end = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=after[0] + 1)
    return after_end if until is None or after_end < until else until


def paginate(rows: Iterable[dict], limit: int, after: tuple[int, str] | None, as_of: str,
             keep: Callable[[dict], dict | None] = lambda r: r, deadline: float | None = None) -> Page:
    """Up to ``limit`` rows strictly after ``after`` in list order; ``keep`` filters/maps a row (None drops it)."""
    items: list[dict] = []
    last = None
    for row in rows:
        if deadline is not None and time.monotonic() > deadline:
            raise ApiError(503, "timeout", "the query took longer than the server allows; narrow it "
                           "(since/until, type) and ask again")
        if after is not None:
            if row_key(row) >= after:
                continue  # already on an earlier page (same instant as its last row)
            after = None  # rows come newest first: none further down can be on an earlier page
        kept = keep(row)
        if kept is None:
            continue
        if len(items) == limit:
            key = row_key(last)  # parsed once per page, not once per row
            return Page(items, {"t": key[0], "e": key[1], "a": as_of}, as_of)
        items.append(kept)
        last = row
    return Page(items, None, as_of)


def with_deadline(rows: Iterable, deadline: float) -> Iterator:
    for row in rows:
        if time.monotonic() > deadline:
            raise ApiError(503, "timeout", "the query took longer than the server allows; narrow it and ask again")
        yield row


def pinned_as_of(as_of: datetime | None) -> str:
    """``as_of`` as the ledger's ISO form; the first page of a query without one pins "now"."""
    from datetime import timezone

    return iso(as_of or datetime.now(timezone.utc))
