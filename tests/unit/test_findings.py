"""Promise checks (ledger.findings): findings equal the simulator's oracle, and hand-built edge cases.

The evaluator runs directly over emitted events (no broker): a simulated
workload must give exactly the findings the simulator recorded (no miss, no
false finding), and small hand-built streams pin each convention.
"""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.audit.findings import Finding, Retraction, current, evaluate, recorded_order_key
from ledger.dev.simulate import simulate
from ledger.model import events as ev
from ledger.model.policy import load

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def policy():
    return load(EXAMPLE)


def key(f: Finding) -> tuple:
    return (f.rule, f.kind, f.event_ids[0], f.subjects)


# -- against the oracle --------------------------------------------------------------------
@pytest.mark.parametrize("seed, events", [(1, 20_000), (5, 6_000), (11, 40_000)])
def test_findings_equal_the_oracle_on_a_simulated_workload(policy, seed, events):
    """Every rule kind occurs, and the findings equal what the simulator recorded, exactly, at several instants."""
    w = simulate(seed=seed, events=events, subjects=400)
    end = max(e["occurred_at"] for e in w.events)
    for as_of in (end, end + timedelta(days=60)):
        got = {key(f) for f in current(evaluate(policy, w.events, as_of))}
        expected = w.expected_findings(as_of)
        assert got - expected == set(), "false findings"
        assert expected - got == set(), "missed findings"
    rules = {rule for rule, *_ in got}
    assert rules >= {"access.need_to_know", "access.justification", "access.break_glass_review",
                     "consent.marketing", "recipient.agreement", "recipient.purpose", "recipient.categories",
                     "recipient.retention", "recipient.transfer", "legal.request_kind", "legal.review",
                     "legal.notice", "legal.delay", "legal.authority", "notice.purpose"}
    assert {("access.need_to_know", "not_judgeable"), ("recipient.agreement", "not_judgeable")} <= \
        {(rule, kind) for rule, kind, *_ in got}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), events=st.integers(0, 3000), subjects=st.integers(1, 120),
       late_days=st.integers(-5, 120))
def test_findings_equal_the_oracle_for_any_parameters(seed, events, subjects, late_days):
    """For any seed, size, population and judging instant the findings equal the oracle exactly."""
    policy = load(EXAMPLE)
    w = simulate(seed=seed, events=events, subjects=subjects)
    as_of = (max((e["occurred_at"] for e in w.events), default=T0)) + timedelta(days=late_days)
    assert {key(f) for f in current(evaluate(policy, w.events, as_of))} == w.expected_findings(as_of)


def test_state_does_not_grow_with_accesses_and_shares(policy):
    """A long stream of accesses and shares leaves no per-event state: only caches bounded by distinct shapes."""
    from ledger.audit.findings import Evaluator

    evaluator = Evaluator(policy)
    w = simulate(seed=9, events=5000, subjects=50)
    everyday = [e for e in w.events if e["type"] in ("DataAccessed", "DataShared")
                and e["outcome" if e["type"] == "DataAccessed" else "purpose"] not in ("BREAK_GLASS",)
                and not e["purpose"].startswith("marketing.")
                and (e.get("justification") or {}).get("reason_code") != "break_glass_review"]
    for e in everyday * 3:
        evaluator.feed(e)
    assert evaluator.consents == {} and evaluator.open_consent == {} and evaluator.cases == {}
    assert evaluator.glass == [] and evaluator.reviews == {} and len(evaluator._access_verdicts) < 200


