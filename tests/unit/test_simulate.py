"""The workload simulator (ledger.simulate) and its oracle.

Three parts: the stream is deterministic, valid and exact in size; a
default-size workload contains every situation the queries must handle; the
oracle's notice rules give the answers worked out by hand on tiny workloads.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.dev.simulate import Workload, iter_events, simulate
from ledger.dev.simulate.oracle import DEFAULT_NOTICE_DAYS
from ledger.errors import ConfigError
from ledger.model import events as ev

DELAYED = ("DELAYED_BY_ORDER", "DELAYED_FRAUD_INVESTIGATION")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def workload() -> Workload:
    return simulate(seed=1, events=5000, subjects=200)


def of_type(w: Workload, kind: str) -> list[dict]:
    return [e for e in w.events if e["type"] == kind]


def changes_for(w: Workload) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for c in of_type(w, "NotificationStatusChanged"):
        found.setdefault(c["disclosure_event_id"], []).append(c)
    for cs in found.values():
        cs.sort(key=lambda c: c["occurred_at"])
    return found


# -- the stream -------------------------------------------------------------------
def test_same_seed_same_events():
    """A seed always produces the same events in the same order."""
    assert simulate(seed=7, events=1500, subjects=60).events == simulate(seed=7, events=1500, subjects=60).events


def test_different_seeds_differ():
    """Different seeds produce different streams."""
    a, b = simulate(seed=1, events=300).events, simulate(seed=2, events=300).events
    assert [e["event_id"] for e in a] != [e["event_id"] for e in b]
    assert [e["occurred_at"] for e in a] != [e["occurred_at"] for e in b]


def test_iter_events_streams_the_same_events():
    """iter_events yields exactly what simulate returns, one at a time."""
    assert list(iter_events(seed=4, events=800, subjects=30)) == simulate(seed=4, events=800, subjects=30).events


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), events=st.integers(0, 400), subjects=st.integers(1, 40),
       days=st.integers(1, 120))
def test_exact_size_and_invariants_for_any_parameters(seed, events, subjects, days):
    """Any parameters give exactly `events` valid events inside the window, on the given subjects."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    w = simulate(seed=seed, events=events, subjects=subjects, start=start, days=days)
    assert len(w.events) == events
    allowed = set(w.subjects)
    for e in w.events:
        assert ev.validate(e) == e
        assert start <= e["occurred_at"] < start + timedelta(days=days)
        assert set(e["subject_ids"]) <= allowed


def test_every_event_passes_validation_unchanged(workload):
    """Every simulated event is already normalized: events.validate returns it unchanged."""
    for e in workload.events:
        assert ev.validate(e) == e


def test_event_invariants(workload):
    """Unique UUIDv4 ids, aware UTC microsecond times, 1..1000 distinct customers, orders for gag delays."""
    ids = [e["event_id"] for e in workload.events]
    assert len(set(ids)) == len(ids) and all(UUID4.fullmatch(i) for i in ids)
    for e in workload.events:
        assert e["occurred_at"].utcoffset() == timedelta(0)
        assert 1 <= len(e["subject_ids"]) <= 1000
        assert len(set(e["subject_ids"])) == len(e["subject_ids"])
        assert all(re.fullmatch(r"cust-\d{6}", s) for s in e["subject_ids"])
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in e["attributes"].items())
    for d in of_type(workload, "LegalDisclosure"):
        n = d["notification"]
        assert n["status"] != "DELAYED_BY_ORDER" or n["order_ref"]
        assert set(d["data_categories"]) <= set(d["requested_categories"])
    for c in of_type(workload, "NotificationStatusChanged"):
        assert c["status"] != "DELAYED_BY_ORDER" or c["order_ref"]


def test_mix_is_roughly_realistic(workload):
    """About 75% accesses, 12% shares, 7% consent changes and the rest legal."""
    share = {k: v / len(workload.events) for k, v in Counter(e["type"] for e in workload.events).items()}
    legal = share["LegalDisclosure"] + share["NotificationStatusChanged"] + share["SubjectNotified"]
    assert 0.70 < share["DataAccessed"] < 0.80
    assert 0.09 < share["DataShared"] < 0.15
    assert 0.05 < share["ConsentChanged"] < 0.09
    assert 0.03 < legal < 0.09


