"""Each partition's stored Merkle tiles against the tree rebuilt from its leaves (ledger/store/tiles.py)."""

from __future__ import annotations

from collections.abc import Callable

from ledger.store import Entry, Ledger, tiles


class TreeCheck:
    """Feeds the stored leaf hashes to one rebuilt tree per partition; :meth:`finish` compares the tiles."""

    def __init__(self, ledger: Ledger, problem: Callable[..., None]):
        self.ledger = ledger
        self.problem = problem
        self.has_tiles = tiles.has_tables(ledger)
        self.trees: dict[tuple[str, int], tiles.TileChecker] = {}  # each partition's rebuilt tree
        self.tree_leaves: dict[tuple[str, int], list] = {}  # leaves not yet given to it

    def add(self, e: Entry) -> None:
        """Feed the stored leaf hash to its partition's rebuilt Merkle tree (compared in finish)."""
        if not self.has_tiles:
            return
        where = (e.topic, e.partition)
        buffer = self.tree_leaves.get(where)
        if buffer is None:
            buffer = self.tree_leaves[where] = []
            self.trees[where] = tiles.TileChecker(self.ledger, *where)
        buffer.append(e.leaf_hash)
        if len(buffer) >= 4096:  # extend in batches: a call per leaf would cost a third of the rate
            self.trees[where].add(buffer)
            buffer.clear()

    def finish(self) -> None:
        """Each partition's stored Merkle tiles are exactly the tree of its leaves (store/tiles.py)."""
        if not self.has_tiles:
            self.problem("the file has no Merkle tiles (tlog_tiles); rebuild it with `ledger replay --into NEW.db`")
            return
        for (topic, partition), checker in sorted(self.trees.items()):
            checker.add(self.tree_leaves[(topic, partition)])
            for what in checker.finish():
                self.problem(f"Merkle tree of {topic}[{partition}]: {what}")
        for topic, partition in sorted(set(tiles.tree_sizes(self.ledger)) - set(self.trees)):
            self.problem(f"Merkle tree of {topic}[{partition}]: tiles are stored for a partition with no entries")
