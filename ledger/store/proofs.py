"""Receipts and log positions for many entries at once, read in the caller's snapshot.

A report with proofs asks, for every line it lists, where the entry sits in its partition's tree
and (for the auditor) its c2sp.org/tlog-proof@v1 receipt under the latest stored checkpoint of
that partition. :class:`Prover` answers them over the connection of an open
:class:`~ledger.store.Ledger`, inside the read transaction the report is built in, so the
checkpoints, the tiles and the entries are one state:

    prover = Prover(ledger, "ledger.example.com/audit")
    prover.load(seqs)                    # the entries, their leaf indexes, the checkpoints: few statements
    prover.receipt(seq)                  # the receipt text
    prover.position(seq)                 # (origin, index)

Leaf indexes are counted once per partition up to its largest offset asked
(:func:`.tiles.leaf_indexes`), each partition's tile reader is kept for all its entries (tiles
read once, shared expansions), and a partition's latest checkpoint is read once. An entry no
stored checkpoint covers yet is refused with :class:`~.checkpoints.NotCheckpointedError`, naming it and
what to run.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ledger.tlog.chain import leaf_bytes
from ledger.tlog.merkle import TreeReader
from ledger.tlog.receipt import make_receipt

from ..errors import StoreError
from . import tiles
from .checkpoints import NotCheckpointedError, origin_for
from .read import Entry
from .schema import ENTRY_COLUMNS

_IN_MAX = 900


@dataclass(frozen=True)
class Located:
    """Where one entry sits: its partition's origin, its leaf index, and the entry itself."""

    entry: Entry
    origin: str
    index: int


class Prover:
    """Positions, checkpoints and receipts of entries by seq (see the module docstring)."""

    def __init__(self, source, log_origin: str):
        self.conn: sqlite3.Connection = getattr(source, "conn", source)
        self.log_origin = log_origin
        self._located: dict[int, Located] = {}
        self._checkpoints: dict[str, tuple[int, str] | None] = {}
        self._readers: dict[tuple[str, int], TreeReader] = {}
        if not tiles.has_tables(self.conn):
            raise StoreError("the ledger has no Merkle tiles; rebuild it with `ledger replay --into NEW.db`")

    def load(self, seqs) -> None:
        """Read the entries of ``seqs`` and their leaf indexes (a few statements per partition)."""
        wanted = sorted(set(seqs) - self._located.keys())
        entries: list[Entry] = []
        try:
            for i in range(0, len(wanted), _IN_MAX):
                chunk = wanted[i:i + _IN_MAX]
                entries += [Entry(*row) for row in self.conn.execute(
                    f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries WHERE seq IN ({', '.join('?' * len(chunk))})",
                    chunk)]
            by_partition: dict[tuple[str, int], list[Entry]] = {}
            for entry in entries:
                by_partition.setdefault((entry.topic, entry.partition), []).append(entry)
            for (topic, partition), group in by_partition.items():
                indexes = tiles.leaf_indexes(self.conn, topic, partition, [e.offset for e in group])
                origin = origin_for(self.log_origin, topic, partition)
                for entry in group:
                    self._located[entry.seq] = Located(entry, origin, indexes[entry.offset])
        except sqlite3.Error as err:
            raise StoreError(f"cannot read the ledger: {err}") from err
        missing = set(wanted) - self._located.keys()
        if missing:
            raise StoreError(f"no entry with seq {min(missing)} in the ledger")

    def located(self, seq: int) -> Located:
        if seq not in self._located:
            self.load([seq])
        return self._located[seq]

    def checkpoint(self, origin: str) -> tuple[int, str] | None:
        """The latest stored checkpoint of ``origin``: (size, signed note), or None."""
        if origin not in self._checkpoints:
            row = self.conn.execute("SELECT size, note FROM checkpoints WHERE origin = ? ORDER BY size DESC "
                                    "LIMIT 1", (origin,)).fetchone()
            self._checkpoints[origin] = None if row is None else tuple(row)
        return self._checkpoints[origin]

    def covering(self, seq: int) -> tuple[Located, int, str]:
        """The entry, and the size and note of the latest checkpoint of its partition, which must cover it."""
        where = self.located(seq)
        latest = self.checkpoint(where.origin)
        if latest is None or latest[0] <= where.index:
            what = where.entry.event_id or where.entry.where()
            state = "has no stored checkpoint" if latest is None else f"has its latest checkpoint at size {latest[0]}"
            raise NotCheckpointedError(f"entry {what} is leaf {where.index} of {where.origin}, which {state}: no "
                                  "checkpoint covers it yet; run `ledger checkpoint --key FILE` first")
        return where, latest[0], latest[1]

    def position(self, seq: int) -> tuple[str, int]:
        """(origin, leaf index) of the entry, checked to lie under the latest checkpoint of its partition."""
        where, _, _ = self.covering(seq)
        return where.origin, where.index

    def receipt(self, seq: int) -> str:
        """The entry's c2sp.org/tlog-proof@v1 receipt under the latest checkpoint of its partition."""
        where, size, note = self.covering(seq)
        entry = where.entry
        key = (entry.topic, entry.partition)
        reader = self._readers.get(key)
        if reader is None:
            reader = self._readers[key] = tiles.reader(self.conn, *key)
        try:
            proof = reader.inclusion_proof(where.index, size)
        except sqlite3.Error as err:
            raise StoreError(f"cannot read the ledger's tiles: {err}") from err
        return make_receipt(leaf_bytes(entry.record())[1:], where.index, proof, note)

    def earliest_copy(self, seq: int) -> int | None:
        """The seq of the same-content copy recorded before the entry ``seq`` (earliest first), or None."""
        row = self.conn.execute("SELECT seq FROM earlier_copies WHERE entry_seq = ? ORDER BY timestamp, seq "
                                "LIMIT 1", (seq,)).fetchone()
        if row is None:
            return None
        (earlier,) = row
        return earlier
