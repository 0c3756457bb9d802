"""A commit in two halves (Ledger.begin_append, Ingestor.start_commit, CommitPipeline).

The rows bound from Python are written on the caller's thread and the side
rows plus COMMIT on the commit thread, inside one transaction: a failure in
either half leaves nothing of the batch, and work run between commits that
takes the write lock through its own connection never meets a half-open one.
"""

from __future__ import annotations

import sqlite3
import time

import pytest
from builders import make_event, make_record, open_writer
from ledgers import sample_records, table_differences

from ledger.errors import StoreError
from ledger.ingest.pipeline import CommitPipeline


def counts(path) -> tuple[int, int, int]:
    conn = sqlite3.connect(path)
    try:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("entries", "subjects", "offsets"))
    finally:
        conn.close()


def test_halves_on_two_threads_write_what_one_append_writes(tmp_path):
    records = sample_records()
    ledger, ingestor = open_writer(tmp_path / "one.db")
    for i in range(0, len(records), 4):
        ingestor.ingest(records[i:i + 4])
    ledger.close()
    ledger, ingestor = open_writer(tmp_path / "halves.db")
    with CommitPipeline(ingestor) as pipeline:
        for i in range(0, len(records), 4):
            pipeline.submit(ingestor.prepare(records[i:i + 4]))
        pipeline.wait()
    ledger.close()
    assert table_differences(tmp_path / "one.db", tmp_path / "halves.db") == []


def test_a_second_half_that_fails_leaves_nothing_of_the_batch_and_the_ingestor_prepares_again(tmp_path, monkeypatch):
    ledger, ingestor = open_writer(tmp_path / "ledger.db")
    ingestor.ingest([make_record(make_event(1), offset=0)])
    before = counts(tmp_path / "ledger.db")
    batch = [make_record(make_event(n), offset=n - 1) for n in (2, 3)]

    def full(conn, rows):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ledger, "_expand_side_rows", full)
    with CommitPipeline(ingestor) as pipeline:
        pipeline.submit(ingestor.prepare(batch))
        with pytest.raises(StoreError, match="cannot append to .*database or disk is full"):
            pipeline.wait()
    assert counts(tmp_path / "ledger.db") == before
    monkeypatch.undo()
    ingestor.ingest(batch)  # prepared again on the committed tips
    assert counts(tmp_path / "ledger.db")[0] == before[0] + 2
    ledger.close()


def test_an_open_append_finishes_once(tmp_path):
    ledger, ingestor = open_writer(tmp_path / "ledger.db")
    prepared = ingestor.prepare([make_record(make_event(1), offset=0)])
    pending = ledger.begin_append(prepared.rows)
    pending.finish()
    with pytest.raises(StoreError, match="already finished or rolled back"):
        pending.finish()
    ledger.close()


def test_work_between_commits_that_takes_the_write_lock_never_meets_a_half_open_commit(tmp_path):
    """A checkpoint round (its own connection) queued between commits must end before the next commit begins:
    begun first, the commit would hold the write lock while its second half waited behind the round."""
    path = tmp_path / "ledger.db"
    ledger, ingestor = open_writer(path)

    def round_with_its_own_connection():
        time.sleep(0.3)  # the main thread would have begun the next commit by now
        conn = sqlite3.connect(path, timeout=1.0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        return "signed"

    with CommitPipeline(ingestor) as pipeline:
        pipeline.submit(ingestor.prepare([make_record(make_event(1), offset=0)]))
        pipeline.wait()
        round_ = pipeline.between_commits(round_with_its_own_connection)
        pipeline.submit(ingestor.prepare([make_record(make_event(2), offset=1)]))
        pipeline.wait()
    assert round_.result() == "signed"
    assert counts(path)[0] == 2
    ledger.close()
