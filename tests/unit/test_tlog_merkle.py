"""ledger.tlog.merkle: the RFC 6962 vectors, a naive reference tree, tiles and resuming."""

from __future__ import annotations

import base64
import functools
import json
import re
from hashlib import sha256
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.tlog import merkle
from ledger.tlog.errors import (
    EmptyTreeConsistencyError,
    HashSizeError,
    IndexBeyondSizeError,
    ProofError,
    ProofSizeError,
    RootMismatchError,
    SizeOrderError,
    TreeError,
)

VECTORS = Path(__file__).parent.parent / "data" / "merkle"


def _b64(value):
    return b"" if value is None else base64.b64decode(value)


def _cases(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


# --- the transparency-dev/merkle vectors ----------------------------------------------------------


def test_all_vectors_are_present():
    """The 98 inclusion and 98 consistency cases were copied with their licence and source note."""
    assert len(_cases("inclusion")) == 98 and len(_cases("consistency")) == 98
    assert (VECTORS / "LICENSE").read_text().startswith("\n                                 Apache License") or \
        "Apache License" in (VECTORS / "LICENSE").read_text()
    assert "transparency-dev/merkle" in (VECTORS / "SOURCE.md").read_text()


@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion_vector(path):
    """Every inclusion case verifies, or fails with a ProofError, exactly as its wantErr says."""
    case = json.loads(path.read_text())
    proof = [_b64(h) for h in case["proof"] or []]
    args = (case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), proof, _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("path", _cases("consistency"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency_vector(path):
    """Every consistency case verifies, or fails with a ProofError, exactly as its wantErr says."""
    case = json.loads(path.read_text())
    proof = [_b64(h) for h in case["proof"] or []]
    args = (case["size1"], case["size2"], proof, _b64(case["root1"]), _b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def _constants():
    text = (VECTORS / "constants.go.txt").read_text()
    inputs_block = text.split("func LeafInputs()")[1].split("func NodeHashes()")[0]
    inputs = [bytes.fromhex(h) for h in re.findall(r'hd\("([0-9a-f]*)"\)', inputs_block)]
    roots_block = text.split("func RootHashes()")[1].split("func CompactTrees()")[0]
    roots = [bytes.fromhex(h) for h in re.findall(r'hd\("([0-9a-f]*)"\)', roots_block)]
    return inputs, roots


def test_reference_roots_of_the_vectors():
    """The tree built from the vectors' eight leaf inputs has their published root at every size."""
    inputs, roots = _constants()
    assert len(inputs) == 8 and len(roots) == 8  # sizes 1..8; size 0 is EmptyRootHash()
    store = merkle.MemoryHashStore()
    tree = merkle.MerkleTree(store)
    assert tree.root() == merkle.EMPTY_ROOT == sha256(b"").digest()
    for size, data in enumerate(inputs, 1):
        tree.append(merkle.leaf_hash(data))
        assert tree.root() == roots[size - 1]
    tree.flush()
    reader = merkle.TreeReader(store)
    assert [reader.root(s) for s in range(1, 9)] == roots


# --- distinct reasons ------------------------------------------------------------------------------


def test_verifier_errors_have_distinct_classes():
    """Each precondition fails with its own class and reason code, like merkle's proof/verify.go."""
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(5)]
    store = merkle.MemoryHashStore()
    tree = merkle.MerkleTree(store)
    tree.extend(leaves)
    tree.flush()
    reader = merkle.TreeReader(store)
    root = tree.root()
    proof = reader.inclusion_proof(1, 5)
    cases = [
        (IndexBeyondSizeError, lambda: merkle.verify_inclusion(5, 5, leaves[1], proof, root)),
        (ProofSizeError, lambda: merkle.verify_inclusion(1, 5, leaves[1], proof[:-1], root)),
        (HashSizeError, lambda: merkle.verify_inclusion(1, 5, leaves[1][:31], proof, root)),
        (HashSizeError, lambda: merkle.verify_inclusion(1, 5, leaves[1], [proof[0][:5]] + proof[1:], root)),
        (RootMismatchError, lambda: merkle.verify_inclusion(1, 5, leaves[2], proof, root)),
        (SizeOrderError, lambda: merkle.verify_consistency(5, 3, [], root, root)),
        (EmptyTreeConsistencyError, lambda: merkle.verify_consistency(0, 5, [], merkle.EMPTY_ROOT, root)),
        (ProofSizeError, lambda: merkle.verify_consistency(3, 5, [], reader.root(3), root)),
        (ProofSizeError, lambda: merkle.verify_consistency(5, 5, [root], root, root)),
    ]
    reasons = set()
    for cls, call in cases:
        with pytest.raises(cls) as info:
            call()
        reasons.add(info.value.reason)
    assert reasons == {"index-beyond-size", "wrong-proof-size", "wrong-hash-size", "root-mismatch",
                       "size-order", "empty-tree"}


def test_root_mismatch_says_which_root():
    """A consistency failure names the old or the new tree, with both hashes attached."""
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(7)]
    store = merkle.MemoryHashStore()
    tree = merkle.MerkleTree(store)
    tree.extend(leaves)
    tree.flush()
    reader = merkle.TreeReader(store)
    proof = reader.consistency_proof(3, 7)
    with pytest.raises(RootMismatchError, match="new tree") as info:
        merkle.verify_consistency(3, 7, proof, reader.root(3), reader.root(6))
    assert info.value.expected == reader.root(6)
    with pytest.raises(RootMismatchError, match="old tree"):
        merkle.verify_consistency(3, 7, proof, reader.root(2), reader.root(7))


# --- the naive reference tree (RFC 6962 section 2.1, literally) -----------------------------------


class ReferenceTree:
    """MTH, PATH and PROOF exactly as RFC 6962 section 2.1 writes them, over leaf hashes."""

    def __init__(self, leaves: list[bytes]):
        self.leaves = leaves
        self.mth = functools.cache(self._mth)  # per tree: a cache on the class would keep every tree alive

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return sha256(b"").digest()
        if n == 1:
            return self.leaves[start]  # MTH({d0}) = SHA-256(0x00 || d0), which the leaf hash already is
        k = 1
        while k * 2 < n:
            k *= 2
        return sha256(b"\x01" + self.mth(start, start + k) + self.mth(start + k, end)).digest()

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = 1
        while k * 2 < n:
            k *= 2
        if m < k:
            return self.path(m, start, start + k) + [self.mth(start + k, end)]
        return self.path(m - k, start + k, end) + [self.mth(start, start + k)]

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = 1
        while k * 2 < n:
            k *= 2
        if m <= k:
            return self.subproof(m, start, start + k, b) + [self.mth(start + k, end)]
        return self.subproof(m - k, start + k, end, False) + [self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True)


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _stored_tree(leaves: list[bytes]) -> tuple[merkle.MerkleTree, merkle.MemoryHashStore]:
    store = merkle.MemoryHashStore()
    tree = merkle.MerkleTree(store)
    tree.extend(leaves)
    tree.flush()
    return tree, store


def test_reference_agrees_for_every_size_up_to_300():
    """Roots, every inclusion proof and every consistency proof of sizes 0-300 equal the reference's,
    all computed from the tiles of the size-300 tree only (past sizes from present tiles), and verify."""
    leaves = _leaves(300)
    ref = ReferenceTree(leaves)
    _, store = _stored_tree(leaves)
    reader = merkle.TreeReader(store)
    grown = merkle.MerkleTree()
    assert grown.root() == reader.root(0) == ref.mth(0, 0)
    for size in range(1, 301):
        grown.append(leaves[size - 1])
        root = ref.mth(0, size)
        assert reader.root(size) == root and grown.root() == root, size
        for index in range(size):
            proof = reader.inclusion_proof(index, size)
            assert proof == ref.path(index, 0, size), (index, size)
            merkle.verify_inclusion(index, size, leaves[index], proof, root)
        for old in range(1, size + 1):
            proof = reader.consistency_proof(old, size)
            assert proof == (ref.proof(old, size) if old < size else []), (old, size)
            merkle.verify_consistency(old, size, proof, ref.mth(0, old), root)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), size=st.integers(min_value=301, max_value=70_000))
