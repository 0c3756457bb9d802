"""A seeded, realistic event stream for Northwind (telecom + online shop) and its oracle.

    >>> from ledger.dev.simulate import simulate
    >>> w = simulate(seed=1, events=5000, subjects=200)
    >>> len(w.events), w.events[0]["type"] in {"DataAccessed", "DataShared", "ConsentChanged"}
    (5000, True)
    >>> rows = w.owed_notices(as_of=w.events[-1]["occurred_at"])

The stream holds, on purpose, every situation the queries must get right:
bulk billing chunks and exports naming up to 300 customers, denied and
break-glass accesses, shares to a payment processor, a shipper, an advertiser
and an affiliate (marketing ones citing a consent, a few citing one already
withdrawn), subpoenas and court orders naming several customers, gag orders
imposed, extended, lifted or left to expire, fraud-investigation delays with
and without an end, partial notifications, notices recorded before their
disclosure, a notice whose disclosure never appears, back-dated manual entries
with ``recorded_by``, and events exactly at midnight UTC.

Reading guide: ``stream.py`` drives the slots, ``background.py`` and
``legal.py`` make the events, ``cast.py`` is who appears, ``oracle.py`` holds
the reference answers and the obligation rules, ``workload.py`` wraps them.
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Iterator

from ledger.errors import ConfigError

from .oracle import DEFAULT_NOTICE_DAYS
from .stream import Stream
from .workload import Workload

__all__ = ["simulate", "iter_events", "subject_ids", "Workload", "DEFAULT_NOTICE_DAYS"]

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


def subject_ids(count: int) -> list[str]:
    """The customer ids of a simulation with ``count`` subjects: cust-000001, cust-000002..."""
    return [f"cust-{i:06d}" for i in range(1, count + 1)]


def _checked(events: int, subjects: int, start: datetime, days: int) -> datetime:
    if events < 0:
        raise ConfigError(f"events must be 0 or more, got {events}")
    if subjects < 1:
        raise ConfigError(f"subjects must be at least 1, got {subjects}")
    if days < 1:
        raise ConfigError(f"days must be at least 1, got {days}")
    if start.tzinfo is None:
        raise ConfigError(f"start must be timezone-aware (e.g. 2026-01-01T00:00:00+00:00), got {start}")
    return start.astimezone(UTC)


def iter_events(*, seed: int = 0, events: int = 1000, subjects: int = 100,
                start: datetime = DEFAULT_START, days: int = 90) -> Iterator[dict]:
    """Yield the same events as ``simulate(...)`` one at a time, holding only open cases."""
    start = _checked(events, subjects, start, days)
    return iter(Stream(seed, subject_ids(subjects), start, days, events))


def simulate(*, seed: int = 0, events: int = 1000, subjects: int = 100,
             start: datetime = DEFAULT_START, days: int = 90) -> Workload:
    """Exactly ``events`` events over ``days`` days from ``start``, deterministic for ``seed``.

    The list is in emission order: chronological by ``occurred_at`` except
    back-dated manual entries and disclosures recorded after their notice.
    """
    start = _checked(events, subjects, start, days)
    ids = subject_ids(subjects)
    # The events hold no reference cycles; without this pause the cyclic
    # collector rescans the growing list and doubles the time for 1M events.
    was_enabled = gc.isenabled()
    gc.disable()
    stream = Stream(seed, ids, start, days, events)
    try:
        produced = list(stream)
    finally:
        if was_enabled:
            gc.enable()
    return Workload(events=produced, seed=seed, subjects=ids, truth=stream.truth)
