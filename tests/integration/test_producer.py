"""The producer SDK against a real broker: validation first, the wire format, durable mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import pytest
from kafkautil import read_topics

from ledger.config import Settings
from ledger.dev.simulate import simulate
from ledger.errors import ValidationError
from ledger.kafka.topics import topic_for
from ledger.produce.producer import AuditProducer
from ledger.wire.codec import default_codec


def access_event(**changes) -> dict:
    event = {
        "type": "DataAccessed",
        "occurred_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        "source_service": "support-desk",
        "actor": {"id": "emp-17", "type": "EMPLOYEE", "role": "support_agent", "organization": "Support"},
        "subject_ids": ["cust-000042", "cust-000007"],
        "data_categories": ["user.contact.email"],
        "purpose": "essential.service.support",
        "access_type": "VIEW",
        "outcome": "GRANTED",
    }
    event.update(changes)
    return event


def test_constructing_and_rejecting_never_touch_a_missing_broker():
    """A producer pointed at nothing is built at once, and an invalid event raises naming the field without sending."""
    started = time.monotonic()
    producer = AuditProducer(Settings.load(env={}, bootstrap_servers="127.0.0.1:1"))
    with pytest.raises(ValidationError) as caught:
        producer.emit(access_event(actor={"id": "emp-17", "type": "JANITOR"}))
    assert caught.value.field == "actor.type"
    assert time.monotonic() - started < 5, "construction or validation waited for a broker"
    assert producer._client is None


def test_unknown_fields_are_refused_by_name():
    """A field the schema does not know is refused, naming it."""
    producer = AuditProducer(Settings.load(env={}, bootstrap_servers="127.0.0.1:1"))
    with pytest.raises(ValidationError, match="favourite_colour"):
        producer.emit(access_event(favourite_colour="blue"))


def test_events_land_on_their_topics_keyed_stamped_and_decodable(settings):
    """Each event goes to its type's topic, keyed by its smallest subject, with a type header and the send time."""
    events = simulate(seed=2, events=300, subjects=30).events
    backdated = access_event(occurred_at=datetime(2025, 1, 1, tzinfo=UTC), recorded_by="emp-99")
    before = datetime.now(UTC) - timedelta(seconds=5)
    with AuditProducer(settings) as producer:
        deliveries = [producer.emit(e) for e in events + [backdated]]
        producer.flush()
        landed = {d.event_id: d.result(timeout=30) for d in deliveries}
    codec = default_codec()
    records = read_topics(settings)
    assert len(records) == len(events) + 1
    by_id = {}
    for m in records:
        event = codec.decode(m.value)
        by_id[event["event_id"]] = event
        assert m.topic == topic_for(event["type"], settings.topic_prefix)
        assert m.key == min(event["subject_ids"]).encode()
        assert dict(m.headers)["event_type"] == event["type"].encode()
        assert datetime.fromtimestamp(m.timestamp / 1000, UTC) >= before  # recorded time, not occurred_at
        assert landed[event["event_id"]].offset == m.offset
    for original in events:
        assert by_id[original["event_id"]] == codec.validate(original)


def test_access_recorder_records_granted_and_denied(settings):
    """The decorator records GRANTED on success and DENIED on PermissionError, and validates before the body runs."""
    with AuditProducer(settings) as producer:
        fields = dict(access_event())
        fields.pop("type")
        fields.pop("occurred_at")
        fields.pop("subject_ids")

        @producer.accessing(**fields, subjects_from="customer_id")
        def load(customer_id, allowed=True):
            if not allowed:
                raise PermissionError("no")
            return customer_id

        assert load("cust-000001") == "cust-000001"
        with pytest.raises(PermissionError):
            load("cust-000002", allowed=False)
        ran = []
        with pytest.raises(ValidationError):
            with producer.accessing(**{**fields, "purpose": "Not A Code"}, subject_ids=["cust-000003"]):
                ran.append(True)
        assert ran == []
        producer.flush()
    codec = default_codec()
    outcomes = {codec.decode(m.value)["subject_ids"][0]: codec.decode(m.value)["outcome"]
                for m in read_topics(settings)}
    assert outcomes == {"cust-000001": "GRANTED", "cust-000002": "DENIED"}


