"""Who may change a legal notice (issue 12, section 1): every attack the issue lists, as the attacker ran it.

Each test writes raw Kafka records into a real ledger through the Ingestor
(the writer's own code path): a court-ordered delay set by the legal team's
``legal-case-tool``, then events from services with no authority for the
case (``marketing-sync``), on the wrong topic, back-dated, or dated to jump
the queue. The ledger must keep them as evidence, change nothing because of
them, and list each one as an anomaly in words, through the Python API and
through the CLI.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from fill import ingest_records

from ledger.audit.obligations import obligations
from ledger.audit.report import build_report, render
from ledger.cli import main
from ledger.errors import ValidationError
from ledger.model.events import event_key
from ledger.model.times import to_millis
from ledger.store import Ledger
from ledger.wire.codec import default_codec
from ledger.wire.record import EVENT_TYPE_HEADER, Record

UTC = timezone.utc
CODEC = default_codec()
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
JUDGED = datetime(2026, 6, 1, tzinfo=UTC)
VICTIM, STRANGER = "cust-victim-13", "cust-stranger-99"
LEGAL, ATTACKER = "legal-case-tool", "marketing-sync"
REQUEST = "LR-2026-00042"
COUNSEL = {"id": "emp-6001", "type": "EMPLOYEE", "role": "legal_counsel", "organization": "Legal"}


def _id() -> str:
    return str(uuid.uuid4())


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def gagged_disclosure(until: datetime | None = datetime(2099, 1, 1, tzinfo=UTC), **over) -> dict:
    """A court-ordered non-disclosure: the customer may not learn of it before ``until``."""
    return CODEC.validate({
        "type": "LegalDisclosure", "event_id": _id(), "occurred_at": T0, "source_service": LEGAL,
        "actor": COUNSEL, "subject_ids": [VICTIM], "correlation_id": REQUEST,
        "data_categories": ["user.usage.call_records"], "purpose": "legal.obligation",
        "legal_basis": "LEGAL_OBLIGATION",
        "justification": {"reason_code": "legal_process", "ticket": REQUEST},
        "request": {"id": REQUEST, "kind": "COURT_ORDER", "authority": "District Court", "received_at": day(-2)},
        "reviewed_by": "emp-6002", "requested_categories": ["user.usage.call_records"],
        "recipient": {"id": "auth-police", "name": "Metropolitan Police", "kind": "OTHER"},
        "notification": {"status": "DELAYED_BY_ORDER", "due_by": day(30), "delay_until": until,
                         "order_ref": "GAG-2026-1"},
        **over,
    })


def status_change(d: dict, status: str, *, at: datetime, by: str = LEGAL, subjects=None, until=None,
                  order_ref=None) -> dict:
    return CODEC.validate({
        "type": "NotificationStatusChanged", "event_id": _id(), "occurred_at": at, "source_service": by,
        "actor": {"id": f"svc-{by}", "type": "SERVICE"}, "subject_ids": list(subjects or d["subject_ids"]),
        "disclosure_event_id": d["event_id"], "status": status, "delay_until": until, "order_ref": order_ref,
        "reason": "changed",
    })


def notice(d: dict, *, at: datetime, by: str = LEGAL, subjects=None) -> dict:
    return CODEC.validate({
        "type": "SubjectNotified", "event_id": _id(), "occurred_at": at, "source_service": by,
        "actor": {"id": f"svc-{by}", "type": "SERVICE"}, "subject_ids": list(subjects or d["subject_ids"]),
        "disclosure_event_id": d["event_id"], "notified_at": at, "channel": "email",
    })


class Topics:
    """Raw records as a producer would put them on Kafka: any topic, any partition, any timestamp."""

    def __init__(self):
        self.records: list[Record] = []
        self.offsets: dict[tuple[str, int], int] = {}

    def send(self, event: dict, *, topic: str = "ledger.disclosure", partition: int = 0,
             recorded: datetime | None = None) -> dict:
        offset = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = offset + 1
        at = recorded if recorded is not None else event["occurred_at"]
        self.records.append(Record(topic, partition, offset, to_millis(at), event_key(event), CODEC.encode(event),
                                   ((EVENT_TYPE_HEADER, event["type"].encode()),)))
        return event

    def ledger(self, path, order=None, misrouted: int = 0) -> Ledger:
        records = self.records if order is None else sorted(self.records, key=order)
        counts = ingest_records(path, records, codec=CODEC)
        # every attack is stored: as an ordinary entry, or (on the wrong topic) rejected by the routing check
        assert (counts["entry"], counts["rejected"]) == (len(self.records) - misrouted, misrouted), counts
        return Ledger.open(path)


def owed_to_victim(ledger, now=JUDGED):
    notices, anomalies = obligations(ledger, now=now)
    return [n for n in notices if n.subject_id == VICTIM], anomalies


def subject_sees(ledger, now=JUDGED) -> list[str]:
    return [i["event_id"] for i in build_report(ledger, VICTIM, generated_at=now).timeline]


def messages(anomalies) -> list[str]:
    return [a["message"] for a in anomalies]


def test_a_lift_from_an_unrelated_service_naming_a_stranger_changes_nothing(tmp_path):
    """marketing-sync's PENDING for a gagged disclosure: still hidden, still in force, listed in words."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure())
    attack = kafka.send(status_change(d, "PENDING", at=day(3), by=ATTACKER, subjects=[STRANGER]), partition=1)
    with kafka.ledger(tmp_path / "l.db") as ledger:
        owed, anomalies = owed_to_victim(ledger)
        assert [(n.status, n.delay, n.overdue) for n in owed] == [("DELAYED_BY_ORDER", "in force", False)]
        assert d["event_id"] not in subject_sees(ledger)
        assert messages(anomalies) == [
            f"unauthorised attempt to lift the delay of disclosure {d['event_id']} by marketing-sync "
            "(status PENDING): ignored"]
        assert anomalies[0]["event_id"] == attack["event_id"] and anomalies[0]["kind"] == "status_change_unauthorised"