def test_bad_parameters_are_refused():
    """Nonsense sizes and naive start times raise ConfigError naming the parameter."""
    with pytest.raises(ConfigError, match="subjects"):
        simulate(subjects=0)
    with pytest.raises(ConfigError, match="timezone-aware"):
        simulate(start=datetime(2026, 1, 1))


# -- the situations a default-size workload must contain ------------------------------
def test_bulk_events_name_many_customers(workload):
    """Billing chunks and exports name up to a few hundred customers; a legal request names several."""
    bulk = [e for e in of_type(workload, "DataAccessed") if len(e["subject_ids"]) >= 100]
    assert {e["access_type"] for e in bulk} >= {"QUERY", "EXPORT"}
    assert max(len(e["subject_ids"]) for e in workload.events) <= 300
    assert any(len(d["subject_ids"]) >= 3 for d in of_type(workload, "LegalDisclosure"))
    runs = Counter(e["correlation_id"] for e in bulk if e["actor"]["id"] == "svc-billing")
    assert max(runs.values()) > 1  # a billing run split into chunks sharing a correlation_id


def test_denied_and_break_glass_accesses_occur(workload):
    """Some accesses are denied and some forced through break-glass with an incident ticket."""
    outcomes = Counter(e["outcome"] for e in of_type(workload, "DataAccessed"))
    assert outcomes["DENIED"] > 0 and outcomes["BREAK_GLASS"] > 0
    glass = [e for e in of_type(workload, "DataAccessed") if e["outcome"] == "BREAK_GLASS"]
    assert all(e["justification"]["ticket"].startswith("INC-") for e in glass)


def test_every_actor_type_appears(workload):
    """Employees, services, a partner, an authority, customers and system jobs all act."""
    assert {e["actor"]["type"] for e in workload.events} == {
        "EMPLOYEE", "SERVICE", "PARTNER", "AUTHORITY", "SUBJECT", "SYSTEM"}


def test_shares_reach_every_kind_of_recipient(workload):
    """Data goes to a payment processor, a shipper, an advertiser and an affiliate, among others."""
    kinds = {e["recipient"]["kind"] for e in of_type(workload, "DataShared")}
    assert kinds >= {"PAYMENT_PROCESSOR", "PROCESSOR", "ADVERTISER", "AFFILIATE"}


def test_marketing_shares_cite_a_granted_consent(workload):
    """Marketing shares rely on a consent_ref naming an earlier ConsentChanged that granted it."""
    consents = {c["event_id"]: c for c in of_type(workload, "ConsentChanged")}
    marketing = [e for e in of_type(workload, "DataShared") if e["purpose"].startswith("marketing.")]
    assert marketing
    for share in marketing:
        cited = consents[share["consent_ref"]]
        assert cited["granted"] and cited["subject_ids"] == share["subject_ids"]
        assert cited["occurred_at"] <= share["occurred_at"]


def test_opt_outs_are_followed_by_some_incorrect_marketing_shares(workload):
    """After an opt-out some marketing shares still go out (for compliance checks), but most are fine."""
    bad = workload.marketing_without_consent()
    marketing = [e for e in of_type(workload, "DataShared") if e["purpose"].startswith("marketing.")]
    assert 0 < len(bad) < len(marketing) / 2
    share, subject_id = bad[0]
    withdrawals = [c for c in of_type(workload, "ConsentChanged")
                   if c["subject_ids"] == [subject_id] and c["purpose"] == share["purpose"]
                   and not c["granted"] and c["occurred_at"] <= share["occurred_at"]]
    assert withdrawals


