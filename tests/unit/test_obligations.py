"""Notices owed after legal disclosures: the ledger's answer against the simulator's oracle, and the rules one by one."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from fill import cached_ledger, filled, ledger, recorded_by, workload  # noqa: F401 (fixtures)

from ledger.audit.obligations import DEFAULT_DUE, CaseBook, Recorded, obligations
from ledger.dev.simulate import DEFAULT_NOTICE_DAYS, oracle
from ledger.model.events import to_json
from ledger.model.times import iso, to_millis
from ledger.store import Ledger

UTC = timezone.utc
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def oracle_rows(workload, filled, as_of: datetime) -> list[tuple]:
    seen = recorded_by(workload, filled, to_millis(as_of))
    return [(r["disclosure_event_id"], r["subject_id"], iso(r["own_due_by"]), iso(r["due_by"]), r["status"],
             r["delay"], iso(r["delay_until"]), r["order_ref"], r["overdue"])
            for r in oracle.owed_notices(seen, as_of, filled.positions)]


def ledger_rows(ledger, as_of: datetime, **kw) -> list[tuple]:
    notices, _ = obligations(ledger, as_of=as_of, **kw)
    return [(n.disclosure_event_id, n.subject_id, iso(n.own_due_by), iso(n.due_by), n.status, n.delay,
             iso(n.delay_until), n.order_ref, n.overdue) for n in notices]


def boundary_instants(workload) -> list[datetime]:
    """Every delay end and due date in the workload, and the microseconds either side."""
    instants = set()
    for e in workload.events:
        if e["type"] == "LegalDisclosure":
            n = e["notification"]
            for t in (n["due_by"], n["delay_until"]):
                if t is not None:
                    instants.add(t)
        elif e["type"] == "NotificationStatusChanged" and e["delay_until"] is not None:
            instants.add(e["delay_until"])
    picked = sorted(instants)[:: max(1, len(instants) // 25)]
    return [t + d for t in picked for d in (-US, timedelta(0), US)]


def test_default_due_is_the_oracles():
    """A disclosure without due_by is due DEFAULT_NOTICE_DAYS after it, as the oracle says."""
    assert DEFAULT_DUE == timedelta(days=DEFAULT_NOTICE_DAYS)


def test_obligations_match_the_oracle_week_by_week(ledger, workload, filled):
    """At weekly instants, the owed notices equal the oracle's over the events recorded by then."""
    for week in range(0, 14):
        as_of = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=7 * week, hours=9)
        assert ledger_rows(ledger, as_of) == oracle_rows(workload, filled, as_of), as_of


def test_obligations_match_the_oracle_at_exact_due_and_expiry_instants(ledger, workload, filled):
    """At a due date or delay end, and a microsecond either side, the ledger agrees with the oracle."""
    for as_of in boundary_instants(workload):
        assert ledger_rows(ledger, as_of) == oracle_rows(workload, filled, as_of), as_of


def test_the_workload_covers_every_delay_situation(ledger, workload, filled):
    """Delays in force, expired and lifted, overdue notices, and a notice recorded before its disclosure all occur."""
    seen = set()
    for week in range(2, 14):
        notices, _ = obligations(ledger, as_of=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=7 * week))
        for n in notices:
            seen.add((n.delay, n.overdue, n.delay_until is None))
    assert {("in force", False, True), ("in force", False, False), ("expired", True, False),
            ("lifted", False, True), (None, True, True)} <= seen
    by_id = {e["event_id"]: e for e in workload.events}
    early = [e for e in workload.events if e["type"] == "SubjectNotified" and e["disclosure_event_id"] in by_id
             and filled.recorded[e["event_id"]] < filled.recorded[e["disclosure_event_id"]]]
    assert early, "a notice recorded before its disclosure"
    changes = [(by_id[e["disclosure_event_id"]]["notification"]["status"], e["status"])
               for e in workload.events if e["type"] == "NotificationStatusChanged"]
    assert {("PENDING", "DELAYED_BY_ORDER"), ("DELAYED_BY_ORDER", "DELAYED_BY_ORDER"),
            ("DELAYED_BY_ORDER", "PENDING"), ("DELAYED_FRAUD_INVESTIGATION", "DELAYED_FRAUD_INVESTIGATION")} <= set(changes)


