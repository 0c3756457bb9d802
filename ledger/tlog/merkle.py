"""RFC 6962 Merkle trees: hashing, an append-only tree stored as tiles, proofs, and pure verifiers.

Start with :class:`MerkleTree` (appending), :class:`TreeReader` (roots and proofs for any past
size, from stored hashes only) and the verifier functions at the end of the module
(:func:`verify_inclusion`, :func:`verify_consistency`, :func:`root_from_inclusion_proof`).

Hashing is RFC 6962 section 2.1 with SHA-256::

    leaf hash = SHA-256(00 ‖ leaf data)        (ledger/tlog/chain.py's leaf hash already is this)
    node hash = SHA-256(01 ‖ left ‖ right)
    empty tree = SHA-256("")

The tree takes leaf *hashes*, so it also carries the chain's gap leaves (``SHA-256(02 ‖ …)``)
unchanged: a leaf is whatever 32 bytes the ledger hashed for that position.

Storage is the tile layout of c2sp.org/tlog-tiles: a tile at level L, index N holds up to 256
consecutive hashes of perfect subtrees of height 8·L, that is ``MTH(D[(N·256+i)·256^L :
(N·256+i+1)·256^L])`` for i in 0..255 (level 0 holds the leaf hashes). A *full* tile has 256
hashes and never changes; the rightmost tile of each level is *partial* (1..255 hashes) and only
grows. The hashes between tile levels are recomputed when a proof needs them (at most 255 hashes
per tile). Because the tree only grows, the tiles of a tree of size n answer every size m ≤ n.

A :class:`HashStore` keeps tiles as ``level, index -> concatenated hashes``; a put may only
extend what is stored (append-only). :class:`MemoryHashStore` is the in-memory one.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Iterable, Protocol, Sequence

from .errors import (
    EmptyTreeConsistencyError,
    HashSizeError,
    IndexBeyondSizeError,
    ProofSizeError,
    RootMismatchError,
    SizeOrderError,
    TreeError,
)

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes
TILE_BYTES = TILE_WIDTH * HASH_SIZE  # 8,192 bytes
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(00 ‖ data)."""
    return sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(01 ‖ left ‖ right)."""
    return sha256(NODE_PREFIX + left + right).digest()


def _hash_level(hashes: bytes) -> bytes:
    """One level up: each pair of concatenated 32-byte hashes → its node hash (an even count)."""
    return b"".join([sha256(NODE_PREFIX + hashes[i:i + 64]).digest() for i in range(0, len(hashes), 64)])


def _perfect_root(hashes: bytes) -> bytes:
    """The root over a power-of-two count of concatenated hashes."""
    while len(hashes) > HASH_SIZE:
        hashes = _hash_level(hashes)
    return hashes


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n ≥ 2): where RFC 6962 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def _fold(roots: Sequence[bytes]) -> bytes:
    """The root of a tree whose perfect subtrees, left to right, have ``roots`` (decreasing sizes)."""
    if not roots:
        return EMPTY_ROOT
    root = roots[-1]
    for left in reversed(roots[:-1]):
        root = node_hash(left, root)
    return root


def _tile_subtree_roots(tile: bytes, width: int) -> list[bytes]:
    """The perfect subtree roots, left to right, over the first ``width`` hashes of a tile."""
    roots, start = [], 0
    for bit in range(TILE_HEIGHT - 1, -1, -1):
        count = 1 << bit
        if width & count:
            roots.append(_perfect_root(tile[start * HASH_SIZE:(start + count) * HASH_SIZE]))
            start += count
    return roots


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """The tlog-tiles resource name of a tile, e.g. ``tile/0/x001/x234/067.p/112``."""
    digits = f"{index:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    parts = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    path = "/".join([f"x{p}" for p in parts[:-1]] + [parts[-1]])
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{path}{suffix}"


# --- storage --------------------------------------------------------------------------------------


class HashStore(Protocol):
    """Where a tree keeps its tiles. Tiles are concatenated 32-byte hashes, 1..256 of them."""

    def get_tile(self, level: int, index: int) -> bytes | None:
        """The widest stored version of tile (level, index), or None if none is stored."""

    def put_tile(self, level: int, index: int, hashes: bytes) -> None:
        """Store tile (level, index); it must extend (or equal) what is stored. TreeError if not."""


class MemoryHashStore:
    """A :class:`HashStore` in a dict; refuses a put that does not extend the stored tile."""

    def __init__(self) -> None:
        self.tiles: dict[tuple[int, int], bytes] = {}

    def get_tile(self, level: int, index: int) -> bytes | None:
        return self.tiles.get((level, index))

    def put_tile(self, level: int, index: int, hashes: bytes) -> None:
        check_tile_put(self.tiles.get((level, index)), level, index, hashes)
        self.tiles[(level, index)] = bytes(hashes)


def check_tile_put(old: bytes | None, level: int, index: int, new: bytes) -> None:
    """TreeError unless ``new`` is a well-sized tile extending ``old`` (the append-only rule)."""
    if not new or len(new) % HASH_SIZE or len(new) > TILE_BYTES:
        raise TreeError(f"tile {level}/{index}: {len(new)} bytes is not 1..256 hashes of 32 bytes")
    if old is not None and (len(new) < len(old) or new[:len(old)] != old):
        raise TreeError(f"tile {level}/{index}: the new tile ({len(new) // HASH_SIZE} hashes) does not "
                        f"extend the stored one ({len(old) // HASH_SIZE} hashes): the tree would be rewritten")


# --- appending ------------------------------------------------------------------------------------


class MerkleTree:
    """An append-only RFC 6962 tree over leaf hashes, writing its tiles to a :class:`HashStore`.

    State is the rightmost (partial) tile of each level: at most 255 hashes per level, O(log n)
    in all, from which the compact range (the perfect subtrees covering the tree) is derived. A
    tile is written to the store the moment it is full; partial tiles are written by
    :meth:`flush`, which must run before proofs are asked for the current size (the writer runs it
    in the transaction that commits the leaves). ``store=None`` keeps no tiles (just the root).

    Each full tile costs 255 node hashes, hashed in one tight loop when it fills: about 0.6 µs of
    CPU per leaf on the reference machine (bench/bench_tlog.py).
    """

    def __init__(self, store: HashStore | None = None, size: int = 0):
        """Resume the tree of ``size`` leaves held by ``store`` (TreeError if a tile is missing)."""
        if size < 0:
            raise TreeError(f"tree size {size} is negative")
        if size and store is None:
            raise TreeError("a tree of non-zero size can only be resumed from a store")
        self.store = store
        self._size = size
        self._partial: list[bytearray] = [bytearray()]  # the rightmost partial tile of each level
        self._full_tiles: list[int] = [0]  # how many full tiles each level has
        level, span = 0, 1
        while span <= size:
            if level >= len(self._partial):
                self._partial.append(bytearray())
                self._full_tiles.append(0)
            width = (size // span) % TILE_WIDTH
            index = size // (span * TILE_WIDTH)
            self._full_tiles[level] = index
            if width:
                tile = store.get_tile(level, index)
                if tile is None or len(tile) < width * HASH_SIZE:
                    have = 0 if tile is None else len(tile) // HASH_SIZE
                    raise TreeError(f"cannot resume a tree of size {size}: tile {level}/{index} has "
                                    f"{have} hashes, needs {width}")
                self._partial[level] += tile[:width * HASH_SIZE]
            level, span = level + 1, span * TILE_WIDTH

    @property
    def size(self) -> int:
        """The number of leaves appended."""
        return self._size

    def append(self, leaf: bytes) -> int:
        """Append one leaf hash; returns its index."""
        if len(leaf) != HASH_SIZE:
            raise HashSizeError(f"leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
        tile = self._partial[0]
        tile += leaf
        self._size += 1
        if len(tile) == TILE_BYTES:
            self._tile_filled(0)
        return self._size - 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append leaf hashes in order (the fast path for a batch)."""
        tile = self._partial[0]
        size = self._size
        for leaf in leaves:
            if len(leaf) != HASH_SIZE:
                self._size = size
                raise HashSizeError(f"leaf hash {size} is {len(leaf)} bytes, not {HASH_SIZE}")
            tile += leaf
            size += 1
            if len(tile) == TILE_BYTES:
                self._size = size
                self._tile_filled(0)
                tile = self._partial[0]
        self._size = size

    def _tile_filled(self, level: int) -> None:
        tile = bytes(self._partial[level])
        index = self._full_tiles[level]
        if self.store is not None:
            self.store.put_tile(level, index, tile)
        self._full_tiles[level] = index + 1
        self._partial[level] = bytearray()
        if level + 1 == len(self._partial):
            self._partial.append(bytearray())
            self._full_tiles.append(0)
        above = self._partial[level + 1]
        above += _perfect_root(tile)
        if len(above) == TILE_BYTES:
            self._tile_filled(level + 1)

    def flush(self) -> None:
        """Write every non-empty partial tile to the store, so proofs can be made at this size."""
        if self.store is None:
            return
        for level, tile in enumerate(self._partial):
            if tile:
                self.store.put_tile(level, self._full_tiles[level], bytes(tile))

    def compact_range(self) -> list[tuple[int, bytes]]:
        """The perfect subtrees covering [0, size), left to right, as (height, hash): one per set bit of size."""
        out: list[tuple[int, bytes]] = []
        for level in range(len(self._partial) - 1, -1, -1):
            tile = self._partial[level]
            width = len(tile) // HASH_SIZE
            heights = [level * TILE_HEIGHT + b for b in range(TILE_HEIGHT - 1, -1, -1) if width >> b & 1]
            out += zip(heights, _tile_subtree_roots(bytes(tile), width))
        return out

    def root(self) -> bytes:
        """The root hash at the current size (EMPTY_ROOT for no leaves)."""
        return _fold([h for _, h in self.compact_range()])


