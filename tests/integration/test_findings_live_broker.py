"""The live findings service on the real broker, once per Kafka client: what it publishes on
``{prefix}findings`` is what ``ledger findings`` answers, a late consent is retracted on the topic, and a
service killed with SIGKILL and restarted loses nothing (what it publishes again carries the same ids).

Every process is real: the writer (`ledger consume`), the service (`ledger findings --follow`) and the
batch command are subprocesses; the topic is read back through the seam and decoded with fastavro.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from kafkautil import read_topics

from ledger.dev.simulate import simulate
from ledger.kafka.topics import findings_topic
from ledger.produce.producer import AuditProducer
from ledger.wire.findings_codec import FindingsCodec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"


def argv(settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "ledger", *args, "--bootstrap-servers", settings.bootstrap_servers,
            "--topic-prefix", settings.topic_prefix, "--db", str(settings.db), "--kafka-client",
            settings.kafka_client]


def ledger_cmd(settings, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(argv(settings, *args), capture_output=True, text=True, timeout=600, env=dict(os.environ),
                          check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def emit(settings, events) -> None:
    with AuditProducer(settings) as producer:
        for e in events:
            producer.emit(e)
        producer.flush()


def consume(settings) -> None:
    done = ledger_cmd(settings, "consume", "--until-idle", "--quiet")
    assert done.returncode == 0, done.stderr


def topic_messages(settings) -> list[tuple[str, bytes, dict]]:
    """(message type, key, message) of every record on the findings topic, in partition/offset order."""
    codec = FindingsCodec.load()
    out = []
    for r in read_topics(settings, [findings_topic(settings.topic_prefix)]):
        kind, message = codec.decode(r.value)
        headers = dict(r.headers)
        assert headers["message_type"] == kind.encode() and r.key == message["finding_id"].encode()
        out.append((kind, r.key, message))
    return out


def standing(messages) -> dict[str, dict]:
    """What a consumer keeps: the latest record per key (the key is the finding_id), retractions removing it."""
    held: dict[str, dict] = {}
    for kind, _, m in messages:  # one key is always on one partition, so per-key order is kept
        if kind == "Finding":
            held[m["finding_id"]] = m
        else:
            held.pop(m["finding_id"], None)
    return held


def judged_at(settings) -> str:
    with sqlite3.connect(f"{settings.db}.findings-state") as conn:
        return conn.execute("SELECT value FROM meta WHERE key = 'judged_at'").fetchone()[0]


def batch(settings, as_of: str) -> dict[str, dict]:
    done = ledger_cmd(settings, "findings", "--as-of", as_of, "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    return {f["finding_id"]: f for f in json.loads(done.stdout)}


def publish_policy(settings) -> None:
    done = ledger_cmd(settings, "policy", "publish", str(EXAMPLE), "--actor", "dpo-1")
    assert done.returncode == 0, done.stderr


def email_share_and_late_consent(at):
    """A marketing share with no consent, and the consent (dated an hour before it) to be recorded later."""
    from ledger.model import events as ev

    share = ev.validate({"type": "DataShared", "occurred_at": at, "source_service": "crm",
                         "subject_ids": ["cust-late"],
                         "actor": {"id": "svc-marketing-sync", "type": "SERVICE", "role": "audience_sync"},
                         "data_categories": ["user.name", "user.contact.email"],
                         "purpose": "marketing.communications.email",
                         "recipient": {"id": "rcpt-northwind-retail", "name": "Northwind Retail GmbH",
                                       "kind": "AFFILIATE", "country": "DE"},
                         "agreement_ref": "IGA-2022-NW", "retention_until": at + timedelta(days=30)})
    consent = ev.validate({"type": "ConsentChanged", "occurred_at": at - timedelta(hours=1), "source_service": "crm",
                           "subject_ids": ["cust-late"], "actor": {"id": "cust-late", "type": "SUBJECT",
                                                                   "role": "customer"},
                           "purpose": "marketing.communications.email", "granted": True, "channel": "EMAIL",
                           "scope": "PARTNERS"})
    return share, consent


def test_the_service_publishes_the_batch_answer_and_retracts_on_a_late_consent(settings):
    """After --until-idle the topic's standing findings equal `ledger findings --as-of <judged_at>`, ids and
    all; a consent recorded later but dated before a share publishes a FindingRetracted naming it."""
    publish_policy(settings)
    w = simulate(seed=21, events=1500, subjects=80)
    share, consent = email_share_and_late_consent(max(e["occurred_at"] for e in w.events))
    emit(settings, [*w.events, share])
    consume(settings)
    done = ledger_cmd(settings, "findings", "--follow", "--until-idle")
    assert done.returncode == 0, done.stderr
    messages = topic_messages(settings)
    held = standing(messages)
    assert held and set(held) == set(batch(settings, judged_at(settings)))
    shared = [m for m in held.values() if m["event_ids"][0] == share["event_id"] and m["rule"] == "consent.marketing"]
    assert len(shared) == 1
    first = batch(settings, judged_at(settings))
    assert {k: {f: v for f, v in m.items() if f != "judged_at"} for k, m in held.items()} == first

    emit(settings, [consent])
    consume(settings)
    done = ledger_cmd(settings, "findings", "--follow", "--until-idle")
    assert done.returncode == 0, done.stderr
    assert not [m for kind, _, m in messages if kind == "FindingRetracted"]
    retracted = [m for kind, _, m in topic_messages(settings) if kind == "FindingRetracted"]
    assert [m["finding_id"] for m in retracted] == [shared[0]["finding_id"]]
    assert retracted[0]["cleared_by"] == [consent["event_id"]]
    assert set(standing(topic_messages(settings))) == set(batch(settings, judged_at(settings)))


def test_a_killed_service_resumes_without_losing_a_finding(settings):
    """SIGKILL the running service while the writer feeds it, restart it: every finding the batch command
    finds is on the topic, and a finding published twice has the same id and the same content."""
    publish_policy(settings)
    w = simulate(seed=22, events=6000, subjects=200)
    chunks = [w.events[i::3] for i in range(3)]
    emit(settings, chunks[0])
    consume(settings)
    service = subprocess.Popen(argv(settings, "findings", "--follow", "--poll-interval", "0.1", "--tick", "1"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        while not topic_messages(settings):
            assert time.monotonic() < deadline and service.poll() is None, service.stderr.read().decode()
            time.sleep(0.5)
        emit(settings, chunks[1])
        writer = subprocess.Popen(argv(settings, "consume", "--until-idle", "--quiet"), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=dict(os.environ))
        time.sleep(1.0)  # the service is reading what the writer appends
        service.send_signal(signal.SIGKILL)
        service.wait(timeout=30)
        assert writer.wait(timeout=600) == 0, writer.stderr.read().decode()
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    assert service.returncode == -signal.SIGKILL
    emit(settings, chunks[2])
    consume(settings)
    done = ledger_cmd(settings, "findings", "--follow", "--until-idle")
    assert done.returncode == 0, done.stderr
    messages = topic_messages(settings)
    held = standing(messages)
    assert set(held) == set(batch(settings, judged_at(settings)))
    seen: dict[str, dict] = {}
    for kind, _, m in messages:
        if kind != "Finding":
            continue
        body = {k: v for k, v in m.items() if k != "judged_at"}
        assert seen.setdefault(m["finding_id"], body) == body, "a finding published twice changed"
