"""The Merkle trees' tiles in the ledger file, written in the same transaction as the entries.

Each topic-partition's log is an RFC 6962 tree (ledger/tlog/merkle/) over its chain's leaves in
offset order: every entry row, whatever its status (entry, duplicate, conflict, contradiction,
rejected) and every gap row is one leaf, its ``leaf_hash``. The tree's hashes are kept as
c2sp.org/tlog-tiles tiles in ``tlog_tiles``: full tiles never change, the rightmost partial tile of
each level only widens (a trigger refuses any other UPDATE, and every DELETE).

:class:`TreeWriter` is the append path's hook: ``Ledger.append`` hands it the batch's entry rows
and it extends each partition's tree (resumed from the stored tiles the first time a partition is
seen) and writes the full and partial tiles on the same connection, inside the same transaction,
so a committed batch always has the tiles of its tree and a rolled-back one has none. After a
rollback the in-memory trees are dropped and resumed from the file.

A partition's tree size is derived from its level-0 tiles (256 × full tiles + the partial tile's
width), so no counter can drift from the hashes. The leaf index of an entry is its position in the
partition: the number of rows of that partition at lower offsets (:func:`leaf_index`; the UNIQUE
(topic, partition, offset) index answers it without touching the rows). Checkpoints signed for a
tree are kept in ``checkpoints``.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable, Sequence

from ledger.tlog.merkle import HASH_SIZE, TILE_WIDTH, MerkleTree, TreeReader

from ..errors import StoreError

DDL = """
CREATE TABLE IF NOT EXISTS tlog_tiles (   -- c2sp tlog-tiles of each topic-partition's Merkle tree
    topic     TEXT    NOT NULL,
    partition INTEGER NOT NULL,
    level     INTEGER NOT NULL,             -- tile level: hashes of subtrees of 256^level leaves
    idx       INTEGER NOT NULL,             -- tile index within the level
    hashes    BLOB    NOT NULL,             -- 1..256 concatenated 32-byte hashes
    PRIMARY KEY (topic, partition, level, idx)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS tlog_tiles_no_delete BEFORE DELETE ON tlog_tiles
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on tlog_tiles refused'); END;

CREATE TRIGGER IF NOT EXISTS tlog_tiles_only_widen BEFORE UPDATE ON tlog_tiles
WHEN NOT (NEW.topic IS OLD.topic AND NEW.partition IS OLD.partition AND NEW.level IS OLD.level
          AND NEW.idx IS OLD.idx AND length(NEW.hashes) > length(OLD.hashes)
          AND length(NEW.hashes) <= 8192 AND length(NEW.hashes) % 32 = 0
          AND substr(NEW.hashes, 1, length(OLD.hashes)) = OLD.hashes)
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: a tlog tile may only be widened'); END;

CREATE TABLE IF NOT EXISTS checkpoints (  -- signed checkpoints of the trees (tlog-checkpoint notes)
    origin    TEXT    NOT NULL,             -- <log origin>/<topic>/<partition>
    size      INTEGER NOT NULL,
    root      BLOB    NOT NULL,
    note      TEXT    NOT NULL,             -- the signed note, with any cosignatures
    signed_at INTEGER NOT NULL,             -- wall clock, ms
    PRIMARY KEY (origin, size)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on checkpoints refused'); END;

CREATE TRIGGER IF NOT EXISTS checkpoints_only_cosign BEFORE UPDATE ON checkpoints
WHEN NOT (NEW.origin IS OLD.origin AND NEW.size IS OLD.size AND NEW.root IS OLD.root
          AND substr(NEW.note, 1, length(OLD.note)) = OLD.note)
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: a checkpoint may only gain cosignatures'); END;
"""

_UPSERT = ("INSERT INTO tlog_tiles (topic, partition, level, idx, hashes) VALUES (?, ?, ?, ?, ?) "
           "ON CONFLICT (topic, partition, level, idx) DO UPDATE SET hashes = excluded.hashes "
           "WHERE excluded.hashes IS NOT tlog_tiles.hashes")


def ensure_tables(conn: sqlite3.Connection) -> None:
    """Create the tile and checkpoint tables if the file has none (idempotent)."""
    conn.executescript(DDL)


def _conn(source) -> sqlite3.Connection:
    """The connection of a Ledger (or the connection itself)."""
    return getattr(source, "conn", source)


def has_tables(source) -> bool:
    return _conn(source).execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tlog_tiles'").fetchone() is not None


def _as_bytes(value) -> bytes:
    """A stored tile as bytes. A tampered row may hold text or a number; as bytes it differs from the
    rebuilt tile (verify names it)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    if isinstance(value, (int, float)):
        return bytes(str(value), "ascii")
    return bytes(value)


class SqliteHashStore:
    """A :class:`ledger.tlog.merkle.HashStore` over one partition's rows of ``tlog_tiles``.

    Puts go through the connection they are given (inside the caller's transaction); the
    widen-only trigger refuses a put that would rewrite a tile, so no read precedes a write.
    """

    def __init__(self, conn: sqlite3.Connection, topic: str, partition: int):
        self.conn = conn
        self.topic = topic
        self.partition = partition

    def get_tile(self, level: int, index: int) -> bytes | None:
        row = self.conn.execute(
            "SELECT hashes FROM tlog_tiles WHERE topic = ? AND partition = ? AND level = ? AND idx = ?",
            (self.topic, self.partition, level, index)).fetchone()
        if row is None:
            return None
        (value,) = row
        return _as_bytes(value)

    def get_tiles(self, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Several tiles in one statement (what a proof needs): ``{(level, index): hashes}`` of those stored."""
        out: dict[tuple[int, int], bytes] = {}
        for i in range(0, len(keys), 400):
            chunk = keys[i:i + 400]
            params: list = [v for key in chunk for v in key] + [self.topic, self.partition]
            values = ", ".join("(?, ?)" for _ in chunk)
            for level, index, value in self.conn.execute(
                    f"WITH wanted (level, idx) AS (VALUES {values}) SELECT t.level, t.idx, t.hashes FROM wanted "
                    "CROSS JOIN tlog_tiles AS t ON t.topic = ? AND t.partition = ? AND t.level = wanted.level "
                    "AND t.idx = wanted.idx", params):
                out[(level, index)] = _as_bytes(value)
        return out

    def put_tile(self, level: int, index: int, hashes: bytes) -> None:
        self.conn.execute(_UPSERT, (self.topic, self.partition, level, index, hashes))

    def tiles(self) -> dict[tuple[int, int], bytes]:
        """Every stored tile of the partition (for verify)."""
        return {(lv, ix): bytes(h) for lv, ix, h in self.conn.execute(
            "SELECT level, idx, hashes FROM tlog_tiles WHERE topic = ? AND partition = ?",
            (self.topic, self.partition))}


def stored_size(conn: sqlite3.Connection, topic: str, partition: int) -> int:
    """The partition's tree size according to its level-0 tiles (0 if none)."""
    row = conn.execute(
        "SELECT idx, length(hashes) FROM tlog_tiles WHERE topic = ? AND partition = ? AND level = 0 "
        "ORDER BY idx DESC LIMIT 1", (topic, partition)).fetchone()
    if row is None:
        return 0
    index, length = row
    return index * TILE_WIDTH + length // HASH_SIZE


def tree_sizes(source) -> dict[tuple[str, int], int]:
    """Every partition's stored tree size."""
    conn = _conn(source)
    out = {}
    for topic, partition, idx, width in conn.execute(
            "SELECT topic, partition, max(idx), length(hashes) FROM tlog_tiles WHERE level = 0 "
            "GROUP BY topic, partition"):
        out[(topic, partition)] = idx * TILE_WIDTH + width // HASH_SIZE
    return out


def reader(conn: sqlite3.Connection, topic: str, partition: int) -> TreeReader:
    """Roots and proofs of a partition's tree at any size up to the stored one."""
    return TreeReader(SqliteHashStore(conn, topic, partition))


def leaf_index(conn: sqlite3.Connection, topic: str, partition: int, offset: int) -> int:
    """The leaf index of the row at ``offset``: how many rows of its partition lie before it."""
    return conn.execute("SELECT count(*) FROM entries WHERE topic = ? AND partition = ? AND offset < ?",
                        (topic, partition, offset)).fetchone()[0]


def leaf_indexes(conn: sqlite3.Connection, topic: str, partition: int, offsets) -> dict[int, int]:
    """``{offset: leaf index}`` for many rows of one partition, counting the index once up to the last.

    The offsets are sorted and the rows between consecutive ones counted, so the whole costs one
    walk of the (topic, partition, offset) index up to the largest offset, not one per row.
    """
    out: dict[int, int] = {}
    below, previous = 0, None
    for offset in sorted(set(offsets)):
        if previous is None:
            below = leaf_index(conn, topic, partition, offset)
        else:
            below += conn.execute("SELECT count(*) FROM entries WHERE topic = ? AND partition = ? AND offset >= ? "
                                  "AND offset < ?", (topic, partition, previous, offset)).fetchone()[0]
        out[offset] = below
        previous = offset
    return out


# Where Ledger.append's entry tuples (schema.ENTRY_COLUMNS) hold the tree's inputs.
_TOPIC, _PARTITION, _LEAF = 1, 2, 17


class TreeWriter:
    """Per-partition trees kept by the writer; :meth:`add` runs inside the append transaction."""

    def __init__(self) -> None:
        self._trees: dict[tuple[str, int], MerkleTree] = {}

    def _tree(self, conn: sqlite3.Connection, where: tuple[str, int]) -> MerkleTree:
        tree = self._trees.get(where)
        if tree is None:
            store = SqliteHashStore(conn, *where)
            try:
                tree = MerkleTree(store, stored_size(conn, *where))
            except Exception as err:  # TreeError: a tile is missing or short
                raise StoreError(f"cannot resume the Merkle tree of {where[0]}/{where[1]}: {err}; "
                                 "run `ledger verify`") from err
            self._trees[where] = tree
        else:
            tree.store.conn = conn
        return tree

    def add(self, conn: sqlite3.Connection, entries: Sequence[Sequence]) -> None:
        """Append each entry row's leaf hash to its partition's tree and write the tiles."""
        if not entries:
            return
        groups: dict[tuple[str, int], list[bytes]] = {}
        for row in entries:
            where = (row[_TOPIC], row[_PARTITION])
            leaves = groups.get(where)
            if leaves is None:
                leaves = groups[where] = []
            leaves.append(row[_LEAF])
        for where, leaves in groups.items():
            tree = self._tree(conn, where)
            tree.extend(leaves)
            tree.flush()

    def forget(self) -> None:
        """Drop the in-memory trees (after a rollback: the file's tiles are the truth)."""
        self._trees.clear()


def rebuild_problems(conn: sqlite3.Connection, topic: str, partition: int, leaves: Iterable[bytes]) -> list[str]:
    """compare_tiles for one partition: what differs between its stored tiles and its leaves."""
    from ledger.tlog.merkle import MemoryHashStore, compare_tiles

    stored = MemoryHashStore()
    stored.tiles = SqliteHashStore(conn, topic, partition).tiles()
    return compare_tiles(stored, list(leaves))


def roots(conn: sqlite3.Connection) -> dict[tuple[str, int], tuple[int, bytes]]:
    """Every partition's (tree size, root) as stored: what a checkpoint signs, what replay must reproduce."""
    return {where: (size, reader(conn, *where).root(size)) for where, size in sorted(tree_sizes(conn).items())}


def partition_leaves(conn: sqlite3.Connection, topic: str, partition: int) -> list[bytes]:
    """A partition's leaf hashes in offset order (the chain's leaves: every row, gaps included)."""
    return [bytes(h) for (h,) in conn.execute(
        "SELECT leaf_hash FROM entries WHERE topic = ? AND partition = ? ORDER BY offset", (topic, partition))]


class TileChecker:
    """Rebuilds one partition's tree from its leaves and compares each tile with the stored one as it forms.

    A :class:`~ledger.tlog.merkle.HashStore` whose puts are comparisons: ``verify`` feeds the
    leaves in offset order, full tiles are compared the moment they fill and the partial ones at
    :meth:`finish`, so memory stays O(log n) whatever the partition's size. Each difference names
    the tile and the first leaf range whose hash differs from what is stored.
    """

    def __init__(self, source, topic: str, partition: int):
        self.stored = SqliteHashStore(_conn(source), topic, partition)
        self.tree = MerkleTree(self)
        self.problems: list[str] = []

    def get_tile(self, level: int, index: int) -> bytes | None:
        return None  # never asked: the tree starts empty

    def add(self, leaves: list[bytes]) -> None:
        """Append leaf hashes (a malformed one counts as 32 zero bytes: check_chain reports it)."""
        before = self.tree.size
        try:
            self.tree.extend(leaves)
        except Exception:  # a malformed leaf part-way: extend stopped before it; go on leaf by leaf
            for leaf in leaves[self.tree.size - before:]:
                ok = isinstance(leaf, bytes) and len(leaf) == HASH_SIZE
                self.tree.append(leaf if ok else bytes(HASH_SIZE))

    def put_tile(self, level: int, index: int, hashes: bytes) -> None:
        have = self.stored.get_tile(level, index)
        span = TILE_WIDTH ** level
        first_leaf = index * TILE_WIDTH * span
        if have is None:
            self.problems.append(f"tile {level}/{index} is missing (leaves from {first_leaf})")
            return
        if have == hashes:
            return
        at = next((i for i in range(0, min(len(have), len(hashes)), HASH_SIZE)
                   if have[i:i + HASH_SIZE] != hashes[i:i + HASH_SIZE]), None)
        if at is None:
            self.problems.append(f"tile {level}/{index} holds {len(have) // HASH_SIZE} hashes, the leaves "
                                 f"give {len(hashes) // HASH_SIZE}")
            return
        first = first_leaf + at // HASH_SIZE * span
        self.problems.append(f"tile {level}/{index} differs at hash {at // HASH_SIZE}: leaves "
                             f"[{first}, {first + span}) do not hash to what is stored")

    def finish(self) -> list[str]:
        """Compare the partial tiles and report stored tiles beyond the rebuilt tree; the problems found."""
        self.tree.flush()
        size = self.tree.size
        expected = set()
        level, span = 0, 1
        while True:
            full, width = divmod(size // span, TILE_WIDTH)
            expected.update((level, i) for i in range(full + (1 if width else 0)))
            if size // span < TILE_WIDTH:
                break
            level, span = level + 1, span * TILE_WIDTH
        extra = sorted(set(self.stored.conn.execute(
            "SELECT level, idx FROM tlog_tiles WHERE topic = ? AND partition = ?",
            (self.stored.topic, self.stored.partition))) - expected)
        for lv, ix in extra[:5]:
            self.problems.append(f"tile {lv}/{ix} is stored beyond the tree of the {size} leaves")
        return self.problems