def test_delays_are_imposed_extended_lifted_and_left_to_expire(workload):
    """Gag orders and fraud delays: at disclosure or later, extended, lifted, with and without an end."""
    disclosures = {d["event_id"]: d for d in of_type(workload, "LegalDisclosure")}
    changes = changes_for(workload)
    initial = [d["notification"] for d in disclosures.values()]
    assert any(n["status"] == "DELAYED_BY_ORDER" and n["delay_until"] is None for n in initial)
    assert any(n["status"] == "DELAYED_BY_ORDER" and n["delay_until"] is not None for n in initial)
    assert any(n["status"] == "DELAYED_FRAUD_INVESTIGATION" and n["delay_until"] is None for n in initial)
    assert any(n["status"] == "DELAYED_FRAUD_INVESTIGATION" and n["delay_until"] is not None for n in initial)
    steps = [(disclosures[i]["notification"]["status"], c["status"])
             for i, cs in changes.items() if i in disclosures for c in cs[:1]]
    assert ("PENDING", "DELAYED_BY_ORDER") in steps  # imposed after the disclosure
    assert ("DELAYED_BY_ORDER", "DELAYED_BY_ORDER") in steps  # extended
    assert ("DELAYED_FRAUD_INVESTIGATION", "DELAYED_FRAUD_INVESTIGATION") in steps
    assert any(c["status"] == "PENDING" for cs in changes.values() for c in cs)  # lifted
    end = max(e["occurred_at"] for e in workload.events)
    rows = workload.owed_notices(end)
    assert {r["delay"] for r in rows} >= {"in force", "expired", None}
    assert any(r["delay"] == "expired" and r["overdue"] for r in rows)


def test_some_notices_arrive_before_their_disclosure(workload):
    """A disclosure typed in late (with recorded_by) comes after its SubjectNotified in the list."""
    position = {e["event_id"]: i for i, e in enumerate(workload.events)}
    early = [n for n in of_type(workload, "SubjectNotified")
             if n["disclosure_event_id"] in position and position[n["disclosure_event_id"]] > position[n["event_id"]]]
    assert early
    late = workload.events[position[early[0]["disclosure_event_id"]]]
    assert late["recorded_by"] is not None


def test_a_notice_without_its_disclosure_is_rare(workload):
    """At least one SubjectNotified refers to a disclosure that never appears, and only a few do."""
    assert 1 <= len(workload.anomalies()) <= len(of_type(workload, "SubjectNotified")) / 10


def test_some_disclosures_are_only_partly_notified(workload):
    """Some disclosures see only some of their customers notified, others in several batches."""
    told: dict[str, list[set]] = {}
    for n in of_type(workload, "SubjectNotified"):
        told.setdefault(n["disclosure_event_id"], []).append(set(n["subject_ids"]))
    disclosures = {d["event_id"]: set(d["subject_ids"]) for d in of_type(workload, "LegalDisclosure")}
    partial = [i for i, batches in told.items() if i in disclosures and set().union(*batches) < disclosures[i]]
    batched = [i for i, batches in told.items() if len(batches) > 1]
    assert partial and batched


def test_back_dated_manual_entries_carry_recorded_by(workload):
    """Manual entries name who typed them in and are emitted after later events."""
    manual = [(i, e) for i, e in enumerate(workload.events) if e["recorded_by"] is not None]
    assert {e["type"] for _, e in manual} >= {"DataAccessed", "DataShared", "LegalDisclosure"}
    back_dated = [e for i, e in manual if i > 0 and e["occurred_at"] < workload.events[i - 1]["occurred_at"]]
    assert len(back_dated) >= len(manual) / 2
    out_of_order = sum(b["occurred_at"] < a["occurred_at"] for a, b in zip(workload.events, workload.events[1:]))
    assert out_of_order < len(workload.events) * 0.05  # mostly chronological


def test_some_events_sit_exactly_on_boundaries(workload):
    """Some events happen exactly at midnight UTC (always on the 1st of a month) and some share an instant."""
    midnights = [e["occurred_at"] for e in workload.events
                 if e["occurred_at"].timetz().replace(tzinfo=None) == datetime.min.time()]
    assert datetime(2026, 2, 1, tzinfo=UTC) in midnights and datetime(2026, 3, 1, tzinfo=UTC) in midnights
    times = Counter(e["occurred_at"] for e in workload.events)
    assert max(times.values()) > 1


def test_a_rich_subject_has_accesses_shares_and_a_disclosure(workload):
    """a_rich_subject names a customer touched by all three kinds of exposure."""
    subject_id = workload.a_rich_subject()
    assert {e["type"] for e in workload.touching(subject_id)} == {"DataAccessed", "DataShared", "LegalDisclosure"}


