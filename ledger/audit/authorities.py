"""Who is an authority for a legal case: the disclosure's own service, plus the recorded policy's.

    book = CaseBook(recorded_authorities(ledger, as_of))   # what load_cases does by default

A NotificationStatusChanged or SubjectNotified takes effect only when its
``source_service`` is an authority for the disclosure (ledger.obligations).
Without a recorded policy that is the disclosure's own ``source_service``.
With one, it is also every service the policy in force *when the change was
recorded* names in ``[legal] authority_services``: a policy recorded later
does not make an earlier change valid. The policy comes only from the
ledger (PolicyPublished entries), never from a file a reader passes, so
every reader of the same ledger sees the same case state.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from typing import NamedTuple

from ledger.model.policy import policy_of
from ledger.store.findings_reads import recorded_policies


class _Position(NamedTuple):
    timestamp: int
    topic: str
    partition: int
    offset: int


def _own(disclosure: dict) -> frozenset[str]:
    return frozenset([disclosure["source_service"]])


class RecordedAuthorities:
    """``at(disclosure, recorded)``: the services whose changes recorded at ``recorded`` take effect."""

    def __init__(self, policies: list[tuple[tuple, frozenset[str]]]):
        self.positions = [_Position(*p) for p, _ in policies]  # recorded order
        self.services = [s for _, s in policies]

    def __call__(self, disclosure: dict) -> frozenset[str]:
        """Without a time: the disclosure's own service only (never more than any instant allows)."""
        return _own(disclosure)

    def at(self, disclosure: dict, recorded) -> frozenset[str]:
        i = bisect_right(self.positions, _Position(*recorded))
        return _own(disclosure) | self.services[i - 1] if i else _own(disclosure)


def recorded_authorities(conn, until_ms: int | None = None):
    """The authorities hook for a ledger: RecordedAuthorities when it holds a policy, else own service only."""
    policies = []
    for text, *where in recorded_policies(conn, until_ms=until_ms):
        legal = policy_of(json.loads(text)).legal
        policies.append((tuple(where), frozenset() if legal is None else frozenset(legal.authority_services)))
    if not policies:
        return _own
    return RecordedAuthorities(policies)