@pytest.mark.parametrize("topic", ["ledger.access", "ledger.consent", "ledger.sharing"])
@pytest.mark.parametrize("by", [ATTACKER, LEGAL])
def test_a_lift_on_another_topic_is_never_a_notice_state_change(tmp_path, topic, by):
    """A NotificationStatusChanged or SubjectNotified on the access/consent/sharing topic changes nothing,
    even from the disclosure's own service."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure())
    kafka.send(status_change(d, "PENDING", at=day(3), by=by), topic=topic)
    kafka.send(notice(d, at=day(4), by=by), topic=topic)
    with kafka.ledger(tmp_path / "l.db", misrouted=2) as ledger:
        owed, anomalies = owed_to_victim(ledger)
        assert [(n.status, n.delay) for n in owed] == [("DELAYED_BY_ORDER", "in force")]
        assert d["event_id"] not in subject_sees(ledger)
        # Misrouted records are never events (ledger/routing.py): kept as rejected, naming the topic.
        reasons = [r for (r,) in ledger.conn.execute("SELECT reason FROM entries WHERE status = 'rejected'")]
        assert len(reasons) == 2 and all(r.startswith("routing: ") and f"on topic {topic}" in r for r in reasons)
        assert anomalies == []


def test_notified_or_not_required_from_a_random_service_does_not_clear_the_notice(tmp_path):
    """NOTIFIED and NOT_REQUIRED from marketing-sync on a PENDING disclosure leave the notice owed and overdue."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure(notification={"status": "PENDING", "due_by": day(30)}))
    kafka.send(status_change(d, "NOTIFIED", at=day(2), by=ATTACKER))
    kafka.send(status_change(d, "NOT_REQUIRED", at=day(3), by=ATTACKER))
    with kafka.ledger(tmp_path / "l.db") as ledger:
        owed, anomalies = owed_to_victim(ledger)
        assert [(n.status, n.overdue) for n in owed] == [("PENDING", True)]
        assert messages(anomalies) == [
            f"unauthorised attempt to mark as notified the customers of disclosure {d['event_id']} by "
            "marketing-sync (status NOTIFIED): ignored",
            f"unauthorised attempt to waive the notice of disclosure {d['event_id']} by marketing-sync "
            "(status NOT_REQUIRED): ignored"]


def test_a_waiver_dated_before_the_disclosure_is_refused_even_from_its_authority(tmp_path):
    """NOT_REQUIRED back-dated to 2000 waives nothing, whoever sends it."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure(notification={"status": "PENDING", "due_by": day(30)}))
    kafka.send(status_change(d, "NOT_REQUIRED", at=datetime(2000, 1, 1, tzinfo=UTC)), recorded=day(1))
    with kafka.ledger(tmp_path / "l.db") as ledger:
        owed, anomalies = owed_to_victim(ledger)
        assert [n.status for n in owed] == ["PENDING"]
        assert [a["kind"] for a in anomalies] == ["status_change_before_disclosure"]
        assert anomalies[0]["message"].startswith(
            f"notice status NOT_REQUIRED dated before disclosure {d['event_id']} (2000-01-01T00:00:00")


def test_a_notice_from_a_random_service_during_a_delay_neither_clears_nor_reveals(tmp_path):
    """SubjectNotified from marketing-sync while the gag holds: still owed, hidden, auditor reads notified False."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure())
    kafka.send(notice(d, at=day(5), by=ATTACKER))
    with kafka.ledger(tmp_path / "l.db") as ledger:
        owed, anomalies = owed_to_victim(ledger)
        assert len(owed) == 1 and owed[0].delay == "in force"
        assert d["event_id"] not in subject_sees(ledger)
        auditor = build_report(ledger, VICTIM, audience="auditor", generated_at=JUDGED)
        (item,) = [i for i in auditor.timeline if i["event_id"] == d["event_id"]]
        assert item["withheld_from_subject"] is True and item["notice"]["notified"] is False
        expected = f"SubjectNotified for {d['event_id']} from marketing-sync while the delay was in force: ignored"
        assert messages(anomalies) == [expected]
        assert expected in messages(auditor.anomalies)
        assert expected in render(auditor, "html") and expected in render(auditor, "csv")


