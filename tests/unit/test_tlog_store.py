"""The Merkle tiles the writer keeps in the ledger file (ledger/store/tiles.py).

Pins: every partition's stored tree is the RFC 6962 tree of its chain's leaves in offset order,
whatever the batch sizes, across reopening the file, and in bulk (replay) mode; the tiles are
append-only in the file itself.
"""

from __future__ import annotations

import sqlite3

import pytest

from ledger.dev.simulate import simulate
from ledger.errors import StoreError
from ledger.ingest.pipeline import Ingestor
from ledger.store import Ledger, tiles
from ledger.tlog.merkle import root_of
from ledger.wire.codec import default_codec
from tests.support.fill import ingest_records, to_records


@pytest.fixture(scope="module")
def records():
    codec = default_codec()
    work = simulate(seed=5, events=1500, subjects=40)
    recs = list(to_records(work.events, codec=codec))
    # a gap leaf and a duplicate: every kind of chain leaf is in the tree
    last = recs[-1]
    recs.append(last.__class__(last.topic, last.partition, last.offset + 5, last.timestamp, last.key,
                               last.value, last.headers))
    return recs


def _roots(path) -> dict:
    with Ledger.open(path) as led:
        return tiles.roots(led.conn)


def test_stored_roots_are_the_trees_of_the_leaves(records, tmp_path):
    """Each partition's stored root and size equal a tree rebuilt from its rows' leaf hashes."""
    path = tmp_path / "l.db"
    ingest_records(path, records, batch=97)
    with Ledger.open(path) as led:
        stored = tiles.roots(led.conn)
        assert stored
        for (topic, partition), (size, root) in stored.items():
            leaves = tiles.partition_leaves(led.conn, topic, partition)
            assert size == len(leaves)
            assert root == root_of(leaves)
            assert tiles.rebuild_problems(led.conn, topic, partition, leaves) == []
        kinds = {k for (k,) in led.conn.execute("SELECT DISTINCT status FROM entries")}
        assert "gap" in kinds
        assert sum(s for s, _ in stored.values()) == led.count()


def test_batch_size_reopening_and_bulk_give_identical_roots(records, tmp_path):
    """A replay reproduces identical roots: other batch sizes, a reopened file, and bulk mode agree."""
    ingest_records(tmp_path / "a.db", records, batch=10_000)
    half = len(records) // 2
    ingest_records(tmp_path / "b.db", records[:half], batch=300)
    ingest_records(tmp_path / "b.db", records[half:], batch=1)  # reopened: trees resume from the tiles
    led = Ledger.open(tmp_path / "c.db", readonly=False, create=True)
    try:
        led.begin_bulk()
        ingestor = Ingestor(led)
        for i in range(0, len(records), 500):
            ingestor.ingest(records[i:i + 500])
        led.finish_bulk()
    finally:
        led.close()
    a = _roots(tmp_path / "a.db")
    assert a == _roots(tmp_path / "b.db") == _roots(tmp_path / "c.db")


def test_tiles_are_append_only_in_the_file(records, tmp_path):
    """The trigger refuses rewriting or deleting a tile; widening one is the only UPDATE."""
    path = tmp_path / "l.db"
    ingest_records(path, records[:300], batch=300)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE tlog_tiles SET hashes = zeroblob(32) WHERE level = 0")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM tlog_tiles")
    conn.close()


def test_a_rolled_back_batch_leaves_no_tiles_and_the_tree_resumes(records, tmp_path):
    """A failed append rolls the tiles back with the entries; the next append continues correctly."""
    path = tmp_path / "l.db"
    led = Ledger.open(path, readonly=False, create=True)
    try:
        ingestor = Ingestor(led)
        ingestor.ingest(records[:100])
        prepared = ingestor.prepare(records[100:200])
        rows = prepared.rows
        bad = list(rows.offsets)
        rows.offsets = bad + bad  # a duplicate primary key: the transaction fails after the tiles were put
        with pytest.raises(StoreError, match="UNIQUE constraint failed: offsets"):
            led.append(rows)
        rows.offsets = bad
        led.append(rows)
        for (topic, partition), (_size, root) in tiles.roots(led.conn).items():
            assert root == root_of(tiles.partition_leaves(led.conn, topic, partition))
    finally:
        led.close()
