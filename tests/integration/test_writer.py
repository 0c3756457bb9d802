"""The writer against a real broker: exactly once, every bad record kept, safe restarts."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from kafkautil import read_topics

from ledger.audit.verify import verify_ledger
from ledger.dev.simulate import simulate
from ledger.errors import LedgerDivergedError, LedgerLockedError
from ledger.ingest.writer import LedgerWriter
from ledger.kafka import open_producer
from ledger.kafka.topics import dlq_topic, topic_for
from ledger.produce.producer import AuditProducer
from ledger.store import Ledger
from ledger.wire.codec import default_codec


def emit_all(settings, events) -> None:
    with AuditProducer(settings) as producer:
        for event in events:
            producer.emit(event)
        producer.flush()


def bad_records(settings) -> list[tuple[str, bytes | None, bytes | None]]:
    """One of each kind of undecodable record, on every event topic: (topic, key, value)."""
    codec = default_codec()
    good = simulate(seed=99, events=1).events[0]
    encoded = codec.encode(good)
    invalid = dict(good, subject_ids=[])  # valid Avro, fails validation (no subjects)
    body_invalid = encoded[:10] + _reencode_without_validation(codec, invalid)
    kinds = [
        b"not avro at all",
        b"\xc3\x01" + b"\xff" * 8 + encoded[10:],  # unknown fingerprint
        encoded[:-3],  # truncated body
        body_invalid,
        b"\xc3\x01" + encoded[2:10] + b"x" * (2 * 1024 * 1024),  # oversized
        None,  # a null value (tombstone)
    ]
    topics = [topic_for(t, settings.topic_prefix) for t in ("DataAccessed", "DataShared", "LegalDisclosure",
                                                            "ConsentChanged")]
    return [(topic, b"bad-key", value) for topic in topics for value in kinds]


def _reencode_without_validation(codec, event) -> bytes:
    from io import BytesIO

    from fastavro import schemaless_writer

    newest = codec.versions(event["type"])[-1]
    out = BytesIO()
    schemaless_writer(out, newest.parsed, event)
    return out.getvalue()


def send_raw(settings, records) -> None:
    producer = open_producer(settings, max_request_bytes=4 << 20)
    for topic, key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def ledger_rows(path: str, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def dlq_messages(settings) -> list:
    return read_topics(settings, [dlq_topic(settings.topic_prefix)])


def verified(path: str) -> bool:
    with Ledger.open(path) as ledger:
        report = verify_ledger(ledger)
    assert report.ok, report.problems[:5]
    return True


def run_writer(settings) -> None:
    LedgerWriter(settings, group_id=None).run(until_idle=True, install_signals=False)


def test_every_event_once_duplicates_marked_bad_records_kept_and_copied(settings):
    """100,000 simulated events with repeats and undecodable bytes end as one entry each; bad ones are rejected and in the DLQ."""
    workload = simulate(seed=3, events=100_000, subjects=2_000)
    repeats = random.Random(1).sample(workload.events, 1_000)
    emit_all(settings, workload.events + repeats)
    bad = bad_records(settings)
    send_raw(settings, bad)
    run_writer(settings)

    entries = ledger_rows(settings.db, "SELECT event_id FROM entries WHERE status = 'entry'")
    assert sorted(e for (e,) in entries) == sorted(e["event_id"] for e in workload.events)
    assert ledger_rows(settings.db, "SELECT count(*) FROM entries WHERE status = 'duplicate'")[0][0] == len(repeats)
    rejected = ledger_rows(settings.db, "SELECT topic, partition, offset, reason FROM entries WHERE status = 'rejected'")
    assert len(rejected) == len(bad)
    assert all(reason for *_, reason in rejected)
    copies = {(dict(m.headers)["source_topic"].decode(), int(dict(m.headers)["source_partition"]),
               int(dict(m.headers)["source_offset"])) for m in dlq_messages(settings)}
    assert copies == {(t, p, o) for t, p, o, _ in rejected}
    assert verified(settings.db)


def test_misrouted_records_are_rejected_and_copied_to_the_dlq(settings):
    """Valid events produced straight to the broker on the wrong topic, with an event_type header naming another
    type, or with a key other than min(subject_ids) are rejected with a reason naming what is wrong, copied to
    the dead-letter topic, and never indexed; a correctly routed one beside them is an entry."""
    codec = default_codec()
    good = simulate(seed=5, events=1).events[0]
    etype, prefix = good["type"], settings.topic_prefix
    value, key = codec.encode(good), min(good["subject_ids"]).encode()
    right, wrong = topic_for(etype, prefix), prefix + ("consent" if etype != "ConsentChanged" else "access")
    other_type = "ConsentChanged" if etype != "ConsentChanged" else "DataAccessed"
    sends = [
        (wrong, key, [("event_type", etype.encode())], f"routing: {etype} on topic {wrong} (expected {right})"),
        (right, key, [("event_type", other_type.encode())],
         f"routing: header event_type={other_type} contradicts the schema {etype}"),
        (right, b"arbitrary", [("event_type", etype.encode())],
         f"routing: key 'arbitrary' (expected {key.decode()!r})"),
    ]
    # Explicit partitions, which the seam does not offer: the raw kafka-python client (a test tool).
    from kafka import KafkaProducer

    producer = KafkaProducer(**settings.kafka_options(), acks="all")
    for topic, k, headers, _ in sends:
        producer.send(topic, key=k, value=value, headers=headers, partition=0)
    producer.send(right, key=key, value=value, headers=[("event_type", etype.encode())], partition=1)
    producer.flush()
    producer.close()
    run_writer(settings)

    rejected = ledger_rows(settings.db, "SELECT topic, partition, offset, reason FROM entries "
                                        "WHERE status = 'rejected' ORDER BY seq")
    assert sorted(reason for *_, reason in rejected) == sorted(reason for *_, reason in sends)
    assert ledger_rows(settings.db, "SELECT topic, partition FROM entries WHERE status = 'entry'") == [(right, 1)]
    assert ledger_rows(settings.db, "SELECT count(*) FROM subjects WHERE seq IN "
                                    "(SELECT seq FROM entries WHERE status = 'rejected')") == [(0,)]
    copies = {(dict(m.headers)["source_topic"].decode(), int(dict(m.headers)["source_offset"]),
               dict(m.headers)["reason"].decode()) for m in dlq_messages(settings)}
    assert copies == {(t, o, r) for t, _, o, r in rejected}
    assert verified(settings.db)


def test_restart_reads_only_what_is_new(settings):
    """A second run resumes at the stored offsets: nothing repeated, new events appended."""
    workload = simulate(seed=4, events=600, subjects=50)
    emit_all(settings, workload.events[:400])
    run_writer(settings)
    emit_all(settings, workload.events[400:])
    run_writer(settings)
    rows = ledger_rows(settings.db, "SELECT status, count(*) FROM entries WHERE kind = 'record' GROUP BY status")
    assert dict(rows) == {"entry": 600}
    assert verified(settings.db)


def test_second_writer_on_the_same_file_is_refused(plain_settings):
    """Only one writer may own a ledger file at a time (refused before any broker is asked)."""
    holder = Ledger.open(plain_settings.db, readonly=False, create=True)
    holder.lock_for_writing()
    try:
        with pytest.raises(LedgerLockedError):
            run_writer(plain_settings)
    finally:
        holder.close()


def test_writer_stops_when_the_broker_lost_what_the_ledger_recorded(settings, kafka):
    """A ledger that recorded more than the topic now holds stops with a clear error instead of re-reading."""
    from ledger.dev.broker import LocalBroker
    from ledger.kafka.topics import create_topics

    emit_all(settings, simulate(seed=5, events=200, subjects=20).events)
    run_writer(settings)
    with LocalBroker(port=0) as fresh:  # same topic names, empty logs: "the broker lost its data"
        other = settings.with_(bootstrap_servers=fresh.bootstrap)
        create_topics(other)
        emit_all(other, simulate(seed=6, events=20, subjects=20).events)
        with pytest.raises(LedgerDivergedError):
            run_writer(other)


def test_sigkill_at_random_moments_loses_and_repeats_nothing(settings, tmp_path):
    """Killing the writer with SIGKILL 20 times mid-ingest leaves each event exactly once and a verifiable chain."""
    workload = simulate(seed=8, events=80_000, subjects=500)
    chunks = [workload.events[i:i + 10_000] for i in range(0, len(workload.events), 10_000)]
    emit_all(settings, chunks.pop(0))
    send_raw(settings, bad_records(settings)[:6])
    env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LEDGER_KAFKA_CLIENT": settings.kafka_client,
           "LEDGER_TOPIC_PREFIX": settings.topic_prefix, "LEDGER_DB": settings.db}
    command = [sys.executable, "-m", "ledger", "consume", "--until-idle", "--quiet", "--batch-size", "1000"]
    rng = random.Random(11)
    kills = 0
    while kills < 20:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 2.0))
        if proc.poll() is not None:  # caught up before the kill: give it more to do (a kill must land mid-ingest)
            assert proc.returncode == 0, proc.stderr.read()
            assert chunks, "ingest finished before 20 kills; give the test more events"
            emit_all(settings, chunks.pop(0))
            continue
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    for chunk in chunks:
        emit_all(settings, chunk)
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    entries = ledger_rows(settings.db, "SELECT event_id FROM entries WHERE status = 'entry'")
    assert len(entries) == len(workload.events)
    assert sorted(e for (e,) in entries) == sorted(e["event_id"] for e in workload.events)
    assert ledger_rows(settings.db, "SELECT count(*) FROM entries WHERE status = 'rejected'")[0][0] == 6
    assert verified(settings.db)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_finish_the_batch_and_exit_zero(settings, signum):
    """SIGTERM or SIGINT mid-ingest: the writer commits its batch, exits 0, and a restart completes exactly once."""
    workload = simulate(seed=9, events=30_000, subjects=300)
    emit_all(settings, workload.events)
    env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LEDGER_KAFKA_CLIENT": settings.kafka_client,
           "LEDGER_TOPIC_PREFIX": settings.topic_prefix, "LEDGER_DB": settings.db}
    proc = subprocess.Popen([sys.executable, "-m", "ledger", "consume", "--quiet", "--batch-size", "1000"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until it has committed something, then interrupt it
        time.sleep(0.2)
        try:
            if ledger_rows(settings.db, "SELECT count(*) FROM entries")[0][0] > 0:
                break
        except sqlite3.OperationalError:  # not created yet
            continue
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "consumed" in out
    assert verified(settings.db)
    run_writer(settings)
    entries = ledger_rows(settings.db, "SELECT event_id FROM entries WHERE status = 'entry'")
    assert sorted(e for (e,) in entries) == sorted(e["event_id"] for e in workload.events)
