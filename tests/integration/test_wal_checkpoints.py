"""The writer's WAL checkpoints, run on a thread of their own (store/wal.py), on real files.

What must hold: the WAL stays bounded however many batches commit; nothing
committed is lost, and close leaves a complete main file; a failing checkpoint
thread hands checkpoints back to SQLite's commits without losing a batch.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
import threading

from builders import make_event, make_record, open_writer
from ledgers import verify_file

from ledger.store import Ledger, schema, wal

PAGE = 4096
FRAME = PAGE + 24  # a WAL frame: its header and one page


def batches(count: int, size: int = 40):
    """``count`` batches of ``size`` events each, offsets running on from batch to batch."""
    for b in range(count):
        yield [make_record(make_event(b * size + i), offset=b * size + i) for i in range(size)]


def wal_bytes(path) -> int:
    wal_file = path.with_name(path.name + "-wal")
    return wal_file.stat().st_size if wal_file.exists() else 0


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wal-checkpoint")]


def test_the_wal_stays_bounded_and_restarts(tmp_path, monkeypatch):
    """Over batches writing many times the bound, the WAL file never grows past the bound plus a few batches."""
    monkeypatch.setattr(wal, "RESTART_FRAMES", 64)
    path = tmp_path / "l.db"
    ledger, ingestor = open_writer(path)
    largest = 0
    for records in batches(150):
        ingestor.ingest(records)
        largest = max(largest, wal_bytes(path))
    main_bytes = path.stat().st_size
    ledger.close()
    per_batch = 50  # frames one batch writes at most here (measured: 24-41; without the wait the WAL reached 6,172)
    bound = 32 + (64 + 3 * per_batch) * FRAME
    assert largest <= bound, f"the WAL grew to {largest:,} bytes, over {bound:,}"
    assert main_bytes > 5 * bound  # so the WAL must have started over again and again


def test_everything_committed_is_in_the_main_file_after_close(tmp_path, monkeypatch):
    """Close stops the thread, removes the WAL, and the file verifies with every entry in it."""
    monkeypatch.setattr(wal, "RESTART_FRAMES", 16)
    path = tmp_path / "l.db"
    before = set(checkpoint_threads())
    ledger, ingestor = open_writer(path)
    for records in batches(30):
        ingestor.ingest(records)
    assert len(set(checkpoint_threads()) - before) == 1
    ledger.close()
    assert set(checkpoint_threads()) <= before
    assert not path.with_name(path.name + "-wal").exists()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM entries").fetchone() == (1200,)
    conn.close()
    assert verify_file(path).ok


def test_a_failing_checkpoint_hands_checkpoints_back_to_the_commits(tmp_path, caplog):
    """The thread's error is logged; the next batch turns SQLite's own checkpoints back on and commits."""
    path = tmp_path / "l.db"
    ledger, ingestor = open_writer(path)
    chunks = list(batches(4))
    ingestor.ingest(chunks[0])
    checkpointer = ledger._wal
    assert ledger.conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)

    def failing_checkpoint():
        raise sqlite3.OperationalError("disk I/O error")

    checkpointer._checkpoint = failing_checkpoint  # the thread's next pass fails
    with caplog.at_level(logging.WARNING, logger="ledger.store.wal"):
        ingestor.ingest(chunks[1])
        checkpointer._thread.join(timeout=10)
    assert not checkpointer._thread.is_alive()
    assert "disk I/O error" in caplog.text
    assert "WAL checkpoints go back to the writer's commits" in caplog.text
    ingestor.ingest(chunks[2])
    assert ledger._wal is None
    assert ledger.conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (schema.WAL_CHECKPOINT_PAGES,)
    ingestor.ingest(chunks[3])
    assert ledger._wal is None  # not started again
    ledger.close()
    with Ledger.open(path) as reader:
        assert reader.count() == 160
    assert verify_file(path).ok


def test_a_writer_dropped_without_close_stops_its_thread(tmp_path):
    """The thread holds no reference to its ledger: collecting the ledger stops the thread."""
    ledger, ingestor = open_writer(tmp_path / "l.db")
    ingestor.ingest(next(batches(1)))
    thread = ledger._wal._thread
    del ledger, ingestor
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_closing_while_a_pass_runs_waits_for_it(tmp_path):
    """Close right after a commit, while the thread checkpoints: the file is whole (closing its connection under it crashed)."""
    path = tmp_path / "l.db"
    for round_ in range(20):
        ledger, ingestor = open_writer(path)
        ingestor.ingest([make_record(make_event(round_ * 40 + i), offset=round_ * 40 + i) for i in range(40)])
        ledger.close()
    assert verify_file(path).ok


def test_a_close_from_the_thread_itself_ends_it(tmp_path, monkeypatch):
    """The ledger's finalizer can run on the checkpoint thread (a collection it set off): no join on itself."""
    raised = []
    monkeypatch.setattr(threading, "excepthook", raised.append)
    ledger, ingestor = open_writer(tmp_path / "l.db")
    first, second = batches(2)
    ingestor.ingest(first)  # starts the thread
    checkpointer = ledger._wal
    real_pass = checkpointer._checkpoint

    def pass_then_close():
        checkpointer.close()
        return real_pass()

    checkpointer._checkpoint = pass_then_close
    ingestor.ingest(second)
    checkpointer._thread.join(timeout=10)
    assert not checkpointer._thread.is_alive()
    assert raised == []
    ledger.close()


def test_readers_and_one_shot_writers_start_no_thread(tmp_path):
    """Only appends checkpoint in the background: opening, reading and meta writes leave SQLite's own on."""
    path = tmp_path / "l.db"
    before = set(checkpoint_threads())
    with Ledger.open(path, readonly=False, create=True) as ledger:
        ledger.set_meta("coverage", "x")
        assert set(checkpoint_threads()) == before
        assert ledger.conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (schema.WAL_CHECKPOINT_PAGES,)
    with Ledger.open(path) as reader:
        assert reader.meta()["coverage"] == "x"
        assert set(checkpoint_threads()) == before
