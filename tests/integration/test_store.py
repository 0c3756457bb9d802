"""The ledger file: opening, append-only triggers, the writer lock, transactions, export, round trips."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from builders import CODEC, make_event, make_record, open_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgers import sample_ledger, verify_file

from ledger.errors import LedgerLockedError, StoreError
from ledger.store import Ledger, iter_entries
from ledger.store.schema import APPEND_ONLY_TABLES, FORMAT_VERSION, headers_from_json, headers_to_json
from ledger.wire.record import Record


@pytest.fixture
def sample(tmp_path) -> Path:
    return sample_ledger(tmp_path / "ledger.db")


def test_missing_file_is_not_created_by_readers(tmp_path):
    """Opening a missing ledger read-only fails with a hint and creates nothing."""
    with pytest.raises(StoreError, match="no ledger file"):
        Ledger.open(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_new_ledger_records_its_format(tmp_path):
    """A created ledger carries its format version in meta and reopens read-only."""
    Ledger.open(tmp_path / "l.db", readonly=False, create=True).close()
    with Ledger.open(tmp_path / "l.db") as ledger:
        assert ledger.meta()["format_version"] == FORMAT_VERSION
        assert ledger.count() == 0 and ledger.heads() == [] and ledger.positions() == {}


def test_readonly_ledger_cannot_write(sample):
    """A read-only ledger (mode=ro) refuses writes, even through its raw connection."""
    with Ledger.open(sample) as ledger:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ledger.conn.execute("INSERT INTO meta VALUES ('x', 'y')")
        with pytest.raises(StoreError):
            ledger.lock_for_writing()


def test_other_sqlite_files_are_refused(tmp_path):
    """An SQLite file that is not a ledger is never turned into one."""
    conn = sqlite3.connect(tmp_path / "other.db")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(StoreError, match="not a ledger"):
        Ledger.open(tmp_path / "other.db", readonly=False, create=True)


@pytest.mark.parametrize("verb", ["UPDATE", "DELETE"])
@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_triggers_refuse_update_and_delete(sample, table, verb):
    """Every ledger table refuses UPDATE and DELETE."""
    conn = sqlite3.connect(sample)
    conn.execute("INSERT INTO reprocess_log (seq, after_seq, new_status, reprocessed_at) VALUES (99, 99, 'entry', 0)")
    column = conn.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchone()[0]
    sql = f"UPDATE {table} SET {column} = {column}" if verb == "UPDATE" else f"DELETE FROM {table}"
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(sql)


def test_only_a_logged_rejected_to_decoded_move_is_allowed(sample):
    """The single allowed UPDATE: a rejected entry to a decoded status, logged first, evidence unchanged."""
    conn = sqlite3.connect(sample, isolation_level=None)
    move = "UPDATE entries SET status = 'entry', reason = NULL, json = '{}' WHERE seq = 5"
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(move)  # not logged
    conn.execute("INSERT INTO reprocess_log (seq, after_seq, new_status, reprocessed_at) VALUES (5, 9, 'entry', 0)")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE entries SET status = 'entry', value = X'00' WHERE seq = 5")  # evidence changed
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE entries SET status = 'duplicate' WHERE seq = 5")  # not what was logged
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE entries SET status = 'entry' WHERE seq = 7")  # not a rejected entry
    conn.execute(move)
    assert conn.execute("SELECT status FROM entries WHERE seq = 5").fetchone() == ("entry",)


def test_writer_lock_is_exclusive_across_processes(tmp_path):
    """While another process holds the writer lock, lock_for_writing raises LedgerLockedError naming it."""
    path = tmp_path / "l.db"
    Ledger.open(path, readonly=False, create=True).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from ledger.store import Ledger; "
         f"l = Ledger.open({str(path)!r}, readonly=False).lock_for_writing(); print('locked', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        ledger = Ledger.open(path, readonly=False)
        with pytest.raises(LedgerLockedError, match=f"pid {holder.pid}"):
            ledger.lock_for_writing()
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert ledger.lock_for_writing().locked  # released when the holder exited
    ledger.close()


def test_atomic_rolls_back_and_nests(tmp_path):
    """atomic() commits on success, rolls back on error, and nested blocks are savepoints."""
    ledger = Ledger.open(tmp_path / "l.db", readonly=False, create=True)
    with ledger.atomic() as conn:
        conn.execute("INSERT INTO meta VALUES ('a', '1')")
        with pytest.raises(ZeroDivisionError):
            with ledger.atomic():
                conn.execute("INSERT INTO meta VALUES ('b', '2')")
                raise ZeroDivisionError
    with pytest.raises(ZeroDivisionError):
        with ledger.atomic() as conn:
            conn.execute("INSERT INTO meta VALUES ('c', '3')")
            raise ZeroDivisionError
    assert {k for k in ledger.meta()} == {"format_version", "created_at", "bucket_bits", "a",
                                         "time_max_clock_skew_s", "time_max_record_lag_s"}


def test_export_is_a_consistent_standalone_copy(sample, tmp_path):
    """export() writes a single-file copy that verifies and has the same heads; it never overwrites."""
    target = tmp_path / "copy.db"
    with Ledger.open(sample) as ledger:
        assert ledger.export(target) == 12  # the sample ledger (ledgers.sample_records)
        heads = ledger.heads()
        with pytest.raises(StoreError, match="already exists"):
            ledger.export(target)
    assert not Path(f"{target}-wal").exists()
    assert verify_file(target).ok
    with Ledger.open(target) as copy:
        assert copy.heads() == heads


def test_headers_column_round_trip():
    """Headers survive the JSON column, keeping order and null versus empty values."""
    headers = (("b", b""), ("a", None), ("b", b"\x00\xff"), ("é", b"x"))
    assert headers_from_json(headers_to_json(headers)) == headers
    assert headers_from_json(headers_to_json(())) == ()


maybe_bytes = st.none() | st.binary(max_size=30)
raw_records = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 3), maybe_bytes, maybe_bytes,
              st.lists(st.tuples(st.sampled_from(["event_type", "h", ""]), maybe_bytes), max_size=3)),
    max_size=20)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw_records)
def test_append_read_round_trip(rows):
    """Whatever Kafka held (any key, value, headers) reads back identically, with heads matching the tips."""
    offsets = {}
    records = []
    for partition, skip, key, value, headers in rows:
        offset = offsets.get(partition, 0) + skip
        offsets[partition] = offset + 1
        records.append(Record("t", partition, offset, offset * 7, key, value, tuple(headers)))
    with tempfile.TemporaryDirectory() as tmp:
        ledger, ingestor = open_writer(Path(tmp) / "l.db", CODEC)
        ingestor.ingest(records)
        stored = [e.record() for e in iter_entries(ledger) if e.kind == "record"]
        assert stored == records
        assert {(h.topic, h.partition): h.offset for h in ledger.heads()} == {
            ("t", p): o - 1 for p, o in offsets.items()}
        assert ledger.positions() == {("t", p): o for p, o in offsets.items()}
        ledger.close()


def test_snapshot_sees_one_state_while_the_writer_appends(sample):
    """Reads inside snapshot() keep seeing the same entries while a writer commits more."""
    with Ledger.open(sample) as reader:
        with reader.snapshot():
            before = reader.count()
            ledger, ingestor = open_writer(sample)
            ingestor.ingest([make_record(make_event(30), offset=3)])
            ledger.close()
            assert reader.count() == before
        assert reader.count() == before + 1


def test_meta_is_insert_only(tmp_path):
    """set_meta adds a key once; the same value again is accepted, a different one refused."""
    ledger = Ledger.open(tmp_path / "l.db", readonly=False, create=True)
    ledger.set_meta("coverage", "x")
    ledger.set_meta("coverage", "x")
    with pytest.raises(StoreError, match="append-only"):
        ledger.set_meta("coverage", "y")
    assert ledger.meta()["coverage"] == "x"
    ledger.close()


@pytest.mark.parametrize("bits", [-1, 41, "16", 2.0, True])
def test_bucket_bits_out_of_range_are_refused(tmp_path, bits):
    """The side-table bucket size is a small non-negative integer, checked before a file is made."""
    with pytest.raises(StoreError, match="bucket_bits must be an integer from 0 to 40"):
        Ledger.open(tmp_path / "l.db", readonly=False, create=True, bucket_bits=bits)
    assert not (tmp_path / "l.db").exists()


def test_a_new_ledger_records_its_bucket_size(tmp_path):
    """meta bucket_bits is written at creation and read back; later opens keep the file's own value."""
    Ledger.open(tmp_path / "l.db", readonly=False, create=True, bucket_bits=3).close()
    with Ledger.open(tmp_path / "l.db", readonly=False, bucket_bits=12) as ledger:
        assert ledger.meta()["bucket_bits"] == "3"
        assert ledger.bucket_bits == 3


