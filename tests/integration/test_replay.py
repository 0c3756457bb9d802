"""Replay from Kafka into a fresh ledger, and diff against the live one, on a real broker."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest
from kafkautil import read_topics

from ledger.audit.diff import diff_ledgers
from ledger.dev.simulate import simulate
from ledger.errors import StoreError
from ledger.ingest.replay import replay
from ledger.ingest.writer import LedgerWriter
from ledger.produce.producer import AuditProducer


def emit(settings, events) -> None:
    with AuditProducer(settings) as producer:
        for e in events:
            producer.emit(e)
        producer.flush()


def consume(settings) -> None:
    LedgerWriter(settings, group_id=None).run(until_idle=True, install_signals=False)


def cli(settings, *args):
    env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LEDGER_KAFKA_CLIENT": settings.kafka_client,
           "LEDGER_TOPIC_PREFIX": settings.topic_prefix, "LEDGER_DB": settings.db}
    return subprocess.run([sys.executable, "-m", "ledger", *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def three_waves(settings):
    """Three bursts of events with recorded-time marks between them; returns (events per wave, marks in ms)."""
    waves = [simulate(seed=s, events=400, subjects=60).events for s in (21, 22, 23)]
    marks = []
    for i, wave in enumerate(waves):
        emit(settings, wave)
        if i < 2:
            time.sleep(0.05)
            marks.append(int(time.time() * 1000))
            time.sleep(0.05)
    consume(settings)
    return waves, marks


def test_full_replay_reproduces_the_heads_exactly(settings, three_waves, tmp_path):
    """`ledger head` prints identical text for the live ledger and a replay from the beginning."""
    into = tmp_path / "replayed.db"
    replayed = cli(settings, "replay", "--into", str(into), "--quiet")
    assert replayed.returncode == 0, replayed.stderr
    live_head = cli(settings, "head")
    replay_head = cli(settings, "head", "--db", str(into))
    assert live_head.returncode == replay_head.returncode == 0
    assert live_head.stdout == replay_head.stdout and live_head.stdout.strip()
    same = cli(settings, "diff", settings.db, str(into))
    assert same.returncode == 0, same.stdout
    assert "same records" in same.stdout


def test_a_window_holds_exactly_the_records_recorded_inside_it(settings, three_waves, tmp_path):
    """A replay of [from, to) holds exactly the records whose Kafka timestamp is inside the window."""
    _, (t1, t2) = three_waves
    into = tmp_path / "window.db"
    result = replay(settings, into, from_ms=t1, to_ms=t2)
    expected = {(m.topic, m.partition, m.offset) for m in read_topics(settings) if t1 <= m.timestamp < t2}
    conn = sqlite3.connect(into)
    got = set(conn.execute("SELECT topic, partition, offset FROM entries WHERE kind = 'record'"))
    assert got == expected and len(expected) == 400
    assert result.replayed == 400
    assert diff_ledgers(settings.db, into, common_range=True).same
    assert not diff_ledgers(settings.db, into).same  # the window covers less than the live ledger


def test_replay_refuses_to_overwrite(plain_settings, tmp_path):
    """Replay writes only a fresh ledger file (refused before any broker is asked)."""
    existing = tmp_path / "there.db"
    existing.write_bytes(b"")
    with pytest.raises(StoreError):
        replay(plain_settings, existing)


def _tamper(path: str) -> dict[str, tuple]:
    """Change, remove and insert one row each (with a recomputed chain), triggers dropped; returns what was done."""
    from ledger.tlog.chain import leaf_hash, link
    from ledger.wire.record import Record

    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    rows = conn.execute(
        "SELECT seq, topic, partition, offset, event_id FROM entries WHERE status = 'entry' ORDER BY seq"
    ).fetchall()
    changed, removed = rows[10], rows[20]
    conn.execute("UPDATE entries SET value = value || x'00' WHERE seq = ?", (changed[0],))
    conn.execute("DELETE FROM entries WHERE seq = ?", (removed[0],))
    # An inserted record after a partition's last one, chained properly so the chain alone looks fine.
    topic, partition, offset, chain = conn.execute(
        "SELECT topic, partition, offset, chain_hash FROM entries WHERE kind = 'record' "
        "ORDER BY offset DESC LIMIT 1").fetchone()
    fake = Record(topic, partition, offset + 1, int(time.time() * 1000), b"cust-000001", b"forged", ())
    leaf = leaf_hash(fake)
    conn.execute(
        "INSERT INTO entries (topic, partition, offset, kind, timestamp, key, headers, value, status, "
        "reason, leaf_hash, chain_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (topic, partition, offset + 1, "record", fake.timestamp, fake.key, "[]", fake.value, "rejected",
         "forged", leaf, link(chain, leaf)),
    )
    conn.commit()
    conn.close()
    return {"changed": changed[1:4], "removed": removed[1:4], "inserted": (topic, partition, offset + 1)}


def test_replay_and_diff_name_every_tampered_entry(settings, three_waves, tmp_path):
    """Rows changed, removed or inserted with a recomputed chain in the live file are each named by replay + diff."""
    tampered = _tamper(settings.db)
    into = tmp_path / "replayed.db"
    replay(settings, into)
    result = diff_ledgers(settings.db, into)
    found = {(d.kind, (d.topic, d.partition, d.offset)) for d in result.differences}
    assert found == {("leaf_differs", tampered["changed"]), ("only_in_b", tampered["removed"]),
                     ("only_in_a", tampered["inserted"])}
    out = cli(settings, "diff", settings.db, str(into))
    assert out.returncode == 1
    for what in ("changed", "removed", "inserted"):
        topic, partition, offset = tampered[what]
        assert f"{topic}[{partition}]@{offset}" in out.stdout
