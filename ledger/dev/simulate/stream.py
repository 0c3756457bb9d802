"""The generator behind ``simulate``: one event per clock slot, in emission order.

Each slot either hands its instant to the earliest *follow-up* that is due
(a notification, a status change, a billing chunk, a disclosure recorded late)
or draws a fresh event from the mix. Follow-ups wait in a heap, so memory stays
proportional to the open cases, not to the number of events: a million events
stream without being held.

All randomness comes from one ``random.Random(seed)`` consumed in a fixed
order, and no set or hash order is ever iterated, so a seed always produces
the same events.
"""

from __future__ import annotations

import heapq
import uuid
from bisect import bisect
from datetime import datetime, timedelta
from itertools import accumulate
from random import Random
from typing import Callable, Iterator

from . import background, legal, violations
from .clock import slot_times
from .oracle import Truth

Builder = Callable[[datetime], dict]

# Fresh-event mix; follow-ups (mostly legal) take their slots on top of it,
# which lands the emitted mix near 75% access / 12% sharing / 7% consent / 6% legal.
_FRESH = (
    (background.access, 0.765),
    (background.share, 0.127),
    (background.consent, 0.075),
    (legal.open_case, 0.033),
    (violations.inject, violations.RATE),
)
_FRESH_CUMULATIVE = list(accumulate(weight for _, weight in _FRESH))
_FRESH_MAKERS = [maker for maker, _ in _FRESH]


class ConsentBook:
    """Who currently consents to sharing for which purpose (scope PARTNERS only).

    Keeps, per purpose, a list of subjects plus their positions so a random
    consenting subject is drawn and a withdrawal is removed in O(1).
    """

    def __init__(self) -> None:
        self.grants: dict[tuple[str, str], str] = {}  # (subject, purpose) -> consent event_id
        self._members: dict[str, list[str]] = {}
        self._where: dict[tuple[str, str], int] = {}

    def grant(self, subject: str, purpose: str, event_id: str, shareable: bool) -> None:
        self.grants[(subject, purpose)] = event_id
        if shareable and (subject, purpose) not in self._where:
            members = self._members.setdefault(purpose, [])
            self._where[(subject, purpose)] = len(members)
            members.append(subject)
        elif not shareable:
            self._drop(subject, purpose)

    def withdraw(self, subject: str, purpose: str) -> str | None:
        """Forget the subject's grant; return the id of the consent event withdrawn."""
        self._drop(subject, purpose)
        return self.grants.pop((subject, purpose), None)

    def pick(self, rng: Random, purpose: str) -> tuple[str, str] | None:
        """A random (subject, consent event_id) that may be shared for ``purpose``."""
        members = self._members.get(purpose)
        if not members:
            return None
        subject = members[int(rng.random() * len(members))]
        return subject, self.grants[(subject, purpose)]

    def shareable(self, subject: str, purpose: str) -> bool:
        """True while the subject's latest consent for ``purpose`` grants it with scope PARTNERS."""
        return (subject, purpose) in self._where

    def _drop(self, subject: str, purpose: str) -> None:
        index = self._where.pop((subject, purpose), None)
        if index is None:
            return
        members = self._members[purpose]
        last = members.pop()
        if index < len(members):
            members[index] = last
            self._where[(last, purpose)] = index


class Stream:
    """Shared state and helpers for the event makers in background.py and legal.py."""

    def __init__(self, seed: int, subjects: list[str], start: datetime, days: int, count: int):
        self.rng = Random(seed)
        self.subjects = subjects
        self.start = start
        self.end = start + timedelta(days=days)
        self.days = days
        self.count = count
        self.now = start
        self.consents = ConsentBook()
        self.truth = Truth()
        self.cases_opened = 0
        self.opt_outs = 0
        self.counters: dict[str, int] = {}
        self._pending: list[tuple[datetime, int, Builder]] = []
        self._pushed = 0

    # -- identifiers -------------------------------------------------------
    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def serial(self, name: str) -> int:
        """Next number of a named sequence (request ids, billing runs...)."""
        self.counters[name] = number = self.counters.get(name, 0) + 1
        return number

    def ticket(self, prefix: str) -> str:
        return f"{prefix}-{self.rng.randrange(100_000, 1_000_000)}"

    # -- subjects ----------------------------------------------------------
    def subject(self) -> str:
        """One customer; low-numbered customers are much busier (long-tailed)."""
        return self.subjects[int(len(self.subjects) * self.rng.random() ** 1.5)]

    def sample(self, low: int, high: int) -> list[str]:
        """Between ``low`` and ``high`` distinct customers, sorted, capped by the population."""
        size = min(self.rng.randint(low, high), len(self.subjects))
        return [self.subjects[i] for i in sorted(self.rng.sample(range(len(self.subjects)), size))]

    def block(self, low: int, high: int) -> list[str]:
        """A contiguous run of customers, as a billing cycle processes them."""
        size = min(self.rng.randint(low, high), len(self.subjects))
        first = self.rng.randrange(len(self.subjects) - size + 1)
        return self.subjects[first:first + size]

    # -- time --------------------------------------------------------------
    def after(self, base: datetime, low_days: float, high_days: float) -> datetime:
        """An instant between ``low_days`` and ``high_days`` days after ``base``, to the microsecond."""
        return base + timedelta(microseconds=int(self.rng.uniform(low_days, high_days) * 86_400e6))

    def later(self, not_before: datetime, build: Builder) -> None:
        """Emit ``build(slot_instant)`` at the first slot at or after ``not_before``.

        Follow-ups due after the simulated window are never emitted, as in a
        real ledger cut off at a point in time.
        """
        if not_before < self.end:
            heapq.heappush(self._pending, (not_before, self._pushed, build))
            self._pushed += 1

    # -- events ------------------------------------------------------------
    def event(self, kind: str, actor: tuple, subject_ids: list[str], source: str, *,
              occurred_at: datetime | None = None, correlation_id: str | None = None,
              recorded_by: str | None = None, attributes: dict | None = None,
              traced: bool = True) -> dict:
        """The fields every event type shares, with a fresh deterministic event_id."""
        rng = self.rng
        return {
            "type": kind,
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "occurred_at": self.now if occurred_at is None else occurred_at,
            "source_service": source,
            "actor": {"id": actor[0], "type": actor[1], "role": actor[2], "organization": actor[3]},
            "subject_ids": subject_ids,
            "correlation_id": correlation_id,
            "trace_id": "%032x" % rng.getrandbits(128) if traced else None,
            "recorded_by": recorded_by,
            "attributes": {} if attributes is None else attributes,
        }

    def __iter__(self) -> Iterator[dict]:
        rng, pending = self.rng, self._pending
        for instant in slot_times(rng, self.start, self.days, self.count):
            self.now = instant
            if pending and pending[0][0] <= instant:
                yield heapq.heappop(pending)[2](instant)
                continue
            event = _FRESH_MAKERS[bisect(_FRESH_CUMULATIVE, rng.random() * _FRESH_CUMULATIVE[-1])](self)
            # A maker may decline the slot (e.g. a disclosure that is recorded late).
            yield event if event is not None else background.access(self)