def root_of(leaves: Iterable[bytes]) -> bytes:
    """The root over leaf hashes, storing nothing (what ``verify`` recomputes from the leaves)."""
    tree = MerkleTree()
    tree.extend(leaves)
    return tree.root()


def compare_tiles(stored: HashStore, leaves: Sequence[bytes]) -> list[str]:
    """Rebuild the tree from ``leaves`` and compare every tile with ``stored`` (what ``verify`` does).

    Returns one message per tile that differs, each naming the tile and the first leaf range
    whose hash differs (a changed, inserted or deleted leaf shows as the first level-0
    difference); an empty list when the store holds exactly the tree of these leaves. Tiles the
    store holds beyond the rebuilt tree are reported too (the store claims more leaves).
    """
    rebuilt = MemoryHashStore()
    tree = MerkleTree(rebuilt)
    tree.extend(leaves)
    tree.flush()
    problems = []
    for (level, index), want in sorted(rebuilt.tiles.items()):
        have = stored.get_tile(level, index)
        if have is not None and len(have) > len(want):
            have_cut = have[:len(want)]
        else:
            have_cut = have
        if have_cut == want:
            continue
        span = TILE_WIDTH ** level
        if have is None:
            problems.append(f"tile {level}/{index} is missing (leaves from {index * TILE_WIDTH * span})")
            continue
        at = next((i for i in range(0, min(len(have), len(want)), HASH_SIZE)
                   if have[i:i + HASH_SIZE] != want[i:i + HASH_SIZE]), None)
        if at is None:
            problems.append(f"tile {level}/{index} holds {len(have) // HASH_SIZE} hashes, the leaves give "
                            f"{len(want) // HASH_SIZE}")
            continue
        first = (index * TILE_WIDTH + at // HASH_SIZE) * span
        problems.append(f"tile {level}/{index} differs at hash {at // HASH_SIZE}: leaves [{first}, {first + span}) "
                        "do not hash to what is stored")
    size = len(leaves)
    for level in range(0, 8):
        span = TILE_WIDTH ** level
        index = size // (span * TILE_WIDTH)
        have = stored.get_tile(level, index)
        width = (size // span) % TILE_WIDTH
        if have is not None and len(have) > width * HASH_SIZE:
            problems.append(f"tile {level}/{index} holds {len(have) // HASH_SIZE} hashes, more than the "
                            f"{size} leaves give ({width})")
        if stored.get_tile(level, index + 1) is not None:
            problems.append(f"tile {level}/{index + 1} exists beyond the {size} leaves")
    return problems


# --- reading: roots and proofs from stored hashes -------------------------------------------------


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
            row = _hash_level(row[:len(row) // 64 * 64])
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
        k = _split(n)
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
        k = _split(n)
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
            k = _split(end - start)
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
            k = _split(n)
            if m <= k:
                proof.append(self._range(start + k, end))
                end = start + k
            else:
                proof.append(self._range(start, start + k))
                start, m, complete = start + k, m - k, False
        proof.reverse()
        return proof


# --- verifying ------------------------------------------------------------------------------------


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise HashSizeError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """(inner, border): proof hashes below the split of index and size-1, and on the right border."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _check_match(what: str, computed: bytes, expected: bytes) -> None:
    if computed != expected:
        raise RootMismatchError(f"{what}: computed root {computed.hex()} does not match the expected "
                                f"root {expected.hex()}", expected=expected, computed=computed)


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` yields for leaf hash ``leaf`` at ``index`` in a tree of ``size``.

    Preconditions checked, each with its own error: 0 ≤ index < size (IndexBeyondSizeError), the
    leaf hash and every proof hash are 32 bytes (HashSizeError), and the proof has exactly the
    number of hashes the index and size require (ProofSizeError). The result still has to be
    compared with a trusted root: use :func:`verify_inclusion`.
    """
    if not 0 <= index < size:
        raise IndexBeyondSizeError(f"leaf index {index} is beyond the tree size {size}")
    _check_hash("leaf hash", leaf)
    inner, border = _inclusion_shape(index, size)
    if len(proof) != inner + border:
        raise ProofSizeError(f"inclusion proof has {len(proof)} hashes; index {index} in a tree of size "
                             f"{size} needs {inner + border}")
    for i, h in enumerate(proof):
        _check_hash(f"inclusion proof hash {i}", h)
    return _chain_border_right(_chain_inner(leaf, proof[:inner], index), proof[inner:])


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that leaf hash ``leaf`` is at ``index`` of the tree of ``size`` with root ``root``.

    Returns None on success; raises a :class:`ProofError` subclass naming the failure: the
    preconditions of :func:`root_from_inclusion_proof`, then RootMismatchError.
    """
    _check_match(f"inclusion of leaf {index} in tree size {size}",
                 root_from_inclusion_proof(index, size, leaf, proof), root)


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of the tree of ``size2`` with ``root2``.

    Preconditions, each with its own error: size1 ≤ size2 (SizeOrderError); size1 > 0
    (EmptyTreeConsistencyError: the empty tree is a prefix of every tree, so a proof from it
    proves nothing and a caller must treat size 0 itself, as the witness protocol does); equal
    sizes take an empty proof and equal roots; otherwise the proof is non-empty, has exactly the
    number of hashes the sizes require (ProofSizeError) and 32-byte hashes (HashSizeError). Both
    roots are then recomputed from the proof (RootMismatchError names which one differs).
    """
    if size2 < size1:
        raise SizeOrderError(f"consistency from size {size1} to the smaller size {size2}")
    if size1 == 0:
        raise EmptyTreeConsistencyError(f"consistency proof from the empty tree (size 0) to size {size2} "
                                        "is meaningless")
    if size1 == size2:
        if proof:
            raise ProofSizeError(f"sizes are equal ({size1}) but the proof has {len(proof)} hashes, not 0")
        _check_match(f"consistency at equal sizes {size1}", root2, root1)
        return
    if not proof:
        raise ProofSizeError(f"empty consistency proof from size {size1} to size {size2}")
    inner, border = _inclusion_shape(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zeros: size1's largest power-of-two subtree
    inner -= shift
    if size1 == 1 << shift:  # size1 is a perfect subtree: its root is the seed, not sent
        seed, rest = root1, list(proof)
    else:
        seed, rest = proof[0], list(proof[1:])
    want = inner + border + (0 if size1 == 1 << shift else 1)
    if len(proof) != want:
        raise ProofSizeError(f"consistency proof has {len(proof)} hashes; sizes {size1} to {size2} need {want}")
    for i, h in enumerate(proof):
        _check_hash(f"consistency proof hash {i}", h)
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    _check_match(f"consistency: old tree (size {size1})", hash1, root1)
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    _check_match(f"consistency: new tree (size {size2})", hash2, root2)
