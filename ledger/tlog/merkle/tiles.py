"""The tile layout of c2sp.org/tlog-tiles, and where a tree keeps its tiles.

A tile at level L, index N holds up to 256 consecutive hashes of perfect subtrees of height 8·L,
that is ``MTH(D[(N·256+i)·256^L : (N·256+i+1)·256^L])`` for i in 0..255 (level 0 holds the leaf
hashes). A *full* tile has 256 hashes and never changes; the rightmost tile of each level is
*partial* (1..255 hashes) and only grows. Because the tree only grows, the tiles of a tree of size
n answer every size m ≤ n.

A :class:`HashStore` keeps tiles as ``level, index -> concatenated hashes``; a put may only
extend what is stored (append-only). :class:`MemoryHashStore` is the in-memory one.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import TreeError
from .hashing import HASH_SIZE, perfect_root

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes
TILE_BYTES = TILE_WIDTH * HASH_SIZE  # 8,192 bytes


def tile_subtree_roots(tile: bytes, width: int) -> list[bytes]:
    """The perfect subtree roots, left to right, over the first ``width`` hashes of a tile."""
    roots, start = [], 0
    for bit in range(TILE_HEIGHT - 1, -1, -1):
        count = 1 << bit
        if width & count:
            roots.append(perfect_root(tile[start * HASH_SIZE:(start + count) * HASH_SIZE]))
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
