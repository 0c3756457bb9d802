"""The findings filters shared by `ledger findings` and GET /v1/findings (ledger.audit.findings.select)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ledger.audit.findings import Finding
from ledger.audit.findings.select import select

T0 = datetime(2026, 3, 1, tzinfo=UTC)
T1 = datetime(2026, 3, 2, tzinfo=UTC)


def finding(fid: str, rule: str, subjects=("cust-1",)) -> Finding:
    return Finding(fid, rule, "broken", "high", f"{rule} broken", tuple(subjects), (f"ev-{fid}",), "sha", "1")


@dataclass
class Run:
    about: dict = field(default_factory=dict)


FINDINGS = [finding("f1", "consent.marketing"), finding("f2", "consent.sharing", ("cust-2",)),
            finding("f3", "access.need_to_know", ("cust-1", "cust-3")), finding("f4", "consentx.other")]
RUN = Run({"f1": ("emp-1", None, T0), "f2": ("emp-2", "rcpt-9", T1), "f3": ("emp-1", None, T1),
           "f4": ("emp-3", None, None)})


def ids(found) -> list[str]:
    return [f.finding_id for f in found]


def test_no_filter_keeps_every_finding_in_order():
    """Without filters the list is unchanged, order included."""
    assert ids(select(RUN, FINDINGS)) == ["f1", "f2", "f3", "f4"]


def test_a_rule_ending_in_a_dot_matches_the_rules_below_it_only():
    """`consent.` matches consent.marketing and consent.sharing, not consentx.other; a full id matches itself."""
    assert ids(select(RUN, FINDINGS, rules=["consent."])) == ["f1", "f2"]
    assert ids(select(RUN, FINDINGS, rules=["consent"])) == []
    assert ids(select(RUN, FINDINGS, rules=["access.need_to_know", "consentx.other"])) == ["f3", "f4"]


def test_subject_actor_and_recipient_filter_by_the_judged_event():
    """subject is among the finding's subjects; actor and recipient are the judged event's."""
    assert ids(select(RUN, FINDINGS, subject="cust-1")) == ["f1", "f3", "f4"]
    assert ids(select(RUN, FINDINGS, actor="emp-1")) == ["f1", "f3"]
    assert ids(select(RUN, FINDINGS, recipient="rcpt-9")) == ["f2"]


def test_since_is_inclusive_until_exclusive_and_undated_findings_stay():
    """since=T1 keeps T1; until=T1 drops it; a finding without an event time is never dropped by time."""
    assert ids(select(RUN, FINDINGS, since=T1)) == ["f2", "f3", "f4"]
    assert ids(select(RUN, FINDINGS, until=T1)) == ["f1", "f4"]