def test_a_notice_recorded_before_its_disclosure_clears_it_once_both_are_in(ledger, workload, filled):
    """Between the notice and the late disclosure nothing is owed for it; afterwards still nothing."""
    by_id = {e["event_id"]: e for e in workload.events}
    notice = next(e for e in workload.events if e["type"] == "SubjectNotified" and e["disclosure_event_id"] in by_id
                  and filled.recorded[e["event_id"]] < filled.recorded[e["disclosure_event_id"]])
    disclosure_id = notice["disclosure_event_id"]
    for ms in (filled.recorded[notice["event_id"]], filled.recorded[disclosure_id], filled.recorded[disclosure_id] + 1):
        as_of = datetime.fromtimestamp(ms / 1000, UTC)
        owed = {(r[0], r[1]) for r in ledger_rows(ledger, as_of)}
        assert not {(disclosure_id, s) for s in notice["subject_ids"]} & owed


def test_overdue_only_keeps_the_overdue_rows(ledger):
    """--overdue lists exactly the overdue subset."""
    as_of = datetime(2026, 3, 15, tzinfo=UTC)
    everything = ledger_rows(ledger, as_of)
    assert ledger_rows(ledger, as_of, overdue_only=True) == [r for r in everything if r[-1]]


def test_anomalies_list_notices_whose_disclosure_never_appears(ledger, workload):
    """A SubjectNotified for a disclosure the ledger does not hold is reported, as the oracle finds."""
    _, anomalies = obligations(ledger)
    lost = [a["event_id"] for a in anomalies if a["kind"] == "notice_without_disclosure"]
    assert lost and sorted(lost) == sorted(e["event_id"] for e in workload.anomalies())


# -- the rules, one scenario at a time (hand-built events, checked against oracle.notice_state too) -----------

def _id() -> str:
    return str(uuid.uuid4())


def disclosure(status="PENDING", *, subjects=("c1", "c2"), due=T0 + timedelta(days=30), until=None, order=None):
    return {"type": "LegalDisclosure", "event_id": _id(), "occurred_at": T0, "subject_ids": list(subjects),
            "source_service": "legal-case-tool", "correlation_id": None,
            "recipient": {"name": "Court"}, "request": {"id": "LR-1"},
            "notification": {"status": status, "due_by": due, "delay_until": until, "order_ref": order}}


def change(d, at, status, until=None, order=None):
    return {"type": "NotificationStatusChanged", "event_id": _id(), "occurred_at": at, "subject_ids": d["subject_ids"],
            "source_service": d["source_service"],
            "disclosure_event_id": d["event_id"], "status": status, "delay_until": until, "order_ref": order}


def notified(d, at, subjects):
    return {"type": "SubjectNotified", "event_id": _id(), "occurred_at": at, "notified_at": at,
            "source_service": d["source_service"],
            "subject_ids": list(subjects), "disclosure_event_id": d["event_id"]}


def recorded_at_occurrence(event) -> Recorded:
    """Where a hand-built event is recorded: at its occurred_at, on its own topic (the oracle's default)."""
    return Recorded(to_millis(event["occurred_at"]), "ledger.disclosure", 0, 0)


def add(book, event) -> None:
    book.add(to_json(event), recorded_at_occurrence(event))


def owed(events, now):
    book = CaseBook()
    for e in events:
        add(book, e)
    mine = [(n.subject_id, n.due_by, n.status, n.delay, n.overdue) for n in book.notices(now)]
    reference = [(r["subject_id"], r["due_by"], r["status"], r["delay"], r["overdue"])
                 for r in oracle.owed_notices(events, now)]
    assert mine == reference
    return mine


def test_an_expired_delay_makes_the_notice_due_at_once_and_overdue_just_after():
    """At delay_until the delay is over and the notice due (not yet overdue); a microsecond later it is overdue."""
    until = T0 + timedelta(days=40)
    d = disclosure("DELAYED_BY_ORDER", until=until, order="GAG-1")
    assert owed([d], until - US)[0][3:] == ("in force", False)
    assert owed([d], until)[0][1:] == (until, "DELAYED_BY_ORDER", "expired", False)
    assert owed([d], until + US)[0][4] is True


def test_an_expired_delay_leaves_a_later_own_due_date_in_place():
    """When the notice's own due date is after the delay's end, it stays due then."""
    d = disclosure("DELAYED_FRAUD_INVESTIGATION", until=T0 + timedelta(days=5), due=T0 + timedelta(days=30))
    assert owed([d], T0 + timedelta(days=6))[0][1:] == (T0 + timedelta(days=30), d["notification"]["status"],
                                                        "expired", False)


def test_a_delay_without_an_end_never_expires_by_itself():
    """An indefinite delay holds the notice back years later; nothing is overdue."""
    d = disclosure("DELAYED_BY_ORDER", order="GAG-2")
    rows = owed([d], T0 + timedelta(days=3650))
    assert [r[1:] for r in rows] == [(None, "DELAYED_BY_ORDER", "in force", False)] * 2


