"""The hash chain of each topic-partition: offsets contiguous (or covered by a gap entry), every
leaf hash recomputed from the raw record and every chain link from the stored leaf."""

from __future__ import annotations

from collections.abc import Callable

from ledger.store import Entry
from ledger.tlog.chain import gap_hash, leaf_hash, link

from .report import hex_or_repr


class ChainCheck:
    """Checks entries in append order; keeps each partition's last link and last entry."""

    def __init__(self, problem: Callable[..., None], *, mid_chain: bool):
        """``mid_chain``: the file is a replayed window, so a partition's first offset may be any."""
        self.problem = problem
        self.mid_chain = mid_chain
        self.chains: dict[tuple[str, int], tuple[bytes | None, int, str]] = {}  # prev hash, next offset, kind
        self.last_entry: dict[tuple[str, int], Entry] = {}

    def check(self, e: Entry) -> bool:
        """Offsets, leaf and link; False when the record's columns are unusable (reported)."""
        where = (e.topic, e.partition)
        first = (None, e.offset if self.mid_chain else 0, "record")
        prev, expected, last_kind = self.chains.get(where, first)
        self.last_entry[where] = e
        if e.offset != expected:
            if e.offset > expected:
                self.problem(f"offsets {expected}..{e.offset - 1} are missing and no gap entry covers them", e)
            else:
                self.problem(f"offset out of order: expected {expected} after the previous entry", e)
        if e.kind == "gap":
            leaf = gap_hash(e.topic, e.partition, e.offset, e.gap_end)
            if e.status != "gap":
                self.problem(f"a gap entry has status {e.status!r}", e)
            if last_kind == "gap" and where in self.chains:
                self.problem("two gap entries in a row", e)
            following = e.gap_end
        elif e.kind == "record":
            following = e.offset + 1
            self.chains[where] = (e.chain_hash, following, e.kind)
            for column in ("key", "value", "fingerprint"):
                if not isinstance(getattr(e, column), (bytes, type(None))):
                    self.problem(f"the {column} column holds {type(getattr(e, column)).__name__}, not bytes", e)
                    return False
            leaf = leaf_hash(e.record())
        else:
            raise ValueError(f"unknown kind {e.kind!r}")
        if leaf != e.leaf_hash:
            self.problem(f"leaf hash differs: stored {hex_or_repr(e.leaf_hash)}, recomputed {leaf.hex()} "
                         "(the record's topic, offset, timestamp, key, headers or value changed)", e)
        # Link the *stored* leaf and continue from the stored chain hash, so that a
        # changed record is reported once (leaf) and a changed link where it breaks.
        chain = link(prev, e.leaf_hash)
        if chain != e.chain_hash:
            self.problem(f"chain hash differs: stored {hex_or_repr(e.chain_hash)}, recomputed {chain.hex()}", e)
        self.chains[where] = (e.chain_hash, following, e.kind)
        return True
