"""Pure verifiers: inclusion and consistency proofs checked against trusted roots (RFC 9162 2.1.3/2.1.4).

Each precondition fails with its own error class (ledger/tlog/errors.py), so a caller can tell a
malformed proof from a proof of something else.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import (
    EmptyTreeConsistencyError,
    HashSizeError,
    IndexBeyondSizeError,
    ProofSizeError,
    RootMismatchError,
    SizeOrderError,
)
from .hashing import HASH_SIZE, node_hash


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