# -- the oracle on tiny hand-built workloads ------------------------------------------
# The oracle reads only a few fields, so these events carry just those.
T0 = datetime(2026, 1, 10, tzinfo=UTC)
US = timedelta(microseconds=1)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


DAY_30 = day(30)


def disclosure(eid, subjects=("cust-000001",), at=T0, status="PENDING", due_by=DAY_30,
               delay_until=None, order_ref=None) -> dict:
    return {"type": "LegalDisclosure", "event_id": eid, "occurred_at": at, "subject_ids": list(subjects),
            "actor": {"id": "emp-6001"}, "recipient": {"id": "auth-fbi", "kind": "OTHER"},
            "notification": {"status": status, "due_by": due_by, "delay_until": delay_until,
                             "order_ref": order_ref, "reason": None}}


def change(eid, of, at, status, delay_until=None, order_ref=None) -> dict:
    return {"type": "NotificationStatusChanged", "event_id": eid, "occurred_at": at,
            "subject_ids": ["cust-000001"], "actor": {"id": "emp-6001"}, "disclosure_event_id": of,
            "status": status, "delay_until": delay_until, "order_ref": order_ref, "reason": "x"}


def notice(eid, of, at, subjects=("cust-000001",), notified_at=None) -> dict:
    return {"type": "SubjectNotified", "event_id": eid, "occurred_at": at, "subject_ids": list(subjects),
            "actor": {"id": "sys-notifier"}, "disclosure_event_id": of,
            "notified_at": at if notified_at is None else notified_at, "channel": "email"}


def owed(events, as_of) -> list[dict]:
    return Workload(events=list(events)).owed_notices(as_of)


def only(events, as_of) -> dict:
    rows = owed(events, as_of)
    assert len(rows) == 1, rows
    return rows[0]


def test_pending_notice_is_overdue_strictly_after_its_due_date():
    """A PENDING notice is owed from its disclosure on, due at due_by and overdue only after it."""
    events = [disclosure("d1")]
    assert owed(events, T0 - US) == []
    assert only(events, day(30))["overdue"] is False
    row = only(events, day(30) + US)
    assert row["overdue"] is True and row["due_by"] == row["own_due_by"] == day(30) and row["delay"] is None


def test_unset_due_date_defaults_to_thirty_days_after_the_disclosure():
    """A disclosure without due_by is due DEFAULT_NOTICE_DAYS (30) days after it occurred."""
    row = only([disclosure("d1", at=day(0.5), due_by=None)], day(40))
    assert DEFAULT_NOTICE_DAYS == 30 and row["own_due_by"] == row["due_by"] == day(30.5)


def test_a_notice_clears_only_the_customers_it_names():
    """Partial notification: the customers not named are still owed."""
    events = [disclosure("d1", subjects=["cust-000001", "cust-000002", "cust-000003"]),
              notice("n1", "d1", day(5), subjects=["cust-000002"])]
    assert [r["subject_id"] for r in owed(events, day(5) - US)] == ["cust-000001", "cust-000002", "cust-000003"]
    assert [r["subject_id"] for r in owed(events, day(5))] == ["cust-000001", "cust-000003"]


def test_a_notice_listed_before_its_disclosure_still_clears_it():
    """Emission order does not matter: a notice arriving first clears its customer once both happened."""
    events = [notice("n1", "d1", day(5)), disclosure("d1")]
    assert owed(events, day(10)) == []
    assert len(owed(events, day(4))) == 1


def test_a_notice_counts_from_the_later_of_occurred_at_and_notified_at():
    """A SubjectNotified clears nothing before its notified_at, even if its occurred_at is earlier."""
    events = [disclosure("d1"), notice("n1", "d1", day(5), notified_at=day(6))]
    assert len(owed(events, day(5.5))) == 1 and owed(events, day(6)) == []