@pytest.mark.parametrize("bits", [None, 16])
def test_a_new_ledger_has_the_default_bucket_size_and_an_old_one_keeps_its_own(tmp_path, bits):
    """New files get schema.BUCKET_BITS (13); a file made with 16 stays at 16 when a writer opens it."""
    path = tmp_path / "l.db"
    kwargs = {} if bits is None else {"bucket_bits": bits}
    Ledger.open(path, readonly=False, create=True, **kwargs).close()
    ledger, ingestor = open_writer(path)
    ingestor.ingest([make_record(make_event(0))])
    assert ledger.bucket_bits == (13 if bits is None else bits)
    ledger.close()


def test_a_ledger_of_another_format_is_refused_with_what_to_do(tmp_path):
    """A file written in another format is not read half-right: the error says how to rebuild it."""
    path = tmp_path / "old.db"
    Ledger.open(path, readonly=False, create=True).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER meta_no_update")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'format_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"has ledger format '1'; this version reads format '3'\. Rebuild it"):
        Ledger.open(path)


@given(st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), st.text(max_size=3), st.binary(max_size=3)), max_size=40),
       st.integers(3, 20))
def test_insert_many_writes_every_row_whatever_the_variable_limit(rows, limit):
    """Multi-row inserts split by SQLite's variable limit lose, repeat and reorder nothing."""
    from ledger.store.inserts import insert_many

    conn = sqlite3.connect(":memory:")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b, c)")
    insert_many(conn, "t", ("a", "b", "c"), rows)
    assert conn.execute("SELECT a, b, c FROM t ORDER BY id").fetchall() == rows
