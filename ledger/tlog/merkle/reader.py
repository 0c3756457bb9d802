"""Reading: roots, inclusion and consistency proofs for any past size, from stored tiles only.

The hashes between tile levels are recomputed when a proof needs them (at most 255 hashes per
tile, see :func:`expand_tile`); nothing here reads a leaf.
"""

from __future__ import annotations

from ..errors import TreeError
from .hashing import EMPTY_ROOT, HASH_SIZE, hash_level, node_hash, split_point
from .tiles import TILE_HEIGHT, TILE_WIDTH, HashStore

_EXPANSIONS: dict[bytes, list[bytes]] = {}  # tile bytes -> its inner levels, shared by every reader
_EXPANSIONS_MAX = 128  # about 2 MiB: the upper tiles and right borders every proof at a size shares


def expand_tile(tile: bytes) -> list[bytes]:
    """A tile with its inner levels: [the hashes, their pairs hashed, ...] (255 node hashes for a full tile).

    Cached by the tile's bytes, so the cache cannot serve one file's tile for another's: the same
    hashes expand to the same levels wherever they come from. The tiles near the root and the
    right border are shared by every proof at a tree size, so a fresh reader reuses their work.
    """
    levels = _EXPANSIONS.pop(tile, None)  # least recently used first: a hit moves to the end
    if levels is None:
        levels = [tile]
        row = tile
        while len(row) >= 2 * HASH_SIZE:
            row = hash_level(row[:len(row) // 64 * 64])
            levels.append(row)
        if len(_EXPANSIONS) >= _EXPANSIONS_MAX:
            _EXPANSIONS.pop(next(iter(_EXPANSIONS)))
    _EXPANSIONS[tile] = levels
    return levels


class TreeReader:
    """Roots and proofs for any size the store covers, computed from tiles only (never leaves).

    Preconditions: the store holds the tiles of a tree of some size ≥ every size asked (a full
    tile, or the rightmost partial tile flushed at that size or later); otherwise TreeError names
    the missing tile. The store must not change underneath except by appending.
    """

    CACHE_TILES = 64  # expanded tiles kept: a proof touches one tile per 8 levels

    def __init__(self, store: HashStore):
        self.store = store
        self._expanded: dict[tuple[int, int, int], list[bytes]] = {}
        self._raw: dict[tuple[int, int], bytes] = {}  # tiles read, by (level, index): read each once
        self._get_tiles = getattr(store, "get_tiles", None)  # optional: many tiles in one read

    def _tile(self, level: int, index: int, need: int) -> bytes | None:
        """Tile (level, index) at least ``need`` hashes wide if stored so: from the cache, else the store."""
        tile = self._raw.get((level, index))
        if tile is None or len(tile) < need * HASH_SIZE:  # the store only widens tiles: re-read a narrow one
            tile = self.store.get_tile(level, index)
            if tile is not None:
                if len(self._raw) >= 4 * self.CACHE_TILES:
                    self._raw.pop(next(iter(self._raw)))
                self._raw[(level, index)] = tile
        return tile

    def _prefetch(self, wanted: dict[tuple[int, int], int]) -> None:
        """Read every tile a proof needs (``{(level, index): width}``) that is not cached, in one call."""
        if self._get_tiles is None:
            return
        missing = [k for k, need in wanted.items()
                   if len(self._raw.get(k, b"")) < need * HASH_SIZE]
        if len(missing) > 1:
            for key, tile in self._get_tiles(missing).items():
                self._raw[key] = tile

    def _tile_levels(self, level: int, index: int, need: int) -> list[bytes]:
        """Tile (level, index) with its inner levels: [entries, pairs hashed, ...], ≥ ``need`` wide."""
        tile = self._tile(level, index, need)
        width = 0 if tile is None else len(tile) // HASH_SIZE
        if width < need:
            raise TreeError(f"tile {level}/{index} holds {width} hashes, the proof needs {need}: the store "
                            "does not cover this tree size (was the tree flushed?)")
        key = (level, index, width)
        levels = self._expanded.get(key)
        if levels is None:
            levels = expand_tile(tile)
            if len(self._expanded) >= self.CACHE_TILES:
                self._expanded.pop(next(iter(self._expanded)))
            self._expanded[key] = levels
        return levels

    @staticmethod
    def _node_tile(level: int, index: int) -> tuple[tuple[int, int], int]:
        """Which tile holds node (level, index), and how wide it must be: ((tile level, tile index), width)."""
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height
        tile_index, offset = divmod(first, TILE_WIDTH)
        return (tile_level, tile_index), offset + (1 << height)

    def node(self, level: int, index: int) -> bytes:
        """The hash of the perfect subtree of height ``level`` holding leaves [index·2^level, (index+1)·2^level)."""
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height  # position of the subtree's first entry among the tile level's entries
        tile_index, offset = divmod(first, TILE_WIDTH)
        levels = self._tile_levels(tile_level, tile_index, offset + (1 << height))
        row = levels[height]
        at = (offset >> height) * HASH_SIZE
        return row[at:at + HASH_SIZE]

    def _range(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range the RFC 6962 recursion produces (start aligned to the left split)."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            level = n.bit_length() - 1
            return self.node(level, start >> level)
        k = split_point(n)
        return node_hash(self._range(start, start + k), self._range(start + k, end))

    def _plan_range(self, start: int, end: int, wanted: dict[tuple[int, int], int]) -> None:
        """The tiles :meth:`_range` will read for D[start:end], added to ``wanted`` (no hashing)."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            level = n.bit_length() - 1
            key, need = self._node_tile(level, start >> level)
            if wanted.get(key, 0) < need:
                wanted[key] = need
            return
        k = split_point(n)
        self._plan_range(start, start + k, wanted)
        self._plan_range(start + k, end, wanted)

    def root(self, size: int) -> bytes:
        """The root hash of the tree at ``size`` leaves."""
        if size < 0:
            raise TreeError(f"tree size {size} is negative")
        return EMPTY_ROOT if size == 0 else self._range(0, size)

    @staticmethod
    def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
        """The sibling ranges of PATH(index, D[size]), root side first."""
        ranges = []
        start, end = 0, size
        while end - start > 1:
            k = split_point(end - start)
            if index < start + k:
                ranges.append((start + k, end))
                end = start + k
            else:
                ranges.append((start, start + k))
                start += k
        return ranges

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[size]): leaf's sibling first, the root's child last."""
        if not 0 <= index < size:
            raise TreeError(f"leaf index {index} is not in a tree of size {size}")
        ranges = self._inclusion_ranges(index, size)
        wanted: dict[tuple[int, int], int] = {}
        for start, end in ranges:
            self._plan_range(start, end, wanted)
        self._prefetch(wanted)
        proof = [self._range(start, end) for start, end in ranges]
        proof.reverse()
        return proof

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 6962 PROOF(size1, D[size2]); empty when size1 is 0 or equals size2.

        An empty list for size1 = 0 is what the witness protocol sends; the verifier refuses a
        consistency check from size 0 (there is nothing to check), so callers handle it first.
        """
        if not 0 <= size1 <= size2:
            raise TreeError(f"no consistency proof from size {size1} to size {size2}")
        if size1 == 0 or size1 == size2:
            return []
        proof: list[bytes] = []
        start, end, m, complete = 0, size2, size1, True
        while True:
            n = end - start
            if m == n:
                if not complete:
                    proof.append(self._range(start, end))
                break
            k = split_point(n)
            if m <= k:
                proof.append(self._range(start + k, end))
                end = start + k
            else:
                proof.append(self._range(start, start + k))
                start, m, complete = start + k, m - k, False
        proof.reverse()
        return proof
