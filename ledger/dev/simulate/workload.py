"""``Workload``: the events a simulation emitted plus the oracle's answers about them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator

from . import oracle


@dataclass
class Workload:
    """What ``simulate`` emitted, in emission order, and reference answers about it.

    The helpers read ``events`` only (see :mod:`ledger.simulate.oracle` for the
    exact rules), so a test may also build a ``Workload`` by hand.
    """

    events: list[dict]
    seed: int | None = None
    subjects: list[str] = field(default_factory=list)
    #: What the simulator broke on purpose (and the stale marketing shares); see oracle.Truth.
    truth: oracle.Truth = field(default_factory=oracle.Truth)

    def iter_events(self) -> Iterator[dict]:
        return iter(self.events)

    def touching(self, subject_id: str, since: datetime | None = None,
                 until: datetime | None = None) -> list[dict]:
        """Accesses, shares and legal disclosures naming the subject, newest first."""
        return oracle.touching(self.events, subject_id, since, until)

    def by_actor(self, actor_id: str, since: datetime | None = None, until: datetime | None = None,
                 types: tuple[str, ...] | None = None) -> list[dict]:
        """Events performed by ``actor_id`` (denied and break-glass included), newest first."""
        return oracle.by_actor(self.events, actor_id, since, until, types)

    def disclosed_to(self, recipient_id: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, recipient_kind: str | None = None) -> list[dict]:
        """Shares and legal disclosures to a recipient (id and/or kind), newest first."""
        return oracle.disclosed_to(self.events, recipient_id, since, until, recipient_kind)

    def owed_notices(self, as_of: datetime) -> list[dict]:
        """Notices still owed at ``as_of``, one row per (disclosure, customer)."""
        return oracle.owed_notices(self.events, as_of)

    def subject_report(self, subject_id: str, as_of: datetime) -> list[dict]:
        """What the subject-facing report may show at ``as_of`` (delayed disclosures hidden)."""
        return oracle.subject_report(self.events, subject_id, as_of)

    def anomalies(self) -> list[dict]:
        """SubjectNotified events whose disclosure never appears."""
        return oracle.anomalies(self.events)

    def marketing_without_consent(self) -> list[tuple[dict, str]]:
        """Marketing shares (with the subject) not backed by a current PARTNERS consent."""
        return oracle.marketing_without_consent(self.events)

    def expected_findings(self, as_of: datetime) -> set[tuple[str, str, str, tuple[str, ...]]]:
        """The findings examples/policy.toml must give at ``as_of``: (rule, kind, event_id, subjects)."""
        return oracle.expected_findings(self.events, self.truth, as_of)

    def a_rich_subject(self) -> str:
        """A customer with accesses, shares and a legal disclosure; the busiest such one.

        Ties go to the smallest subject id. Raises LookupError when none exists
        (a workload too small to have one).
        """
        kinds: dict[str, set[str]] = {}
        counts: dict[str, int] = {}
        for e in self.events:
            if e["type"] in oracle.EXPOSURE_TYPES:
                for subject_id in e["subject_ids"]:
                    kinds.setdefault(subject_id, set()).add(e["type"])
                    counts[subject_id] = counts.get(subject_id, 0) + 1
        rich = [s for s, seen in kinds.items() if len(seen) == len(oracle.EXPOSURE_TYPES)]
        if not rich:
            raise LookupError("no customer has accesses, shares and a legal disclosure; simulate more events")
        return min(rich, key=lambda s: (-counts[s], s))