PRODUCER_SCRIPT = textwrap.dedent("""
    import sys
    from ledger.config import Settings
    from ledger.produce.producer import AuditProducer
    from ledger.dev.simulate import simulate

    settings = Settings.load()
    producer = AuditProducer(settings, durable=sys.argv[1])
    for event in simulate(seed=int(sys.argv[2]), events=int(sys.argv[3]), subjects=40).events:
        producer.emit(event)
        print(event["event_id"], flush=True)  # the caller was told: recorded
    print("done", flush=True)
    import time
    time.sleep(600)  # wait to be killed, relay still trying
""")


def test_durable_mode_delivers_what_a_killed_process_was_told_once_and_in_order(durable_broker, tmp_path):
    """With the broker down, events a SIGKILLed process emitted in durable mode all arrive after it returns, once, in order."""
    from ledger.kafka.topics import create_topics

    settings = Settings.load(env={}, bootstrap_servers=durable_broker.bootstrap, topic_prefix="durable.", partitions=3)
    create_topics(settings)
    durable_broker.stop()
    outbox = tmp_path / "outbox.db"
    script = tmp_path / "produce.py"
    script.write_text(PRODUCER_SCRIPT)
    env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LEDGER_KAFKA_CLIENT": settings.kafka_client, "LEDGER_TOPIC_PREFIX": "durable."}
    proc = subprocess.Popen([sys.executable, str(script), str(outbox), "5", "400"], env=env,
                            stdout=subprocess.PIPE, text=True)
    told = []
    for line in proc.stdout:
        if line.strip() == "done":
            break
        told.append(line.strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(told) == 400

    durable_broker.restart()
    drained = subprocess.run([sys.executable, "-m", "ledger", "outbox", "drain", str(outbox)], env=env,
                             capture_output=True, text=True, timeout=300)
    assert drained.returncode == 0, drained.stderr

    codec = default_codec()
    records = read_topics(settings)
    arrived = [codec.decode(m.value)["event_id"] for m in records]
    assert sorted(arrived) == sorted(told)  # all of them, none twice
    emitted_order = {event_id: i for i, event_id in enumerate(told)}
    for tp_records in _by_partition(records).values():  # per key (so per partition) in emission order
        ids = [codec.decode(m.value)["event_id"] for m in tp_records]
        assert ids == sorted(ids, key=emitted_order.__getitem__)


def _by_partition(records):
    grouped = {}
    for m in records:
        grouped.setdefault((m.topic, m.partition), []).append(m)
    return grouped


def _jsonl(events) -> str:
    from ledger.model.events import to_json

    lines = []
    for e in events:
        obj = to_json(e)
        obj.pop("event_id")  # let emit derive it from the content
        lines.append(json.dumps(obj))
    return "\n".join(lines) + "\n"


def run_cli(settings, *args, stdin=None):
    env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LEDGER_KAFKA_CLIENT": settings.kafka_client,
           "LEDGER_TOPIC_PREFIX": settings.topic_prefix, "LEDGER_DB": settings.db}
    return subprocess.run([sys.executable, "-m", "ledger", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_emit_sends_valid_lines_reports_bad_ones_and_rerunning_records_nothing_new(settings, tmp_path):
    """`ledger emit` sends valid lines, names each bad line's number and field, and a re-run adds no ledger entry."""
    events = simulate(seed=12, events=50, subjects=10).events
    lines = _jsonl(events).splitlines()
    bad = json.loads(lines[3])
    bad["actor"]["type"] = "ROBOT"
    lines[3] = json.dumps(bad)
    lines.insert(7, "{not json")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")

    first = run_cli(settings, "emit", str(path))
    assert first.returncode == 1
    assert "sent 49, rejected 2" in first.stdout
    assert "line 4: " in first.stderr and "actor.type" in first.stderr
    assert "line 8: not JSON" in first.stderr
    assert run_cli(settings, "consume", "--until-idle", "--quiet").returncode == 0

    again = run_cli(settings, "emit", str(path))
    assert "sent 49, rejected 2" in again.stdout
    assert run_cli(settings, "consume", "--until-idle", "--quiet").returncode == 0
    import sqlite3

    conn = sqlite3.connect(settings.db)
    statuses = dict(conn.execute("SELECT status, count(*) FROM entries WHERE kind='record' GROUP BY status"))
    assert statuses == {"entry": 49, "duplicate": 49}

    nothing = run_cli(settings, "emit", "--all-or-nothing", str(path))
    assert nothing.returncode == 1 and "sent 0, rejected 2" in nothing.stdout
    assert len(read_topics(settings)) == 98
