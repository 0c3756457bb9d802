"""What a record says on its own: the part of ingest that needs no ledger state.

    part = derive(record, codec, limits)

A record's leaf hash covers its bytes only (never its status), and whether it
decodes, what it decodes to, its readable JSON, its time flag and its index
keys depend on the record, the installed schemas and the ledger's fixed time
limits alone. That is most of ingest's CPU (decode and validation, JSON,
SHA-256), so it can run ahead, in another process (readahead.py), while the
stateful rest (tips, gaps, seq, chain links, dedupe, the commit) stays with
the one writer (pipeline.py). Both paths call :func:`derive`: a record
derived elsewhere is ingested exactly as one derived in line.

A part is a plain tuple (``marshal`` carries it between processes):

* decoded: ``(leaf, headers_json, fingerprint, None, event_id, type,
  occurred_at, json, time_flag, index_row)``, the index row with seq 0;
* rejected: ``(leaf, headers_json, fingerprint, reason, peeked_event_id,
  header_type)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.errors import DecodeError, LedgerError, ValidationError
from ledger.model.timecheck import time_flag
from ledger.store.index import entry_columns, index_row
from ledger.store.schema import headers_to_json
from ledger.tlog.chain import leaf_hash
from ledger.wire.record import EVENT_TYPE_HEADER, Record

from .routing import routing_problem

_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Positions in a part (see the module doc).
LEAF, HEADERS, FINGERPRINT, REASON = 0, 1, 2, 3
EVENT_ID, TYPE, OCCURRED_AT, JSON, TIME_FLAG, INDEX_ROW = 4, 5, 6, 7, 8, 9  # decoded
PEEKED_ID, HEADER_TYPE = 4, 5  # rejected


@dataclass(frozen=True, slots=True)
class DerivedRecord(Record):
    """A record fetched together with its :func:`derive` part (by the read-ahead process)."""

    derived: tuple = ()


def derive(rec: Record, codec, limits) -> tuple:
    """The part of ``rec``: everything ingest derives from the record alone (see the module doc)."""
    leaf = leaf_hash(rec)
    value = rec.value
    event, reason = decode_value(codec, value)
    if event is not None and (reason := routing_problem(rec, event)) is not None:
        event = None  # misrouted: kept as rejected, never an event (routing.py)
    headers = headers_to_json(rec.headers)
    fingerprint = None if value is None else codec.fingerprint(value)
    if event is None:
        return leaf, headers, fingerprint, reason, peek_event_id(value), header_type(rec)
    cols = entry_columns(event)
    occurred_at = cols["occurred_at"]
    return (leaf, headers, fingerprint, None, cols["event_id"], cols["type"], occurred_at, cols["json"],
            time_flag(occurred_at, rec.timestamp, limits), index_row(0, event, occurred_at))


def decode_value(codec, value: bytes | None) -> tuple[dict | None, str | None]:
    """``(event, None)`` if the value decodes and validates, else ``(None, reason)``.

    The event is read with its writer's own schema (``Codec.decode_as_written``), so
    the stored readable form does not depend on the schema versions installed at
    ingest time: a replay with newer versions stores the same text.
    """
    try:
        return codec.decode_as_written(value), None
    except DecodeError as err:
        return None, err.reason
    except ValidationError as err:
        return None, f"invalid: {err}"
    except LedgerError as err:  # e.g. a schema problem found while decoding
        return None, f"undecodable: {err}"


def peek_event_id(value: bytes | None) -> str | None:
    """The event_id of an undecodable record when it can still be read.

    Every schema starts with ``event_id`` (a 36-character UUID string): in the
    single-object encoding that is byte 10 = 0x48 (zigzag length 36) and the
    UUID text after it.
    """
    if value is None or len(value) < 47 or value[:2] != b"\xc3\x01" or value[10] != 0x48:
        return None
    text = bytes(value[11:47])
    return text.decode("ascii") if _UUID.fullmatch(text) else None


def header_type(record: Record) -> str | None:
    """The ``event_type`` header, when present and readable."""
    for name, value in record.headers:
        if name == EVENT_TYPE_HEADER and value is not None:
            try:
                return value.decode("utf-8")[:200]
            except UnicodeDecodeError:
                return None
    return None