def test_a_notice_after_the_delay_expired_is_described_as_such(tmp_path):
    """An unauthorised notice once the delay has run out is not said to come 'while the delay was in force'."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure(until=day(10)))
    kafka.send(notice(d, at=day(12), by=ATTACKER))
    with kafka.ledger(tmp_path / "l.db") as ledger:
        owed, anomalies = owed_to_victim(ledger)
        assert [(n.delay, n.overdue) for n in owed] == [("expired", True)]
        assert messages(anomalies) == [f"SubjectNotified for {d['event_id']} from marketing-sync "
                                       "(not an authority for this disclosure): ignored"]


def test_a_lift_dated_just_after_an_extension_cannot_jump_the_queue(tmp_path):
    """Recorded before the extension but dated 1 µs after it, a lift loses: changes apply in recorded order."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure(until=day(21)))
    extension_at = day(10)
    kafka.send(status_change(d, "PENDING", at=extension_at + timedelta(microseconds=1)), recorded=day(5))
    kafka.send(status_change(d, "DELAYED_BY_ORDER", at=extension_at, until=day(45), order_ref="GAG-2026-2"))
    with kafka.ledger(tmp_path / "l.db") as ledger:
        owed, anomalies = owed_to_victim(ledger, now=day(30))
        assert [(n.status, n.delay, n.order_ref) for n in owed] == [("DELAYED_BY_ORDER", "in force", "GAG-2026-2")]
        assert d["event_id"] not in subject_sees(ledger, now=day(30))
        assert anomalies == []


def test_equal_kafka_timestamps_are_ordered_by_topic_partition_offset_whatever_the_read_order(tmp_path):
    """Two changes with one Kafka timestamp on two partitions give one answer, ingested in either order."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure(until=day(21)))
    kafka.send(status_change(d, "PENDING", at=day(4)), partition=2, recorded=day(6))
    kafka.send(status_change(d, "DELAYED_BY_ORDER", at=day(5), until=day(60), order_ref="GAG-2026-3"),
               partition=1, recorded=day(6))
    answers = []
    for name, order in (("a.db", None), ("b.db", lambda r: -r.partition)):
        with kafka.ledger(tmp_path / name, order) as ledger:
            owed, _ = owed_to_victim(ledger, now=day(30))
            answers.append([(n.status, n.delay, n.order_ref) for n in owed])
    # partition 1 sorts before partition 2: the lift (partition 2) is the last word.
    assert answers[0] == answers[1] == [("PENDING", "lifted", None)]


def test_events_tied_to_a_delayed_disclosure_are_withheld_with_it(tmp_path):
    """Counsel's export for the same legal request (by ticket or correlation_id) is hidden from the customer."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure())
    base = {"type": "DataAccessed", "occurred_at": day(-1), "source_service": "case-files", "actor": COUNSEL,
            "subject_ids": [VICTIM], "data_categories": ["user.usage.call_records"], "purpose": "legal.obligation",
            "access_type": "EXPORT", "outcome": "GRANTED"}
    by_ticket = kafka.send(CODEC.validate({**base, "event_id": _id(),
                                           "justification": {"reason_code": "legal_process", "ticket": REQUEST}}),
                           topic="ledger.access")
    by_case = kafka.send(CODEC.validate({**base, "event_id": _id(), "correlation_id": REQUEST}),
                         topic="ledger.access")
    unrelated = kafka.send(CODEC.validate({**base, "event_id": _id(), "purpose": "essential.service.support",
                                           "correlation_id": "SUP-1"}), topic="ledger.access")
    with kafka.ledger(tmp_path / "l.db") as ledger:
        assert subject_sees(ledger) == [unrelated["event_id"]]
        auditor = build_report(ledger, VICTIM, audience="auditor", generated_at=JUDGED)
        marked = {i["event_id"]: i.get("withheld_with") for i in auditor.timeline if i.get("withheld_from_subject")}
        assert marked == {d["event_id"]: None, by_ticket["event_id"]: d["event_id"], by_case["event_id"]: d["event_id"]}
        # Once the legal team lifts the delay, the customer sees all of it.
    kafka.send(status_change(d, "PENDING", at=day(40)))
    with kafka.ledger(tmp_path / "lifted.db") as ledger:
        assert set(subject_sees(ledger)) == {d["event_id"], by_ticket["event_id"], by_case["event_id"],
                                             unrelated["event_id"]}


