"""The independent checker itself: it must see each kind of damage it claims to count."""

from __future__ import annotations

import shutil
import sqlite3
from uuid import uuid4

import pytest
from faultcheck import Expected, check, event_topics, read_topics
from faultkit import catch_up
from traffic import emit_acknowledged, send_bad

from ledger.config import Settings
from ledger.dev.simulate import simulate
from ledger.kafka.topics import create_topics
from ledger.wire.codec import default_codec


@pytest.fixture(scope="module")
def ingested(kafka, tmp_path_factory):
    """A small ledger written by the real writer: 300 events and 24 bad records (shared by this module)."""
    settings = Settings.load(env={}, bootstrap_servers=kafka.bootstrap, topic_prefix=f"c{uuid4().hex[:8]}.",
                             db=str(tmp_path_factory.mktemp("checker") / "ledger.db"), partitions=3)
    create_topics(settings)
    workload = simulate(seed=5, events=300, subjects=20)
    told = set(emit_acknowledged(settings, workload.events))
    bad = send_bad(settings, default_codec(), workload.events)
    catch_up(settings)
    records = read_topics(settings.bootstrap_servers, event_topics(settings.topic_prefix))
    return settings, told, bad, records


def tampered(settings, tmp_path, *statements: str):
    """Settings on a copy of the ledger with its append-only triggers dropped and ``statements`` run."""
    copy = tmp_path / "tampered.db"
    shutil.copy(settings.db, copy)
    conn = sqlite3.connect(copy, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    for sql in statements:
        conn.execute(sql)
    conn.close()
    return settings.with_(db=str(copy))


def test_an_intact_ledger_passes(ingested):
    """The writer's own ledger passes every check and verify."""
    settings, told, bad, records = ingested
    outcome = check(settings, Expected(told=told, bad=bad), broker_records=records)
    outcome.assert_ok()
    assert (outcome.lost, outcome.duplicated, outcome.rejected, outcome.dlq_offsets) == (0, 0, 24, 24)


def test_an_acknowledged_event_missing_is_lost(ingested):
    """An acknowledged id with no entry counts as lost."""
    settings, told, bad, records = ingested
    outcome = check(settings, Expected(told=told | {"00000000-0000-4000-8000-000000000000"}, bad=bad),
                    verify=False, broker_records=records)
    assert outcome.lost == 1 and not outcome.ok


def test_a_deleted_row_is_lost_and_its_offset_unaccounted(ingested, tmp_path):
    """Deleting one entry shows as a lost event, an offset on the broker but not in the ledger, and a hole."""
    settings, told, bad, records = ingested
    damaged = tampered(settings, tmp_path, "DELETE FROM entries WHERE seq = (SELECT min(seq) FROM entries "
                                           "WHERE status = 'entry' AND offset > 0)")
    outcome = check(damaged, Expected(told=told, bad=bad), broker_records=records)
    assert outcome.lost == 1
    assert any("not in the ledger" in p for p in outcome.problems)
    assert any("not accounted for" in p for p in outcome.problems)
    assert outcome.verify_ok is False


def test_an_entry_recorded_twice_is_duplicated(ingested, tmp_path):
    """A second entry row for one event id counts as duplicated (and its offset as unknown to the broker)."""
    settings, told, bad, records = ingested
    columns = "topic, partition, kind, gap_end, timestamp, key, headers, value, fingerprint, status, reason, " \
              "event_id, type, occurred_at, json, leaf_hash, chain_hash"
    damaged = tampered(settings, tmp_path,
                       f"INSERT INTO entries (seq, offset, {columns}) SELECT (SELECT max(seq) + 1 FROM entries), "
                       f"100000, {columns} FROM entries WHERE status = 'entry' LIMIT 1")
    outcome = check(damaged, Expected(told=told, bad=bad), verify=False, broker_records=records)
    assert outcome.duplicated == 1
    assert any("not on the broker" in p for p in outcome.problems)


def test_a_bad_record_not_rejected_and_a_phantom_are_reported(ingested, tmp_path):
    """A bad record stored as decoded, and an entry no producer emitted, are both problems."""
    settings, told, bad, records = ingested
    some = sorted(told)[0]
    damaged = tampered(settings, tmp_path, "UPDATE entries SET status = 'gap' WHERE status = 'rejected' "
                                           "AND seq = (SELECT min(seq) FROM entries WHERE status = 'rejected')")
    outcome = check(damaged, Expected(told=told - {some}, bad=bad), verify=False, broker_records=records)
    assert outcome.phantom == 1
    assert any("is not rejected" in p for p in outcome.problems)
    assert any("unexpected status" in p for p in outcome.problems)