def test_tally_counts_kept_broken_and_not_judgeable_per_rule(policy):
    """Every rule judged reports judged = kept + broken + not judgeable, and broken matches the findings."""
    from ledger.audit.findings import Evaluator, tally

    w = simulate(seed=1, events=6000, subjects=200)
    evaluator = Evaluator(policy)
    results = [r for e in w.events for r in evaluator.feed(e)]
    results += evaluator.finish(T0 + timedelta(days=200))  # late enough for endless delays to break
    standing = current(results)
    table = tally(evaluator.judged, standing)
    for rule, row in table.items():
        assert row["judged"] == row["kept"] + row["broken"] + row["not_judgeable"], rule
        assert row["broken"] == sum(1 for f in standing if f.rule == rule and f.kind == "broken")
    assert table["access.need_to_know"]["kept"] > 1000 and table["consent.marketing"]["judged"] > 0
    assert table["legal.delay"]["broken"] > 0


def test_findings_do_not_depend_on_the_order_partitions_are_read_in(policy):
    """Sorted by recorded time then (topic, partition, offset), any reading order gives identical output."""
    w = simulate(seed=2, events=8000, subjects=200)
    records, offsets = [], {}
    for i, e in enumerate(w.events):
        topic = {"DataAccessed": "access", "DataShared": "sharing", "ConsentChanged": "consent"}.get(e["type"],
                                                                                                   "disclosure")
        partition = hash(min(e["subject_ids"])) % 6
        offset = offsets[(topic, partition)] = offsets.get((topic, partition), -1) + 1
        # Many events share a millisecond, as in a real batch, so the tie-break matters.
        records.append({**e, "recorded_at": i // 7, "topic": topic, "partition": partition, "offset": offset})
    by_partition: dict = {}
    for r in records:
        by_partition.setdefault((r["topic"], r["partition"]), []).append(r)
    outputs = []
    for order_seed in range(3):
        parts = list(by_partition.values())
        random.Random(order_seed).shuffle(parts)
        stream = sorted((r for part in parts for r in part), key=recorded_order_key)
        outputs.append(list(evaluate(policy, stream, T0 + timedelta(days=200))))
    assert outputs[0] == outputs[1] == outputs[2] and outputs[0]


def test_finding_ids_are_deterministic_and_name_the_policy(policy):
    """The same workload and policy give the same ids; every finding names the policy's SHA-256 and version."""
    w = simulate(seed=4, events=3000, subjects=100)
    as_of = T0 + timedelta(days=200)
    first = [f for f in evaluate(policy, w.events, as_of)]
    assert first == list(evaluate(policy, w.events, as_of))
    assert len({f.finding_id for f in first}) == len(first)
    assert all(f.policy_sha256 == policy.sha256 and f.policy_version == policy.version for f in first)


# -- hand-built edge cases -----------------------------------------------------------------
def event(kind: str, at: datetime, **fields) -> dict:
    base = {"type": kind, "event_id": str(uuid.UUID(int=next(_ids), version=4)), "occurred_at": at,
            "source_service": "crm", "subject_ids": ["cust-1"],
            "actor": {"id": "emp-1012", "type": "EMPLOYEE", "role": "support_agent"}}
    return ev.validate({**base, **fields})


def access(at, categories, purpose="essential.service.operations.support", **fields):
    return event("DataAccessed", at, data_categories=list(categories), purpose=purpose, access_type="VIEW",
                 outcome="GRANTED", **fields)


def consent(at, granted, scope="PARTNERS", purpose="marketing.communications.email", channel="EMAIL", **fields):
    return event("ConsentChanged", at, actor={"id": "cust-1", "type": "SUBJECT", "role": "customer"},
                 purpose=purpose, granted=granted, channel=channel, scope=scope, **fields)


AFFILIATE = {"id": "rcpt-northwind-retail", "name": "Northwind Retail GmbH", "kind": "AFFILIATE", "country": "DE"}


def email_share(at):
    return event("DataShared", at, actor={"id": "svc-marketing-sync", "type": "SERVICE", "role": "audience_sync"},
                 data_categories=["user.name", "user.contact.email"], purpose="marketing.communications.email",
                 recipient=dict(AFFILIATE), agreement_ref="IGA-2022-NW", retention_until=at + timedelta(days=30))


def findings(policy, stream, as_of=None):
    return current(evaluate(policy, stream, as_of or T0 + timedelta(days=1)))


def test_a_category_is_matched_through_its_parent_and_an_old_alias(policy):
    """support_agent may see user.contact: user.contact.email and the pre-fideslang user.contact.phone pass."""
    assert findings(policy, [access(T0, ["user.contact.email", "user.contact.phone", "user.name"])]) == []


def test_a_denied_category_is_broken_with_labels_in_the_sentence(policy):
    """A support agent viewing payment cards is broken; the sentence names actor, role, labels and purpose."""
    found = findings(policy, [access(T0, ["user.financial.payment_card"], purpose="marketing.advertising")])
    assert sorted(f.rule for f in found) == ["access.need_to_know", "consent.marketing"]  # and no consent either
    f = next(f for f in found if f.rule == "access.need_to_know")
    assert f.kind == "broken" and f.severity == "high"
    assert f.sentence == ("emp-1012 (support_agent) viewed Payment card details of cust-1 for Advertising, "
                          "Marketing or Promotion: not allowed for this role")


def test_an_unknown_role_is_not_judgeable_never_silently_passed(policy):
    """A role the policy does not name gives a not_judgeable finding."""
    [f] = findings(policy, [access(T0, ["user.name"], actor={"id": "x-1", "type": "EMPLOYEE", "role": "intern"})])
    assert (f.rule, f.kind) == ("access.need_to_know", "not_judgeable")


def test_a_marketing_use_with_no_consent_ever_recorded_is_broken(policy):
    """No consent at all is a broken finding, not an unjudgeable one."""
    [f] = findings(policy, [email_share(T0)])
    assert (f.rule, f.kind) == ("consent.marketing", "broken") and "no consent" in f.sentence


def test_consent_granted_and_revoked_in_the_same_second(policy):
    """Microseconds order them; at the very same instant the withdrawal wins, whatever the event ids."""
    grant, revoke = consent(T0, True), consent(T0 + timedelta(microseconds=500_000), False)
    assert [f.rule for f in findings(policy, [grant, revoke, email_share(T0 + timedelta(microseconds=250_000))])] == []
    assert [f.rule for f in findings(policy, [grant, revoke, email_share(T0 + timedelta(seconds=1))])] == \
        ["consent.marketing"]
    for a, b in ((consent(T0, True), consent(T0, False)), (consent(T0, False), consent(T0, True))):
        assert [f.rule for f in findings(policy, [a, b, email_share(T0)])] == ["consent.marketing"]


def test_a_consent_recorded_after_the_share_but_dated_before_it_retracts_the_finding(policy):
    """The share is broken when judged; the late consent clears it with a retraction naming the consent."""
    share = email_share(T0)
    late = consent(T0 - timedelta(hours=1), True)
    out = list(evaluate(policy, [share, late], T0 + timedelta(days=1)))
    assert isinstance(out[0], Finding) and isinstance(out[1], Retraction)
    assert out[1].finding_id == out[0].finding_id and out[1].event_ids == (late["event_id"],)
    assert current(out) == []
    # A consent dated after the share does not clear it.
    assert len(findings(policy, [share, consent(T0 + timedelta(hours=1), True)])) == 1


def test_partner_shares_need_partners_scope_and_an_opt_out_covers_partners(policy):
    """FIRST_PARTY consent is not enough for an affiliate; a first-party opt-out withdraws the partner grant too."""
    assert "first-party" in findings(policy, [consent(T0, True, scope="FIRST_PARTY"), email_share(T0)])[0].sentence
    stream = [consent(T0, True), consent(T0 + timedelta(minutes=1), False, scope="FIRST_PARTY"),
              email_share(T0 + timedelta(minutes=2))]
    assert "withdrew" in findings(policy, stream)[0].sentence


def test_consent_matches_by_channel(policy):
    """A PHONE consent does not cover email marketing; an ANY consent does."""
    assert len(findings(policy, [consent(T0, True, channel="PHONE"), email_share(T0)])) == 1
    assert findings(policy, [consent(T0, True, channel="ANY"), email_share(T0)]) == []


LEGAL = {"actor": {"id": "emp-6001", "type": "EMPLOYEE", "role": "legal_counsel"},
         "source_service": "legal-case-tool"}


def disclosure(at, status="PENDING", delay_until=None, order_ref=None, kind="COURT_ORDER",
               categories=("user.name",), reviewed_by="emp-6002"):
    return event("LegalDisclosure", at, **LEGAL, data_categories=list(categories),
                 purpose="essential.legal_obligation", reviewed_by=reviewed_by,
                 requested_categories=list(categories),
                 request={"id": "LR-1", "kind": kind, "authority": "Court", "received_at": at - timedelta(days=1)},
                 recipient={"id": "auth-1", "name": "Court", "kind": "OTHER"},
                 notification={"status": status, "due_by": at + timedelta(days=30), "delay_until": delay_until,
                               "order_ref": order_ref})


def change(d, at, status, delay_until=None, order_ref=None, **fields):
    return event("NotificationStatusChanged", at, **{**LEGAL, **fields}, disclosure_event_id=d["event_id"],
                 status=status, delay_until=delay_until, order_ref=order_ref, reason="court")


def notice(d, at):
    return event("SubjectNotified", at, actor={"id": "sys-notifier", "type": "SYSTEM", "role": "notification_sender"},
                 source_service="notifier", disclosure_event_id=d["event_id"], notified_at=at, channel="email")


def test_a_delay_extended_then_lifted(policy):
    """Held back while in force (also past the first end), due at once when lifted, overdue after that."""
    day = timedelta(days=1)
    d = disclosure(T0, "DELAYED_BY_ORDER", T0 + 20 * day, "GAG-1")
    extended = change(d, T0 + 10 * day, "DELAYED_BY_ORDER", T0 + 45 * day, "GAG-2")
    lifted = change(d, T0 + 35 * day, "PENDING")
    stream = [d, extended, lifted]
    assert findings(policy, stream, T0 + 25 * day) == []   # past the first end, inside the extension
    assert findings(policy, stream, T0 + 35 * day) == []   # the lift instant: due, not yet overdue
    [f] = findings(policy, stream, T0 + 36 * day)
    assert f.rule == "legal.notice" and f.event_ids == (d["event_id"], extended["event_id"], lifted["event_id"])
    # Notified a day after the lift: late (due at once); notified inside the delay: kept.
    assert [g.rule for g in findings(policy, stream + [notice(d, T0 + 36 * day)], T0 + 40 * day)] == ["legal.notice"]
    assert findings(policy, stream + [notice(d, T0 + 30 * day)], T0 + 40 * day) == []


def test_legal_request_kind_review_authority_and_delay_length(policy):
    """Content on a subpoena, self review, a status change outside the authorities, a delay past the limit."""
    day = timedelta(days=1)
    content = disclosure(T0, kind="SUBPOENA", categories=("user.content.communications",))
    assert [f.rule for f in findings(policy, [content, notice(content, T0)])] == ["legal.request_kind"]
    assert findings(policy, [disclosure(T0, kind="SEARCH_WARRANT", categories=("user.communications.content",))],
                    T0) == []
    own = disclosure(T0, reviewed_by="emp-6001")
    assert [f.rule for f in findings(policy, [own], T0)] == ["legal.review"]
    d = disclosure(T0)
    rogue = change(d, T0 + day, "PENDING", source_service="support-console",
                   actor={"id": "emp-1001", "type": "EMPLOYEE", "role": "support_agent"})
    assert [f.rule for f in findings(policy, [d, rogue], T0 + day)] == ["legal.authority"]
    long = disclosure(T0, "DELAYED_BY_ORDER", T0 + 120 * day, "GAG-9")
    assert [f.rule for f in findings(policy, [long], T0 + day)] == ["legal.delay"]
    endless = disclosure(T0, "DELAYED_FRAUD_INVESTIGATION")
    assert findings(policy, [endless], T0 + 90 * day) == []
    assert [f.rule for f in findings(policy, [endless], T0 + 91 * day)] == ["legal.delay"]


def test_break_glass_review_is_judged_at_the_stated_instant(policy):
    """Unreviewed: nothing inside the window, broken after it; a reviewer with the same correlation_id clears it."""
    sre = {"id": "emp-4001", "type": "EMPLOYEE", "role": "site_reliability_engineer"}
    glass = event("DataAccessed", T0, actor=sre, data_categories=["user.account.identifiers"],
                  purpose="essential.service.security", access_type="VIEW", outcome="BREAK_GLASS",
                  correlation_id="INC-1", justification={"reason_code": "incident", "ticket": "INC-1"})
    assert findings(policy, [glass], T0 + timedelta(hours=24)) == []
    [f] = findings(policy, [glass], T0 + timedelta(hours=25))
    assert f.rule == "access.break_glass_review"
    review = event("DataAccessed", T0 + timedelta(hours=3),
                   actor={"id": "emp-5001", "type": "EMPLOYEE", "role": "privacy_officer"},
                   data_categories=["user.account.identifiers"], purpose="essential.service.security",
                   access_type="VIEW", outcome="GRANTED", correlation_id="INC-1",
                   justification={"reason_code": "break_glass_review", "ticket": "INC-1"})
    assert findings(policy, [review, glass], T0 + timedelta(days=5)) == []  # order of recording does not matter
    other_case = {**review, "event_id": str(uuid.uuid4()), "correlation_id": "INC-2"}
    assert len(findings(policy, [glass, other_case], T0 + timedelta(days=5))) == 1


def test_recipient_rules(policy):
    """Outside the agreement's purposes or categories, retention past the limit, a transfer without safeguard."""
    base = dict(actor={"id": "svc-fulfilment", "type": "SERVICE", "role": "order_fulfilment"},
                data_categories=["user.name", "user.contact.address"], purpose="essential.service.delivery",
                recipient={"id": "rcpt-shipfast", "name": "ShipFast", "kind": "PROCESSOR", "country": "NL"},
                agreement_ref="DPA-SHIPFAST-2023", retention_until=T0 + timedelta(days=90))
    assert findings(policy, [event("DataShared", T0, **base)]) == []
    assert [f.rule for f in findings(policy, [event("DataShared", T0, **{
        **base, "retention_until": T0 + timedelta(days=91)})])] == ["recipient.retention"]
    assert [f.rule for f in findings(policy, [event("DataShared", T0, **{
        **base, "data_categories": ["user.financial.payment_card"]})])] == ["recipient.categories"]
    assert [f.rule for f in findings(policy, [event("DataShared", T0, **{
        **base, "recipient": {**base["recipient"], "country": "US"}})])] == ["recipient.transfer"]
    unknown = findings(policy, [event("DataShared", T0, **{
        **base, "agreement_ref": "X-1", "recipient": {**base["recipient"], "id": "rcpt-x"}})])
    assert [(f.rule, f.kind) for f in unknown] == [("recipient.agreement", "not_judgeable")]


def test_a_use_outside_the_accepted_notice_version(policy):
    """Research is covered only by the newer notice: broken for a customer who accepted the older one."""
    def research(at):
        return access(at, ["user.behavior.purchase_history"], purpose="functional.research_and_development",
                      actor={"id": "emp-3001", "type": "EMPLOYEE", "role": "data_engineer"})
    old = consent(T0 - timedelta(days=1), True, notice_version="privacy-2025-03")
    new = consent(T0 - timedelta(hours=1), True, notice_version="privacy-2025-11")
    assert [f.rule for f in findings(policy, [old, research(T0)])] == ["notice.purpose"]
    assert findings(policy, [old, new, research(T0)]) == []
    assert findings(policy, [research(T0)]) == []  # no notice accepted: this rule does not judge