def test_the_authority_lifts_and_notifies_as_before(tmp_path):
    """The legal team's own lift and notice still work: the customer sees the disclosure, nothing is owed."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure())
    kafka.send(status_change(d, "PENDING", at=day(40)))
    kafka.send(notice(d, at=day(41)))
    with kafka.ledger(tmp_path / "l.db") as ledger:
        owed, anomalies = owed_to_victim(ledger)
        assert owed == [] and anomalies == []
        assert d["event_id"] in subject_sees(ledger)


def test_the_cli_shows_the_attack_as_an_anomaly_and_keeps_the_disclosure_hidden(tmp_path, capsys):
    """obligations (json and table) and report (subject and auditor) through `ledger`, as an operator runs them."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure())
    kafka.send(status_change(d, "PENDING", at=day(3), by=ATTACKER, subjects=[STRANGER]), topic="ledger.access")
    kafka.send(status_change(d, "PENDING", at=day(3), by=ATTACKER, subjects=[STRANGER]))
    kafka.send(notice(d, at=day(4), by=ATTACKER))
    db = str(tmp_path / "l.db")
    kafka.ledger(db, misrouted=1).close()  # the one on the access topic is rejected by the routing check
    assert main(["obligations", "--db", db, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(n["subject_id"], n["delay"]) for n in doc["notices"]] == [(VICTIM, "in force")]
    assert [a["kind"] for a in doc["anomalies"]] == ["status_change_unauthorised", "notice_unauthorised"]
    assert main(["obligations", "--db", db]) == 0
    err = capsys.readouterr().err
    assert f"unauthorised attempt to lift the delay of disclosure {d['event_id']} by marketing-sync" in err
    assert main(["report", VICTIM, "--db", db, "--format", "json"]) == 0
    subject = json.loads(capsys.readouterr().out)
    assert d["event_id"] not in json.dumps(subject) and "anomalies" not in subject
    assert main(["report", VICTIM, "--db", db, "--audience", "auditor", "--format", "json"]) == 0
    auditor = json.loads(capsys.readouterr().out)
    assert any("while the delay was in force: ignored" in a["message"] for a in auditor["anomalies"])


def test_an_as_of_later_than_now_is_refused_naming_the_option(tmp_path, capsys):
    """--as-of in the future would let claimed future lifts count; the library and the CLI refuse it."""
    kafka = Topics()
    kafka.send(gagged_disclosure())
    db = str(tmp_path / "l.db")
    kafka.ledger(db).close()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with Ledger.open(db) as ledger, pytest.raises(ValidationError, match="--as-of.*later than now"):
        obligations(ledger, as_of=future)
    for argv in (["obligations"], ["who-saw", VICTIM], ["report", VICTIM]):
        code = main([*argv, "--db", db, "--as-of", future])
        err = capsys.readouterr().err
        assert code != 0 and "--as-of" in err and "later than now" in err and "Traceback" not in err


# -- authorities named by the recorded policy (issue 15) ----------------------------------------------
def _recorded_policy(at: datetime) -> dict:
    from pathlib import Path

    from ledger.model.policy import load, published_fields

    path = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
    text = path.read_text(encoding="utf-8")
    return CODEC.validate({"type": "PolicyPublished", "occurred_at": at,
                           **published_fields(load(path), text, {"id": "dpo-1", "type": "EMPLOYEE"})})


@pytest.mark.parametrize("policy_day, honoured", [(None, False), (1, True), (5, False)])
def test_a_service_the_recorded_policy_names_is_an_authority_from_the_policys_recorded_time(
        tmp_path, policy_day, honoured):
    """The example policy names `notifier` a legal authority: its notice (day 3) for legal-case-tool's
    disclosure takes effect only when that policy was recorded before it (day 1); with no policy, or one
    recorded later (day 5), it is refused as before. The policy comes from the ledger, so every reader
    (obligations, the subject's report) sees the same."""
    kafka = Topics()
    d = kafka.send(gagged_disclosure(until=day(2)))
    if policy_day is not None:
        kafka.send(_recorded_policy(day(policy_day)), topic="ledger.policy")
    kafka.send(notice(d, at=day(3), by="notifier"))
    with kafka.ledger(tmp_path / "l.db") as ledger:
        owed, anomalies = owed_to_victim(ledger)
        assert (owed == []) is honoured
        assert any(a["kind"] == "notice_unauthorised" for a in anomalies) is not honoured