def test_a_delay_in_force_is_never_overdue_and_its_expiry_makes_the_notice_due():
    """Under a gag order nothing is overdue; at delay_until the notice is due, overdue right after."""
    events = [disclosure("d1", status="DELAYED_BY_ORDER", delay_until=day(40), order_ref="GAG-1")]
    row = only(events, day(40) - US)
    assert (row["delay"], row["overdue"], row["due_by"], row["order_ref"]) == ("in force", False, day(40), "GAG-1")
    row = only(events, day(40))
    assert (row["delay"], row["overdue"], row["due_by"]) == ("expired", False, day(40))
    assert only(events, day(40) + US)["overdue"] is True


def test_a_delay_ending_before_the_own_due_date_keeps_that_date():
    """When a delay expires before due_by, the notice is due at due_by, not at once."""
    row = only([disclosure("d1", status="DELAYED_FRAUD_INVESTIGATION", delay_until=day(10))], day(20))
    assert (row["delay"], row["due_by"], row["overdue"]) == ("expired", day(30), False)


def test_an_extension_keeps_the_notice_back_until_the_new_end():
    """A status change to a later delay_until before expiry extends the delay, with the new order."""
    events = [disclosure("d1", status="DELAYED_BY_ORDER", delay_until=day(20), order_ref="GAG-1"),
              change("c1", "d1", day(15), "DELAYED_BY_ORDER", day(50), "GAG-2")]
    row = only(events, day(25))
    assert (row["delay"], row["overdue"], row["order_ref"], row["delay_until"]) == ("in force", False, "GAG-2", day(50))
    row = only(events, day(50) + US)
    assert (row["overdue"], row["due_by"]) == (True, day(50))
    assert only(events, day(14))["order_ref"] == "GAG-1"  # the extension does not count before it happened


def test_lifting_an_indefinite_delay_makes_the_notice_due_at_once():
    """An indefinite delay holds until lifted; the lift time becomes the due date if due_by has passed."""
    events = [disclosure("d1", status="DELAYED_FRAUD_INVESTIGATION"), change("c1", "d1", day(45), "PENDING")]
    row = only(events, day(45) - US)
    assert (row["delay"], row["due_by"], row["overdue"]) == ("in force", None, False)
    row = only(events, day(45))
    assert (row["delay"], row["status"], row["due_by"], row["overdue"]) == ("lifted", "PENDING", day(45), False)
    assert only(events, day(45) + US)["overdue"] is True


def test_lifting_before_the_own_due_date_keeps_that_date():
    """A delay lifted early leaves the notice due at its own due_by."""
    events = [disclosure("d1", status="DELAYED_BY_ORDER", order_ref="GAG-1"), change("c1", "d1", day(10), "PENDING")]
    row = only(events, day(20))
    assert (row["delay"], row["due_by"], row["overdue"]) == ("lifted", day(30), False)


def test_lifting_an_already_expired_delay_changes_nothing():
    """A lift after delay_until dates the release at the expiry, not at the lift."""
    events = [disclosure("d1", status="DELAYED_BY_ORDER", due_by=day(5), delay_until=day(10), order_ref="G"),
              change("c1", "d1", day(20), "PENDING")]
    row = only(events, day(15))
    assert (row["delay"], row["due_by"], row["overdue"]) == ("expired", day(10), True)
    row = only(events, day(25))
    assert (row["delay"], row["due_by"], row["overdue"]) == ("expired", day(10), True)


def test_an_indefinite_delay_never_expires_by_itself():
    """With no delay_until, a delay is still in force years later and nothing is overdue."""
    row = only([disclosure("d1", status="DELAYED_BY_ORDER", order_ref="GAG-1")], day(5000))
    assert (row["delay"], row["due_by"], row["overdue"]) == ("in force", None, False)


def test_a_delay_imposed_after_the_disclosure_suspends_an_overdue_notice():
    """A gag order arriving after the due date stops the notice being overdue while in force."""
    events = [disclosure("d1"), change("c1", "d1", day(35), "DELAYED_BY_ORDER", day(60), "GAG-9")]
    assert only(events, day(32))["overdue"] is True
    row = only(events, day(36))
    assert (row["status"], row["delay"], row["overdue"]) == ("DELAYED_BY_ORDER", "in force", False)
    assert only(events, day(61))["overdue"] is True


