"""Files the commands must not damage: report --output, outbox drain, the outbox relay, the writer lock.

Every test failed on the code before issue 12: the ledger was overwritten
with HTML, a ledger copy was switched to WAL and given outbox tables, a
corrupt outbox row killed the relay silently, a second writer ran through a
symlink.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fill import fill_ledger
from samples import sample

from ledger.config import Settings
from ledger.errors import LedgerLockedError, OutboxRelayError, StoreError
from ledger.model.events import validate
from ledger.produce.outbox import Outbox
from ledger.produce.producer import AuditProducer, wire_record
from ledger.store import Ledger


def ledger_cmd(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ledger", *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def digest(*paths: Path, sides: bool = True) -> dict:
    """Content of a file and (``sides``) of whatever SQLite side files exist next to it.

    A ledger is in WAL mode: reading it may create an empty -wal and a -shm, which is no damage.
    """
    out = {}
    for path in paths:
        for suffix in ("", "-wal", "-shm") if sides else ("",):
            p = Path(f"{path}{suffix}")
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None
    return out


@pytest.fixture
def db(tmp_path) -> Path:
    event = validate({**sample("DataShared"), "subject_ids": ["cust-1"]})
    return fill_ledger(tmp_path / "ledger.db", [event]).path


# --- report --output ---------------------------------------------------------------------------------------

def test_report_output_refuses_the_ledger_itself_by_any_path(db, tmp_path):
    """--output naming the ledger, a symlink to it or a hard link to it is refused, even with --force."""
    (tmp_path / "link.db").symlink_to(db)
    os.link(db, tmp_path / "hard.db")
    before = digest(db, sides=False)
    for target in (str(db), str(tmp_path / "link.db"), str(tmp_path / "hard.db"), f"{tmp_path}/./ledger.db"):
        for force in ([], ["--force"]):
            done = ledger_cmd("report", "cust-1", "--db", str(db), "--format", "html", "--output", target, *force)
            assert done.returncode == 1 and "Traceback" not in done.stderr
            assert done.stderr.startswith("ledger report: error: --output: ") and "ledger" in done.stderr
    assert digest(db, sides=False) == before


def test_report_output_refuses_any_sqlite_file_and_an_existing_file_without_force(db, tmp_path):
    """Another SQLite database is never overwritten; a plain existing file only with --force."""
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    before = digest(other)
    done = ledger_cmd("report", "cust-1", "--db", str(db), "--output", str(other), "--force")
    assert done.returncode == 1 and "is an SQLite database" in done.stderr and digest(other) == before

    plain = tmp_path / "notes.txt"
    plain.write_text("keep me")
    done = ledger_cmd("report", "cust-1", "--db", str(db), "--output", str(plain))
    assert done.returncode == 1 and "exists; pass --force" in done.stderr and plain.read_text() == "keep me"
    done = ledger_cmd("report", "cust-1", "--db", str(db), "--output", str(plain), "--force")
    assert done.returncode == 0 and json.loads(plain.read_text())["subject"] == "cust-1"

    fresh = tmp_path / "new.csv"
    done = ledger_cmd("report", "cust-1", "--db", str(db), "--format", "csv", "--output", str(fresh))
    assert done.returncode == 0 and fresh.read_text().startswith("section,")


# --- outbox drain and durable= on files that are not outboxes --------------------------------------------

def test_outbox_drain_refuses_a_ledger_and_leaves_it_untouched(db):
    """drain on the ledger: refused before anything is written (no WAL switch, no table added)."""
    conn = sqlite3.connect(db)
    tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"))
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    before = digest(db, sides=False)
    done = ledger_cmd("outbox", "drain", str(db), "--bootstrap-servers", "127.0.0.1:1", "--timeout", "1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "is a ledger file, not an outbox" in done.stderr
    assert digest(db, sides=False) == before
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")) == tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == mode


@pytest.mark.parametrize("make", ["foreign outbox table", "delete-mode database", "text file", "empty file"])
def test_outbox_drain_and_durable_mode_refuse_what_is_not_our_outbox(tmp_path, make):
    """A foreign 'outbox' table, another database, a text file: one clean error line; the file is unchanged."""
    path = tmp_path / "x.db"
    if make == "foreign outbox table":
        sqlite3.connect(path).execute("CREATE TABLE outbox (id INTEGER, payload TEXT)").connection.commit()
    elif make == "delete-mode database":
        sqlite3.connect(path).execute("CREATE TABLE orders (id INTEGER)").connection.commit()
    elif make == "text file":
        path.write_text("id,name\n1,=cmd\n")
    else:
        path.write_bytes(b"")
    before = digest(path)
    done = ledger_cmd("outbox", "drain", str(path), "--bootstrap-servers", "127.0.0.1:1", "--timeout", "1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "outbox" in done.stderr
    assert digest(path) == before
    if make != "empty file":  # an empty file is a fine place for a new outbox
        with pytest.raises(StoreError, match="not an outbox"):
            AuditProducer(Settings.load(env={}, bootstrap_servers="127.0.0.1:1"), durable=path)
        assert digest(path) == before


def test_checking_the_outbox_file_keeps_this_processs_sqlite_locks(tmp_path):
    """The file check of a second connection (the relay's) must not drop the put connection's POSIX locks.

    It used to open() and close() the file to read its header: closing any descriptor drops every
    fcntl lock the process holds on the file, so another process's last reader deleted the WAL under
    the live connection and a write lock held elsewhere no longer stopped our writes (they went to an
    unlinked WAL). Now a put waits for another process's write lock and fails after its bounded wait.
    """
    from ledger.produce.outbox_file import check_outbox_file

    path = tmp_path / "o.db"
    outbox = Outbox(path, Settings.load(env={}, bootstrap_servers="127.0.0.1:1"), relay=False, write_timeout=1.0)
    try:
        wire = wire_record(sample("DataAccessed"), outbox_codec(), "ledger.")
        outbox.put(wire)
        check_outbox_file(path, must_exist=True)  # what the relay thread's connect does
        holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import sqlite3, sys
            r = sqlite3.connect({str(path)!r}); r.execute("SELECT count(*) FROM outbox").fetchall(); r.close()
            x = sqlite3.connect({str(path)!r}, timeout=5, isolation_level=None); x.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True); sys.stdin.readline(); x.execute("ROLLBACK")
            """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "locked"
            assert path.with_name("o.db-wal").exists(), "the other process's reader deleted the live WAL"
            with pytest.raises(StoreError, match="could not store event"):
                outbox.put(wire)
        finally:
            holder.communicate("go\n", timeout=30)
    finally:
        outbox.close()


def outbox_codec():
    from ledger.wire.codec import default_codec

    return default_codec()


def test_durable_mode_refuses_the_ledger_file(db):
    """AuditProducer(durable=<the ledger>) is refused before the ledger is touched."""
    before = digest(db, sides=False)
    with pytest.raises(StoreError, match="is a ledger file, not an outbox"):
        AuditProducer(Settings.load(env={}, bootstrap_servers="127.0.0.1:1"), durable=db)
    assert digest(db, sides=False) == before


# --- the relay: quarantine, surfaced failures ----------------------------------------------------------------

def _wires(settings, n: int):
    from ledger.wire.codec import default_codec

    codec = default_codec()
    return [wire_record({**sample("ConsentChanged"), "subject_ids": [f"cust-{i}"]}, codec, settings.topic_prefix)
            for i in range(n)]


def _corrupt_row(path: Path, row: int, headers: str = "{not json") -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE outbox SET headers = ? WHERE id = ?", (headers, row))
    conn.commit()
    conn.close()


def test_drain_quarantines_an_unreadable_row_and_delivers_the_rest(settings, tmp_path):
    """A row whose headers are not JSON is moved to outbox_quarantine with its reason; later rows still go out."""
    from kafkautil import read_topics

    path = tmp_path / "outbox.db"
    box = Outbox(path, settings, relay=False)
    for wire in _wires(settings, 3):
        box.put(wire)
    box.close()
    _corrupt_row(path, 1)
    env = {"LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LEDGER_KAFKA_CLIENT": settings.kafka_client, "LEDGER_TOPIC_PREFIX": settings.topic_prefix}
    done = ledger_cmd("outbox", "drain", str(path), env=env)
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("row 1: quarantined: headers are not the JSON list")
    assert done.stdout.startswith("delivered 2 event(s)") and done.returncode == 1
    assert len(read_topics(settings)) == 2
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
    assert conn.execute("SELECT id, headers FROM outbox_quarantine").fetchall() == [(1, "{not json")]


def test_the_live_relay_quarantines_a_corrupt_row_and_keeps_delivering(settings, tmp_path):
    """In durable mode a corrupt row (written by anyone into the file) does not stop the events after it."""
    path = tmp_path / "outbox.db"
    Outbox(path, settings, relay=False).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO outbox (event_id, topic, key, value, headers, created_at) VALUES ('x', 't', NULL, "
                 "x'00', '[[\"event_type\", \"not base64!\"]]', 0)")
    conn.commit()
    conn.close()
    with AuditProducer(settings, durable=path) as producer:
        deliveries = [producer.consent_changed(**{k: v for k, v in sample("ConsentChanged").items() if k != "type"})
                      for _ in range(3)]
        producer.flush(timeout=60)
        assert all(d.result(timeout=1).offset >= 0 for d in deliveries)
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT event_id FROM outbox_quarantine")] == ["x"]


def test_a_dead_relay_makes_emit_flush_and_close_raise_quickly(tmp_path):
    """The lock path is a directory: the relay cannot start; the next emit, flush and close raise, within seconds."""
    path = tmp_path / "outbox.db"
    os.mkdir(f"{path}.lock")
    started = time.monotonic()
    producer = AuditProducer(Settings.load(env={}, bootstrap_servers="127.0.0.1:1"), durable=path)
    event = {k: v for k, v in sample("ConsentChanged").items() if k != "type"}
    try:
        first = producer.consent_changed(**event)
    except OutboxRelayError:
        first = None
    deadline = time.monotonic() + 5
    while producer._outbox._failure is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(OutboxRelayError, match=r"relay stopped .*lock"):
        producer.consent_changed(**event)
    with pytest.raises(OutboxRelayError):
        producer.flush()
    if first is not None:
        with pytest.raises(OutboxRelayError):
            first.result(timeout=1)
    with pytest.raises(OutboxRelayError):
        producer.close()
    assert time.monotonic() - started < 10


# --- the writer lock -----------------------------------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys, time
    from ledger.store import Ledger
    led = Ledger.open(sys.argv[1], readonly=False)
    led.lock_for_writing()
    print("locked", flush=True)
    time.sleep(60)
""")


def test_a_second_writer_through_a_symlink_or_hard_link_is_refused(db, tmp_path):
    """The lock is on the file itself: another path, a symlink or a hard link to a locked ledger is refused."""
    (tmp_path / "link.db").symlink_to(db)
    os.link(db, tmp_path / "hard.db")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for other in (tmp_path / "link.db", tmp_path / "hard.db", Path(f"{tmp_path}/../{tmp_path.name}/ledger.db")):
            led = Ledger.open(other, readonly=False)
            try:
                with pytest.raises(LedgerLockedError, match=rf"locked by another writer \(pid {holder.pid}\)"):
                    led.lock_for_writing()
            finally:
                led.close()
        done = ledger_cmd("consume", "--until-idle", "--quiet", "--db", str(tmp_path / "link.db"),
                          "--bootstrap-servers", "127.0.0.1:1")
        assert done.returncode == 1 and f"locked by another writer (pid {holder.pid})" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        holder.kill()
        holder.wait()


def test_two_writers_in_one_process_are_refused_and_the_lock_is_free_after_close(db, tmp_path):
    """In one process too: a second Ledger on a locked file (by a symlink) is refused until the first closes."""
    (tmp_path / "link.db").symlink_to(db)
    first = Ledger.open(db, readonly=False).lock_for_writing()
    second = Ledger.open(tmp_path / "link.db", readonly=False)
    with pytest.raises(LedgerLockedError):
        second.lock_for_writing()
    first.close()
    second.lock_for_writing()
    reader = Ledger.open(db)  # readers never need the lock
    second.close()
    assert reader.heads() is not None
    reader.close()
