"""The hash encoding, byte for byte, cross-checked against a naive reference."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.tlog.chain import GENESIS, gap_hash, leaf_bytes, leaf_hash, link
from ledger.wire.record import Record


# -- a deliberately naive reference, written from docs/architecture.md ------------------------
def ref_bytes(x):
    if x is None:
        return b"\xff\xff\xff\xff"
    return len(x).to_bytes(4, "big") + x


def ref_leaf(topic, partition, offset, timestamp, key, headers, value):
    data = bytearray(b"\x00")
    data += ref_bytes(topic.encode())
    data += partition.to_bytes(4, "big", signed=True)
    data += offset.to_bytes(8, "big", signed=True)
    data += timestamp.to_bytes(8, "big", signed=True)
    data += ref_bytes(key)
    data += len(headers).to_bytes(4, "big")
    for name, val in headers:
        data += ref_bytes(name.encode())
        data += ref_bytes(val)
    data += ref_bytes(value)
    return hashlib.sha256(bytes(data)).digest()


def ref_gap(topic, partition, first_missing, next_present):
    data = b"\x02" + ref_bytes(topic.encode()) + partition.to_bytes(4, "big", signed=True)
    data += first_missing.to_bytes(8, "big", signed=True) + next_present.to_bytes(8, "big", signed=True)
    return hashlib.sha256(data).digest()


def ref_chain(leaves):
    prev = bytes(32)
    out = []
    for leaf in leaves:
        prev = hashlib.sha256(b"\x01" + prev + leaf).digest()
        out.append(prev)
    return out


# -- strategies -------------------------------------------------------------------------------
maybe_bytes = st.none() | st.binary(max_size=40)
records = st.builds(
    Record,
    topic=st.text(min_size=1, max_size=20),
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
    timestamp=st.integers(-(2**63), 2**63 - 1),
    key=maybe_bytes,
    value=maybe_bytes,
    headers=st.lists(st.tuples(st.text(max_size=10), maybe_bytes), max_size=4).map(tuple),
)


def test_known_answer():
    """A fixed record hashes to a fixed leaf, so the encoding cannot drift unnoticed."""
    record = Record("ledger.access", 2, 41, 1767225600000, b"cust-1", b"\xc3\x01value",
                    (("event_type", b"DataAccessed"), ("n", None)))
    expected_bytes = (
        b"\x00" + b"\x00\x00\x00\x0dledger.access" + b"\x00\x00\x00\x02" + (41).to_bytes(8, "big")
        + (1767225600000).to_bytes(8, "big") + b"\x00\x00\x00\x06cust-1" + b"\x00\x00\x00\x02"
        + b"\x00\x00\x00\x0aevent_type" + b"\x00\x00\x00\x0cDataAccessed"
        + b"\x00\x00\x00\x01n" + b"\xff\xff\xff\xff" + b"\x00\x00\x00\x07\xc3\x01value"
    )
    assert leaf_bytes(record) == expected_bytes
    assert leaf_hash(record).hex() == hashlib.sha256(expected_bytes).hexdigest()


@given(records)
def test_leaf_matches_reference(record):
    """leaf_hash equals the naive reference implementation for any record."""
    assert leaf_hash(record) == ref_leaf(record.topic, record.partition, record.offset, record.timestamp,
                                         record.key, record.headers, record.value)


@given(records, st.data())
def test_any_field_change_changes_the_leaf(record, data):
    """Changing any one field (including header order or a null/empty swap) changes the leaf."""
    field = data.draw(st.sampled_from(["topic", "partition", "offset", "timestamp", "key", "value", "headers"]))
    new = data.draw(records.map(lambda r: getattr(r, field)).filter(lambda v: v != getattr(record, field)))
    changed = Record(**{**{f: getattr(record, f) for f in Record.__slots__}, field: new})
    assert leaf_hash(changed) != leaf_hash(record)


def test_null_and_empty_differ():
    """A null key, value or header value hashes differently from an empty one."""
    base = dict(topic="t", partition=0, offset=0, timestamp=0, headers=())
    assert leaf_hash(Record(**base, key=None, value=b"v")) != leaf_hash(Record(**base, key=b"", value=b"v"))
    assert leaf_hash(Record(**base, key=b"k", value=None)) != leaf_hash(Record(**base, key=b"k", value=b""))
    assert leaf_hash(Record(**{**base, "headers": (("h", None),)}, key=None, value=None)) != leaf_hash(
        Record(**{**base, "headers": (("h", b""),)}, key=None, value=None))


def test_header_boundaries_are_unambiguous():
    """Moving bytes between a header name and value (or the key) changes the leaf: lengths are hashed."""
    base = dict(topic="t", partition=0, offset=0, timestamp=0, key=None, value=None)
    assert leaf_hash(Record(**base, headers=(("ab", b"c"),))) != leaf_hash(Record(**base, headers=(("a", b"bc"),)))


@given(st.text(min_size=1, max_size=20), st.integers(0, 2**31 - 1), st.integers(0, 2**62), st.integers(1, 2**62 - 1))
def test_gap_matches_reference(topic, partition, first, length):
    """gap_hash equals the reference, and a gap is never confused with a record leaf."""
    assert gap_hash(topic, partition, first, first + length) == ref_gap(topic, partition, first, first + length)


def test_empty_gap_is_refused():
    """A gap must cover at least one offset."""
    with pytest.raises(ValueError):
        gap_hash("t", 0, 5, 5)


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=8))
def test_chain_matches_reference(leaves):
    """Linking leaves one by one from GENESIS gives the reference chain."""
    prev = None
    chain = []
    for leaf in leaves:
        prev = link(prev, leaf)
        chain.append(prev)
    assert chain == ref_chain(leaves)
    assert link(None, leaves[0]) == link(GENESIS, leaves[0])


@given(st.lists(st.integers(0, 255), min_size=2, max_size=6, unique=True), st.data())
def test_chain_order_matters(seeds, data):
    """Any reordering of distinct leaves gives a different chain head."""
    leaves = [hashlib.sha256(bytes([s])).digest() for s in seeds]
    shuffled = data.draw(st.permutations(leaves).filter(lambda p: p != leaves))
    assert ref_chain(leaves)[-1] != ref_chain(shuffled)[-1]
    head = None
    for leaf in shuffled:
        head = link(head, leaf)
    assert head == ref_chain(shuffled)[-1]