def test_a_lift_makes_the_notice_due_at_the_later_of_the_lift_and_its_own_due_date():
    """Lifted at L, the notice is due at max(own due date, L)."""
    d = disclosure("DELAYED_BY_ORDER", order="GAG-3", due=T0 + timedelta(days=10))
    lift = change(d, T0 + timedelta(days=20), "PENDING")
    rows = owed([d, lift], T0 + timedelta(days=21))
    assert rows[0][1:] == (T0 + timedelta(days=20), "PENDING", "lifted", True)


def test_lifting_an_already_expired_delay_changes_nothing():
    """A lift after the delay ran out keeps the due time at the delay's end."""
    until = T0 + timedelta(days=35)
    d = disclosure("DELAYED_BY_ORDER", until=until, order="GAG-4")
    lift = change(d, until + timedelta(days=5), "PENDING")
    assert owed([d, lift], until + timedelta(days=6))[0][1] == until


def test_an_extension_moves_the_end_of_the_delay():
    """A second DELAYED status with a later end keeps the notice held until then."""
    d = disclosure("DELAYED_BY_ORDER", until=T0 + timedelta(days=21), order="GAG-5")
    extend = change(d, T0 + timedelta(days=15), "DELAYED_BY_ORDER", T0 + timedelta(days=45), "GAG-6")
    rows = owed([d, extend], T0 + timedelta(days=30))
    assert rows[0][1:4] == (T0 + timedelta(days=45), "DELAYED_BY_ORDER", "in force")


def test_a_delay_imposed_after_the_disclosure_holds_the_notice_back():
    """A PENDING disclosure later put under a gag order is not overdue while the order lasts."""
    d = disclosure("PENDING", due=T0 + timedelta(days=3))
    gag = change(d, T0 + timedelta(days=1), "DELAYED_BY_ORDER", T0 + timedelta(days=40), "GAG-7")
    assert owed([d, gag], T0 + timedelta(days=10))[0][3:] == ("in force", False)


def test_a_notice_clears_only_the_customers_it_names_even_before_its_disclosure():
    """A SubjectNotified recorded before its disclosure clears its customers and no one else.

    (Changed with issue 12: the notice is *recorded* first but dated after the disclosure; one
    *dated* before its disclosure is refused, see test_legal_authority.py.)
    """
    d = disclosure("PENDING", subjects=("c1", "c2", "c3"))
    early = notified(d, T0 + timedelta(hours=1), ["c2"])
    book = CaseBook()
    book.add(to_json(early), Recorded(to_millis(T0 + timedelta(hours=1)), "ledger.disclosure", 0, 0))
    book.add(to_json(d), Recorded(to_millis(T0 + timedelta(hours=5)), "ledger.disclosure", 1, 0))
    assert [n.subject_id for n in book.notices(T0 + timedelta(days=1))] == ["c1", "c3"]


def test_waived_and_already_notified_disclosures_owe_nothing():
    """NOT_REQUIRED (initial or by a change) and NOTIFIED owe no notice."""
    d = disclosure("PENDING")
    assert owed([d, change(d, T0 + timedelta(days=1), "NOT_REQUIRED")], T0 + timedelta(days=60)) == []
    assert owed([disclosure("NOTIFIED")], T0 + timedelta(days=60)) == []
    assert owed([disclosure("NOT_REQUIRED")], T0 + timedelta(days=60)) == []


def test_withheld_from_the_customer_until_lifted_or_notified_not_merely_expired():
    """An expired delay keeps the disclosure hidden from its customer; a lift or the customer's notice shows it."""
    until = T0 + timedelta(days=10)
    d = disclosure("DELAYED_BY_ORDER", until=until, order="GAG-8")
    book = CaseBook()
    add(book, d)
    case = book.case(d["event_id"])
    assert case.withheld_from("c1", until + timedelta(days=100))
    add(book, notified(d, until + timedelta(days=1), ["c1"]))
    assert not case.withheld_from("c1", until + timedelta(days=2))
    assert case.withheld_from("c2", until + timedelta(days=2))
    add(book, change(d, until + timedelta(days=3), "PENDING"))
    assert not case.withheld_from("c2", until + timedelta(days=4))


def test_a_replayed_ledger_owes_the_same_notices(ledger, workload):
    """Ingested partition by partition (another append order), the ledger answers obligations identically."""
    replayed = cached_ledger(workload, ("query",), by_partition=True)
    with Ledger.open(replayed.path) as other:
        for as_of in (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 20, 12, tzinfo=UTC)):
            assert ledger_rows(other, as_of) == ledger_rows(ledger, as_of)
            assert obligations(other, as_of=as_of)[1] == obligations(ledger, as_of=as_of)[1]
