"""Pure hashing for the ledger: leaf, gap and chain hashes, byte for byte.

Everything here depends only on what Kafka holds, so replaying the same
topics into an empty ledger reproduces identical hashes.

Encoding (integers big-endian; strings UTF-8)::

    bytes(x) = u32 len(x) ‖ x          a null is FF FF FF FF (distinct from empty)

    leaf   = SHA-256( 00 ‖ bytes(topic) ‖ i32 partition ‖ i64 offset ‖ i64 timestamp_ms
                      ‖ bytes(key) ‖ u32 header_count ‖ (bytes(name) ‖ bytes(value))*
                      ‖ bytes(value) )
    gap    = SHA-256( 02 ‖ bytes(topic) ‖ i32 partition ‖ i64 first_missing ‖ i64 next_present )
    chain0 = SHA-256( 01 ‖ 32 zero bytes ‖ leaf0 )          (prev = GENESIS)
    chainN = SHA-256( 01 ‖ chainN-1 ‖ leafN )

Headers are hashed in broker order. There is one chain per topic-partition,
in offset order; a jump in offsets (transaction markers, compaction, or a first
record above offset 0) is an explicit gap entry covering
``[first_missing, next_present)`` whose leaf is the gap hash.

Preconditions: ``partition`` fits an i32, offsets and timestamps fit an i64
(Kafka's own types); every hash is 32 bytes.
"""

from __future__ import annotations

from hashlib import sha256
from struct import Struct

from ledger.wire.record import Record

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
GAP_PREFIX = b"\x02"
GENESIS = bytes(32)  # the "previous" hash of the first entry of every chain
NULL_LENGTH = b"\xff\xff\xff\xff"

_U32 = Struct(">I")
_PART_OFFSET_TS = Struct(">iqq")
_PART_RANGE = _PART_OFFSET_TS  # i32 partition ‖ i64 first_missing ‖ i64 next_present


def length_prefixed(data: bytes | None) -> bytes:
    """``u32 len ‖ data``, or ``FF FF FF FF`` for a null."""
    if data is None:
        return NULL_LENGTH
    return _U32.pack(len(data)) + data


def leaf_bytes(record: Record) -> bytes:
    """The exact bytes hashed into a record's leaf (useful to debug a mismatch)."""
    parts = [
        LEAF_PREFIX,
        length_prefixed(record.topic.encode("utf-8")),
        _PART_OFFSET_TS.pack(record.partition, record.offset, record.timestamp),
        length_prefixed(record.key),
        _U32.pack(len(record.headers)),
    ]
    for name, value in record.headers:
        parts.append(length_prefixed(name.encode("utf-8")))
        parts.append(length_prefixed(value))
    parts.append(length_prefixed(record.value))
    return b"".join(parts)


def leaf_hash(record: Record) -> bytes:
    """SHA-256 leaf of one Kafka record (see the module docstring)."""
    return sha256(leaf_bytes(record)).digest()


def gap_hash(topic: str, partition: int, first_missing: int, next_present: int) -> bytes:
    """SHA-256 leaf of a gap covering offsets ``[first_missing, next_present)``."""
    if not first_missing < next_present:
        raise ValueError(f"empty gap: first_missing={first_missing} next_present={next_present}")
    return sha256(
        GAP_PREFIX
        + length_prefixed(topic.encode("utf-8"))
        + _PART_RANGE.pack(partition, first_missing, next_present)
    ).digest()


def link(prev: bytes | None, leaf: bytes) -> bytes:
    """Chain hash after ``leaf``; ``prev`` is the previous chain hash (None = GENESIS)."""
    return sha256(NODE_PREFIX + (GENESIS if prev is None else prev) + leaf).digest()
