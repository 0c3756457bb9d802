"""RFC 6962 Merkle trees: hashing, an append-only tree stored as tiles, proofs, and pure verifiers.

    from ledger.tlog import merkle
    tree = merkle.MerkleTree(merkle.MemoryHashStore())
    tree.extend(leaf_hashes); tree.flush()
    proof = merkle.TreeReader(tree.store).inclusion_proof(3, tree.size)
    merkle.verify_inclusion(3, tree.size, leaf_hashes[3], proof, tree.root())

Reading order, one module per job:

- ``hashing.py``  RFC 6962 leaf and node hashes (SHA-256, prefixes 00 and 01), the empty root;
- ``tiles.py``    the c2sp.org/tlog-tiles layout, :class:`HashStore` (append-only tiles) and
                  :class:`MemoryHashStore`;
- ``tree.py``     :class:`MerkleTree` (appending, writing full tiles as they fill), :func:`root_of`,
                  :func:`compare_tiles` (what ``verify`` checks a partition's stored tiles with);
- ``reader.py``   :class:`TreeReader`: roots, inclusion and consistency proofs for any size the
                  tiles cover, from stored hashes only;
- ``verify.py``   the pure verifiers :func:`verify_inclusion`, :func:`verify_consistency` and
                  ``root_from_inclusion_proof``.

Nothing here knows the ledger: a leaf is whatever 32 bytes the ledger hashed for a position, and a
store is anything with ``get_tile`` / ``put_tile`` (ledger/store/tiles.py keeps them in the file).
This package re-exports the names the rest of the code uses; the helpers stay in their modules.
"""

from __future__ import annotations

from .hashing import EMPTY_ROOT, HASH_SIZE, leaf_hash
from .reader import TreeReader
from .tiles import TILE_WIDTH, HashStore, MemoryHashStore, tile_path
from .tree import MerkleTree, compare_tiles, root_of
from .verify import verify_consistency, verify_inclusion

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "TILE_WIDTH",
    "HashStore",
    "MemoryHashStore",
    "MerkleTree",
    "TreeReader",
    "compare_tiles",
    "leaf_hash",
    "root_of",
    "tile_path",
    "verify_consistency",
    "verify_inclusion",
]