def test_reference_agrees_for_random_larger_sizes(data, size):
    """For random sizes past one full level-1 tile, random roots and proofs equal the reference's."""
    leaves = _leaves(size)
    ref = ReferenceTree(leaves)
    _, store = _stored_tree(leaves)
    reader = merkle.TreeReader(store)
    assert reader.root(size) == ref.mth(0, size)
    for _ in range(5):
        n = data.draw(st.integers(min_value=1, max_value=size))
        index = data.draw(st.integers(min_value=0, max_value=n - 1))
        m = data.draw(st.integers(min_value=1, max_value=n))
        root = ref.mth(0, n)
        assert reader.root(n) == root
        proof = reader.inclusion_proof(index, n)
        assert proof == ref.path(index, 0, n)
        merkle.verify_inclusion(index, n, leaves[index], proof, root)
        proof = reader.consistency_proof(m, n)
        assert proof == (ref.proof(m, n) if m < n else [])
        merkle.verify_consistency(m, n, proof, ref.mth(0, m), root)


# --- tiles, the store and resuming ---------------------------------------------------------------


def test_tiles_of_a_70000_leaf_tree_match_the_spec_example():
    """Size 70,000: 273 full level-0 tiles, a level-0 partial of 112, one full level-1 tile, a level-1
    partial of 17 and a level-2 partial of 1 (tlog-tiles.md), each hash the MTH the spec defines."""
    leaves = _leaves(70_000)
    _, store = _stored_tree(leaves)
    widths = {key: len(tile) // 32 for key, tile in store.tiles.items()}
    assert sum(1 for (level, _), w in widths.items() if level == 0 and w == 256) == 273
    assert widths[(0, 273)] == 112
    assert widths[(1, 0)] == 256 and widths[(1, 1)] == 17 and widths[(2, 0)] == 1
    assert len(widths) == 273 + 1 + 1 + 1 + 1
    ref = ReferenceTree(leaves)
    tile = store.tiles[(1, 1)]
    for i in range(17):
        start = (256 + i) * 256
        assert tile[i * 32:(i + 1) * 32] == ref.mth(start, start + 256)
    assert store.tiles[(2, 0)] == ref.mth(0, 65536)


def test_tile_paths():
    """Tile resource names follow tlog-tiles: x-prefixed 3-digit groups and a .p/W suffix."""
    assert merkle.tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert merkle.tile_path(1, 5, 17) == "tile/1/005.p/17"
    assert merkle.tile_path(2, 0, 1) == "tile/2/000.p/1"


def test_store_refuses_a_rewrite():
    """A put that does not extend the stored tile is refused: the tree is append-only (a narrower
    put is refused too: it means a writer resumed below what was already stored)."""
    store = merkle.MemoryHashStore()
    store.put_tile(0, 0, bytes(64))
    store.put_tile(0, 0, bytes(96))
    with pytest.raises(TreeError, match="does not extend"):
        store.put_tile(0, 0, b"\x01" * 96)
    with pytest.raises(TreeError, match="does not extend"):
        store.put_tile(0, 0, bytes(32))
    with pytest.raises(TreeError, match="not 1..256 hashes"):
        store.put_tile(0, 1, bytes(33))


def test_resume_from_store_continues_the_same_tree():
    """A tree resumed at a flushed size has the same root and grows exactly as if never stopped."""
    leaves = _leaves(70_000)
    store = merkle.MemoryHashStore()
    tree = merkle.MerkleTree(store)
    for cut in (1, 255, 256, 257, 65535, 65536, 65537, 69_999):
        tree.extend(leaves[tree.size:cut])
        tree.flush()
        probe = merkle.MemoryHashStore()
        probe.tiles = dict(store.tiles)  # the probe grows on a copy: the store is append-only
        resumed = merkle.MerkleTree(probe, size=cut)
        assert resumed.root() == tree.root()
        resumed.extend(leaves[cut:cut + 300])
        assert resumed.root() == merkle.root_of(leaves[:cut + 300])
        tree = merkle.MerkleTree(store, size=cut)


def test_resume_needs_the_tiles():
    """Resuming at a size the store never saw names the missing tile."""
    store = merkle.MemoryHashStore()
    tree = merkle.MerkleTree(store)
    tree.extend(_leaves(10))
    tree.flush()
    with pytest.raises(TreeError, match="tile 0/0 has 10 hashes, needs 11"):
        merkle.MerkleTree(store, size=11)


def test_proof_beyond_the_stored_size_names_the_tile():
    """A proof for a size the store does not cover is a TreeError naming the tile, not a wrong proof."""
    store = merkle.MemoryHashStore()
    tree = merkle.MerkleTree(store)
    tree.extend(_leaves(10))
    tree.flush()
    tree.extend(_leaves(20)[10:])  # not flushed
    reader = merkle.TreeReader(store)
    with pytest.raises(TreeError, match="tile 0/0 holds 10 hashes"):
        reader.inclusion_proof(3, 20)
    with pytest.raises(TreeError):
        reader.inclusion_proof(10, 10)


def test_leaf_hash_must_be_32_bytes():
    """Appending something that is not a 32-byte hash fails and leaves the tree unchanged."""
    tree = merkle.MerkleTree()
    tree.extend(_leaves(3))
    with pytest.raises(HashSizeError, match="leaf hash 4 is 31 bytes"):
        tree.extend([_leaves(4)[3], b"x" * 31])
    assert tree.size == 4 and tree.root() == merkle.root_of(_leaves(4))


def test_compare_tiles_names_changed_inserted_and_deleted_leaves():
    """Rebuilding from leaves finds nothing on an honest store, and names the first differing leaf
    range for a changed, an inserted or a deleted leaf, or extra stored leaves."""
    leaves = _leaves(1000)
    _, store = _stored_tree(leaves)
    assert merkle.compare_tiles(store, leaves) == []
    changed = list(leaves)
    changed[300] = merkle.leaf_hash(b"changed")
    assert merkle.compare_tiles(store, changed)[0] == \
        "tile 0/1 differs at hash 44: leaves [300, 301) do not hash to what is stored"
    inserted = leaves[:700] + [merkle.leaf_hash(b"new")] + leaves[700:]
    assert merkle.compare_tiles(store, inserted)[0].startswith("tile 0/2 differs at hash 188: leaves [700, 701)")
    deleted = leaves[:10] + leaves[11:]
    assert merkle.compare_tiles(store, deleted)[0].startswith("tile 0/0 differs at hash 10: leaves [10, 11)")
    problems = merkle.compare_tiles(store, leaves[:999])
    assert problems == ["tile 0/3 holds 232 hashes, more than the 999 leaves give (231)"]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=0, max_value=140_000))
def test_compact_range_is_one_perfect_subtree_per_set_bit(size):
    """The appender's compact range has a subtree of height b for each set bit b of the size, left to
    right from the highest, each the root of the leaves it covers."""
    leaves = _leaves(size)
    tree = merkle.MerkleTree()
    tree.extend(leaves)
    subtrees = tree.compact_range()
    assert [h for h, _ in subtrees] == [b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]
    start = 0
    for height, digest in subtrees[:3] + subtrees[-3:]:
        start = sum(1 << h for h, _ in subtrees[:subtrees.index((height, digest))])
        assert digest == merkle.root_of(leaves[start:start + (1 << height)])
