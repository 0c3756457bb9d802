"""RFC 6962 hashing (section 2.1, SHA-256) and the root arithmetic every other module shares::

    leaf hash = SHA-256(00 ‖ leaf data)        (ledger/tlog/chain.py's leaf hash already is this)
    node hash = SHA-256(01 ‖ left ‖ right)
    empty tree = SHA-256("")

The tree takes leaf *hashes*, so it also carries the chain's gap leaves (``SHA-256(02 ‖ …)``)
unchanged: a leaf is whatever 32 bytes the ledger hashed for that position.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(00 ‖ data)."""
    return sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(01 ‖ left ‖ right)."""
    return sha256(NODE_PREFIX + left + right).digest()


def hash_level(hashes: bytes) -> bytes:
    """One level up: each pair of concatenated 32-byte hashes → its node hash (an even count)."""
    return b"".join([sha256(NODE_PREFIX + hashes[i:i + 64]).digest() for i in range(0, len(hashes), 64)])


def perfect_root(hashes: bytes) -> bytes:
    """The root over a power-of-two count of concatenated hashes."""
    while len(hashes) > HASH_SIZE:
        hashes = hash_level(hashes)
    return hashes


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (n ≥ 2): where RFC 6962 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def fold(roots: Sequence[bytes]) -> bytes:
    """The root of a tree whose perfect subtrees, left to right, have ``roots`` (decreasing sizes)."""
    if not roots:
        return EMPTY_ROOT
    root = roots[-1]
    for left in reversed(roots[:-1]):
        root = node_hash(left, root)
    return root
