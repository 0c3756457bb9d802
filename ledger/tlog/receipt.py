"""Receipts: offline proof that one ledger entry is in a signed, witnessed log (c2sp.org/tlog-proof@v1).

A receipt is::

    c2sp.org/tlog-proof@v1
    extra <base64 of the entry's leaf data>
    index <position of the entry in its topic-partition's tree>
    <inclusion proof, one base64 hash per line, the leaf's sibling first>
    <empty line>
    <the signed checkpoint, verbatim, with its cosignatures>

The ``extra`` data is the leaf encoding of ledger/tlog/chain.py after its ``00`` prefix::

    bytes(topic) ‖ i32 partition ‖ i64 offset ‖ i64 timestamp_ms ‖ bytes(key)
    ‖ u32 header_count ‖ (bytes(name) ‖ bytes(value))* ‖ bytes(value)       bytes(x) = u32 len ‖ x

so the verifier computes the leaf hash itself, ``SHA-256(00 ‖ extra)``, and only then trusts what
the record says. :func:`verify_receipt` runs every check offline (no ledger file, no broker) and
returns :class:`ReceiptFacts`, or raises :class:`~.errors.ReceiptError` whose ``step`` names the
check that failed: ``format``, ``signature``, ``cosignature``, ``inclusion`` or ``record``.

This module imports neither the store nor Kafka; the record's value is decoded with the codec
(the schemas directory), loaded only when a receipt gets that far.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import LedgerError
from .checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint, parse_size
from .errors import FormatError, ProofError, ReceiptError, SignatureError
from .merkle import HASH_SIZE, leaf_hash, verify_inclusion
from .note import COSIGNATURE_V1, ED25519, Verifier, b64, b64decode_strict, parse_verifier_key, verified_signatures

HEADER = "c2sp.org/tlog-proof@v1"
WHAT = "receipt"
MAX_PROOF_LINES = 63  # a tree of 2^63 leaves needs no more
MAX_RECEIPT_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Receipt:
    """A parsed receipt: extra data, index, inclusion proof and the checkpoint note text."""

    extra: bytes | None
    index: int
    proof: tuple[bytes, ...]
    checkpoint: str  # the signed checkpoint note, verbatim
    checkpoint_line: int = 0  # its first line's number in the receipt (for error messages)

    def format(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64(self.extra)}")
        lines.append(f"index {self.index}")
        lines += [b64(h) for h in self.proof]
        return "\n".join(lines) + "\n\n" + self.checkpoint


def make_receipt(extra: bytes | None, index: int, proof, signed_checkpoint: str) -> str:
    """The receipt text for an entry (what ``ledger prove`` prints)."""
    return Receipt(extra, index, tuple(proof), signed_checkpoint).format()


def parse_receipt(text: bytes | str) -> Receipt:
    """Read a receipt strictly; FormatError names the line and the problem."""
    if isinstance(text, bytes):
        if len(text) > MAX_RECEIPT_BYTES:
            raise FormatError(WHAT, f"{len(text)} bytes is above the {MAX_RECEIPT_BYTES}-byte limit")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise FormatError(WHAT, f"not valid UTF-8 (byte {err.start})") from None
    end = text.find("\n\n")
    if end < 0:
        raise FormatError(WHAT, "no empty line between the proof and the checkpoint")
    lines = text[:end].split("\n")
    if lines[0] != HEADER:
        raise FormatError(WHAT, f"first line must be {HEADER!r}, got {lines[0][:60]!r}", 1)
    number = 2
    extra = None
    if len(lines) > 1 and lines[1].startswith("extra"):
        if not lines[1].startswith("extra "):
            raise FormatError(WHAT, "the extra line must be 'extra <base64>'", 2)
        extra = b64decode_strict(lines[1][6:], f"{WHAT} extra", 2)
        number = 3
    if len(lines) < number or not lines[number - 1].startswith("index "):
        raise FormatError(WHAT, "expected 'index <decimal>'", number)
    index = parse_size(lines[number - 1][6:], f"{WHAT} index", number)
    proof_lines = lines[number:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise FormatError(WHAT, f"{len(proof_lines)} proof lines is more than {MAX_PROOF_LINES}", number + 1)
    proof = []
    for offset, line in enumerate(proof_lines, number + 1):
        raw = b64decode_strict(line, f"{WHAT} proof hash", offset)
        if len(raw) != HASH_SIZE:
            raise FormatError(f"{WHAT} proof hash", f"is {len(raw)} bytes, not 32", offset)
        proof.append(raw)
    checkpoint_line = len(lines) + 2
    return Receipt(extra, index, tuple(proof), text[end + 2:], checkpoint_line)


# --- the record in the extra data ----------------------------------------------------------------


@dataclass(frozen=True)
class LeafRecord:
    """The Kafka record a leaf commits to (ledger/tlog/chain.py's leaf encoding)."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # ms since the epoch, the Kafka record timestamp
    key: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    value: bytes | None


_NULL = 0xFFFFFFFF


def decode_leaf_data(data: bytes) -> LeafRecord:
    """Split leaf data (the leaf encoding after its 00 prefix) into the record's fields."""
    pos = 0

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise FormatError("leaf data", f"ends inside {what} (byte {pos}, needs {n} more)")
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    def length_prefixed(what: str, nullable: bool = True) -> bytes | None:
        (size,) = struct.unpack(">I", take(4, f"the length of {what}"))
        if size == _NULL:
            if not nullable:
                raise FormatError("leaf data", f"{what} is null")
            return None
        return take(size, what)

    def text(what: str) -> str:
        raw = length_prefixed(what, nullable=False)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("leaf data", f"{what} is not UTF-8") from None

    topic = text("the topic")
    partition, offset, timestamp = struct.unpack(">iqq", take(20, "partition, offset and timestamp"))
    key = length_prefixed("the key")
    (count,) = struct.unpack(">I", take(4, "the header count"))
    if count > len(data):  # each header takes at least 8 bytes: a cheap bound before looping
        raise FormatError("leaf data", f"header count {count} exceeds the data")
    headers = tuple((text(f"header {i} name"), length_prefixed(f"header {i} value")) for i in range(count))
    value = length_prefixed("the value")
    if pos != len(data):
        raise FormatError("leaf data", f"{len(data) - pos} trailing byte(s) after the value")
    return LeafRecord(topic, partition, offset, timestamp, key, headers, value)


# --- verification --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptFacts:
    """What a verified receipt proves the log holds, and what that entry says."""

    origin: str
    index: int
    tree_size: int
    root: bytes
    witnesses: tuple[str, ...]  # names of the witnesses whose cosignature verified
    record: LeafRecord
    event: dict  # the decoded event (schemas' field names plus "type")

    @property
    def recorded_at(self) -> datetime:
        return datetime.fromtimestamp(self.record.timestamp / 1000, tz=timezone.utc)

    def summary(self) -> dict:
        """Type, time, actor, subjects and purpose: what the entry says, for people."""
        event = self.event
        occurred = event.get("occurred_at")
        return {
            "type": event.get("type"),
            "event_id": event.get("event_id"),
            "occurred_at": occurred.isoformat() if isinstance(occurred, datetime) else occurred,
            "recorded_at": self.recorded_at.isoformat(),
            "actor": event.get("actor"),
            "subject_ids": event.get("subject_ids"),
            "purpose": event.get("purpose"),
            "log": {"origin": self.origin, "index": self.index, "tree_size": self.tree_size,
                    "topic": self.record.topic, "partition": self.record.partition,
                    "offset": self.record.offset},
            "witnesses": list(self.witnesses),
        }


def _verifiers(keys, sig_type: int, role: str) -> list[Verifier]:
    out = []
    for key in keys:
        verifier = parse_verifier_key(key) if isinstance(key, str) else key
        if verifier.sig_type != sig_type:
            raise ReceiptError("format", f"{role} key {verifier.name}+{verifier.key_id:08x} has signature type "
                               f"{verifier.sig_type:02x}; a {role} key must have type {sig_type:02x}")
        out.append(verifier)
    return out


def verify_receipt(text: bytes | str, log_vkeys, witness_vkeys=(), min_witnesses: int = 0,
                   *, codec=None) -> ReceiptFacts:
    """Check a receipt offline and return what the entry says; ReceiptError names what failed.

    ``log_vkeys`` / ``witness_vkeys`` are verifier key strings (or parsed Verifiers): log keys of
    type 0x01 whose name is the checkpoint's origin or a '/'-prefix of it, witness keys of type
    0x04. Checks, in order: the receipt's format; the checkpoint's log signature; every
    cosignature by a known witness, and at least ``min_witnesses`` distinct ones; the inclusion of
    SHA-256(00 ‖ extra) at ``index`` under the checkpoint's root; that the leaf data is a record of
    the checkpoint's topic-partition and that its value decodes with the schemas (``codec``,
    default the repository's schemas/).
    """
    try:
        logs = _verifiers(log_vkeys, ED25519, "log")
        witnesses = _verifiers(witness_vkeys, COSIGNATURE_V1, "witness")
    except FormatError as err:
        raise ReceiptError("format", f"bad verifier key: {err}") from None
    if not logs:
        raise ReceiptError("format", "no log verifier key given")
    if min_witnesses > len({(w.name, w.key_id) for w in witnesses}):
        raise ReceiptError("cosignature", f"{min_witnesses} witness cosignature(s) required but only "
                           f"{len(witnesses)} witness key(s) given")
    try:
        receipt = parse_receipt(text)
    except FormatError as err:
        raise ReceiptError("format", str(err)) from None
    signed = _open(receipt, logs)
    checkpoint = signed.checkpoint
    cosigners = _cosigners(signed, witnesses, min_witnesses)
    if receipt.extra is None:
        raise ReceiptError("record", "the receipt has no extra line: the entry's leaf data is missing")
    try:
        verify_inclusion(receipt.index, checkpoint.size, leaf_hash(receipt.extra), receipt.proof, checkpoint.root)
    except ProofError as err:
        raise ReceiptError("inclusion", f"entry {receipt.index} is not proved in {checkpoint.origin} at size "
                           f"{checkpoint.size} ({err.reason}): {err}") from None
    record, event = _record(receipt.extra, checkpoint, codec)
    return ReceiptFacts(checkpoint.origin, receipt.index, checkpoint.size, checkpoint.root, cosigners, record, event)


def _open(receipt: Receipt, logs: list[Verifier]) -> SignedCheckpoint:
    try:
        return open_checkpoint(receipt.checkpoint, logs, first_line=receipt.checkpoint_line)
    except FormatError as err:
        raise ReceiptError("format", str(err)) from None
    except SignatureError as err:
        raise ReceiptError("signature", str(err)) from None


def _cosigners(signed: SignedCheckpoint, witnesses: list[Verifier], minimum: int) -> tuple[str, ...]:
    try:
        verified = verified_signatures(signed.note, witnesses)
    except SignatureError as err:
        raise ReceiptError("cosignature", str(err)) from None
    names = tuple(sorted({v.verifier.name for v in verified}))
    if len({(v.verifier.name, v.verifier.key_id) for v in verified}) < minimum:
        raise ReceiptError("cosignature", f"{len(names)} valid witness cosignature(s) "
                           f"({', '.join(names) or 'none'}), {minimum} required")
    return names


def _record(extra: bytes, checkpoint: Checkpoint, codec) -> tuple[LeafRecord, dict]:
    try:
        record = decode_leaf_data(extra)
    except FormatError as err:
        raise ReceiptError("record", str(err)) from None
    suffix = f"/{record.topic}/{record.partition}"
    if not checkpoint.origin.endswith(suffix):
        raise ReceiptError("record", f"the entry is from {record.topic}[{record.partition}] but the checkpoint "
                           f"is for {checkpoint.origin!r}")
    if codec is None:
        from ledger.wire.codec import default_codec

        codec = default_codec()
    try:
        event = codec.decode(record.value)
    except LedgerError as err:  # DecodeError, or SchemaError for schemas/ unfit to read it
        raise ReceiptError("record", f"{record.topic}[{record.partition}]@{record.offset} does not decode "
                           f"with the schemas: {err}") from None
    return record, event
