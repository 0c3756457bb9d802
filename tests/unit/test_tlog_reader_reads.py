"""The tile reader's reads: a proof's tiles in one statement, each tile read once, never a stale width."""

from __future__ import annotations

import random
import sqlite3
from hashlib import sha256

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.store import tiles
from ledger.tlog import merkle


def leaves(n: int, start: int = 0) -> list[bytes]:
    return [sha256(i.to_bytes(8, "big")).digest() for i in range(start, start + n)]


class CountingStore(merkle.MemoryHashStore):
    """A memory store that counts its reads and can read many tiles at once."""

    def __init__(self):
        super().__init__()
        self.reads = 0

    def get_tile(self, level, index):
        self.reads += 1
        return super().get_tile(level, index)

    def get_tiles(self, keys):
        self.reads += 1
        return {k: self.tiles[k] for k in keys if k in self.tiles}


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 70_000), st.integers(0, 2_000), st.data())
def test_a_reader_kept_while_the_tree_grows_proves_like_a_fresh_one(first, more, data):
    """Tiles only widen: a reader that cached a narrower tile re-reads it, so its proofs stay right."""
    store = merkle.MemoryHashStore()
    tree = merkle.MerkleTree(store)
    tree.extend(leaves(first))
    tree.flush()
    kept = merkle.TreeReader(store)
    index = data.draw(st.integers(0, first - 1))
    assert kept.inclusion_proof(index, first) == merkle.TreeReader(store).inclusion_proof(index, first)
    tree.extend(leaves(more, first))
    tree.flush()
    size = first + more
    index = data.draw(st.integers(0, size - 1))
    proof = kept.inclusion_proof(index, size)
    assert proof == merkle.TreeReader(store).inclusion_proof(index, size)
    merkle.verify_inclusion(index, size, leaves(1, index)[0], proof, tree.root())
    old = data.draw(st.integers(1, size))
    assert kept.consistency_proof(old, size) == merkle.TreeReader(store).consistency_proof(old, size)


def test_a_proof_reads_its_tiles_in_one_call():
    """A cold proof in a 1,000,000-leaf tree asks the store once, however many tiles it needs."""
    store = CountingStore()
    tree = merkle.MerkleTree(store)
    tree.extend(leaves(1_000_000))
    tree.flush()
    rng = random.Random(3)
    for _ in range(50):
        store.reads = 0
        index = rng.randrange(1_000_000)
        proof = merkle.TreeReader(store).inclusion_proof(index, 1_000_000)
        merkle.verify_inclusion(index, 1_000_000, leaves(1, index)[0], proof, tree.root())
        assert store.reads == 1


def test_sqlite_get_tiles_equals_get_tile_one_by_one(tmp_path):
    """SqliteHashStore.get_tiles returns exactly the stored tiles asked for (missing ones absent)."""
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    tiles.ensure_tables(conn)
    store = tiles.SqliteHashStore(conn, "ledger.access", 0)
    tree = merkle.MerkleTree(store)
    tree.extend(leaves(70_000))
    tree.flush()
    other = tiles.SqliteHashStore(conn, "ledger.access", 1)
    merkle.MerkleTree(other).extend(leaves(300))
    keys = [(0, i) for i in range(0, 280, 7)] + [(1, 0), (1, 1), (2, 0), (0, 9999), (5, 0)]
    got = store.get_tiles(keys)
    assert got == {k: store.get_tile(*k) for k in keys if store.get_tile(*k) is not None}
    assert (0, 9999) not in got and len(got) == len(keys) - 2


def test_leaf_indexes_count_like_leaf_index(tmp_path):
    """Counting many offsets at once gives each offset's own leaf index (rows before it in its partition)."""
    conn = sqlite3.connect(tmp_path / "e.db")
    conn.execute("CREATE TABLE entries (topic TEXT, partition INTEGER, offset INTEGER, "
                 "UNIQUE (topic, partition, offset))")
    rng = random.Random(5)
    offsets = sorted(rng.sample(range(5000), 900))
    conn.executemany("INSERT INTO entries VALUES ('t', 0, ?)", [(o,) for o in offsets])
    conn.executemany("INSERT INTO entries VALUES ('t', 1, ?)", [(o,) for o in range(100)])
    asked = rng.sample(offsets, 60)
    assert tiles.leaf_indexes(conn, "t", 0, asked) == {o: tiles.leaf_index(conn, "t", 0, o) for o in asked}
    assert tiles.leaf_indexes(conn, "t", 0, []) == {}