def test_notified_and_not_required_owe_nothing():
    """NOTIFIED or NOT_REQUIRED, at disclosure or by a later change, leaves no row."""
    assert owed([disclosure("d1", status="NOTIFIED"), disclosure("d2", status="NOT_REQUIRED")], day(90)) == []
    events = [disclosure("d1"), change("c1", "d1", day(10), "NOT_REQUIRED")]
    assert len(owed(events, day(9))) == 1 and owed(events, day(10)) == []


def test_events_after_as_of_do_not_count():
    """A disclosure, change or notice after as_of is ignored as of then."""
    events = [disclosure("d1", at=day(3)), notice("n1", "d1", day(8))]
    assert owed(events, day(2)) == []
    assert len(owed(events, day(7))) == 1


def test_a_notice_without_its_disclosure_is_an_anomaly_and_owes_nothing():
    """anomalies() lists notices whose disclosure never appears; they change no obligation."""
    events = [disclosure("d1"), notice("n1", "missing", day(2))]
    w = Workload(events=events)
    assert [a["event_id"] for a in w.anomalies()] == ["n1"]
    assert len(w.owed_notices(day(3))) == 1


def test_rows_are_ordered_by_disclosure_then_customer():
    """owed_notices lists disclosures oldest first, then customers by id."""
    events = [disclosure("d2", at=day(2), subjects=["cust-000009", "cust-000003"]), disclosure("d1", at=day(1))]
    assert [(r["disclosure_event_id"], r["subject_id"]) for r in owed(events, day(3))] == [
        ("d1", "cust-000001"), ("d2", "cust-000003"), ("d2", "cust-000009")]


def test_subject_report_hides_a_delayed_disclosure_until_lifted_or_notified():
    """The subject-facing view hides a DELAYED_* disclosure (even expired) until lifted or that customer is told."""
    events = [disclosure("d1", subjects=["cust-000001", "cust-000002"], status="DELAYED_BY_ORDER",
                         delay_until=day(20), order_ref="GAG-1"),
              notice("n1", "d1", day(5), subjects=["cust-000002"]),
              change("c1", "d1", day(30), "PENDING")]
    w = Workload(events=events)
    assert w.subject_report("cust-000001", day(25)) == []  # expired but not lifted
    assert [e["event_id"] for e in w.subject_report("cust-000002", day(6))] == ["d1"]
    assert [e["event_id"] for e in w.subject_report("cust-000001", day(30))] == ["d1"]


def test_listings_are_newest_first_with_ties_by_event_id_and_half_open_windows():
    """touching/by_actor/disclosed_to sort by (occurred_at, event_id) descending and filter since <= t < until."""
    a = {**disclosure("a"), "occurred_at": day(1)}
    b = {**disclosure("b"), "occurred_at": day(1)}
    c = {**disclosure("c"), "occurred_at": day(2)}
    consent = {"type": "ConsentChanged", "event_id": "z", "occurred_at": day(3), "subject_ids": ["cust-000001"],
               "actor": {"id": "emp-6001"}}
    w = Workload(events=[a, c, consent, b])
    assert [e["event_id"] for e in w.touching("cust-000001")] == ["c", "b", "a"]
    assert [e["event_id"] for e in w.touching("cust-000001", since=day(1), until=day(2))] == ["b", "a"]
    assert [e["event_id"] for e in w.by_actor("emp-6001")] == ["z", "c", "b", "a"]
    assert [e["event_id"] for e in w.disclosed_to("auth-fbi", since=day(2))] == ["c"]
    assert w.disclosed_to(recipient_kind="ADVERTISER") == []


def test_by_actor_includes_denied_and_break_glass_accesses(workload):
    """Accesses by an actor come back whatever their outcome."""
    glass = next(e for e in workload.events if e["type"] == "DataAccessed" and e["outcome"] == "BREAK_GLASS")
    denied = next(e for e in workload.events if e["type"] == "DataAccessed" and e["outcome"] == "DENIED")
    assert glass in workload.by_actor(glass["actor"]["id"])
    assert denied in workload.by_actor(denied["actor"]["id"], types=("DataAccessed",))
