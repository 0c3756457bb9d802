"""What the live findings service publishes: Finding and FindingRetracted, Avro single-object encoded.

The schemas live in ``ledger/wire/findings_schemas/<Type>/vN.avsc``, apart
from the event schemas (``schemas/``), which every reader scans as event
types: a finding is not an event, the writer never stores one. The framing
is the events' (docs/architecture.md, "Wire format")::

    C3 01 | CRC-64-AVRO of the writer schema's Parsing Canonical Form, 8 bytes LE | Avro binary

    codec = FindingsCodec.load()
    data = codec.encode("Finding", {"finding_id": ..., "judged_at": datetime, ...})
    message_type, message = codec.decode(data)      # ("Finding", {...}) with judged_at a UTC datetime

Messages are plain dicts with the schema's field names (the domain's
Finding and Retraction never see Avro). fastavro encodes and decodes;
tests/unit/test_findings_codec.py checks it byte for byte against the
project's own Avro writer and reader (``avro_binary``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from ledger.errors import DecodeError, SchemaError

from .codec import HEADER_SIZE, MAGIC, schema_fingerprint

FINDINGS_SCHEMAS = Path(__file__).resolve().parent / "findings_schemas"
MESSAGE_TYPES = ("Finding", "FindingRetracted")
NAMESPACE = "ledger.findings"
_VERSION_FILE = re.compile(r"v([1-9][0-9]*)\.avsc")


@dataclass(frozen=True, eq=False)
class MessageSchema:
    message_type: str
    version: int
    path: Path
    source: dict
    parsed: dict
    fingerprint: bytes


def _load(directory: Path) -> dict[str, list[MessageSchema]]:
    if not directory.is_dir():
        raise SchemaError(f"findings schema directory {directory} does not exist")
    found: dict[str, list[MessageSchema]] = {}
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
        if sub.name not in MESSAGE_TYPES:
            raise SchemaError(f"{sub}: not a findings message type; expected one of {', '.join(MESSAGE_TYPES)}")
        versions = []
        for path in sorted(sub.glob("*.avsc")):
            match = _VERSION_FILE.fullmatch(path.name)
            if not match:
                raise SchemaError(f"{path}: schema files must be named v1.avsc, v2.avsc, ...")
            try:
                source = json.loads(path.read_text(encoding="utf-8"))
                parsed = parse_schema(source)
                canonical = to_parsing_canonical_form(parsed)
            except Exception as err:  # json and fastavro raise several types for a bad file
                raise SchemaError(f"{path}: not a valid Avro schema: {err}") from err
            if source.get("name") != sub.name or source.get("namespace") != NAMESPACE:
                raise SchemaError(f"{path}: record name must be {NAMESPACE}.{sub.name}")
            versions.append(MessageSchema(sub.name, int(match.group(1)), path, source, parsed,
                                          schema_fingerprint(canonical)))
        found[sub.name] = sorted(versions, key=lambda s: s.version)
    missing = [t for t in MESSAGE_TYPES if not found.get(t)]
    if missing:
        raise SchemaError(f"{directory}: no schema version for {', '.join(missing)}")
    return found


class FindingsCodec:
    """Encode with each type's newest schema; decode any version by its fingerprint."""

    def __init__(self, versions: dict[str, list[MessageSchema]]):
        self.versions = versions
        self._by_fingerprint = {s.fingerprint: s for vs in versions.values() for s in vs}

    @classmethod
    def load(cls, directory: str | Path | None = None) -> FindingsCodec:
        return cls(_load(Path(directory) if directory is not None else FINDINGS_SCHEMAS))

    def newest(self, message_type: str) -> MessageSchema:
        if message_type not in self.versions:
            raise SchemaError(f"unknown findings message type {message_type!r}; expected one of "
                              f"{', '.join(MESSAGE_TYPES)}")
        return self.versions[message_type][-1]

    def encode(self, message_type: str, message: dict) -> bytes:
        """``C3 01`` ‖ fingerprint ‖ body; a message that does not fit the schema raises SchemaError naming it."""
        schema = self.newest(message_type)
        out = BytesIO()
        out.write(MAGIC + schema.fingerprint)
        try:
            schemaless_writer(out, schema.parsed, message, strict=True)
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise SchemaError(f"{message_type} does not fit {schema.path.parent.name}/v{schema.version}: {err}") \
                from err
        return out.getvalue()

    def decode(self, data: bytes) -> tuple[str, dict]:
        """``(message_type, message)``; DecodeError (with the raw bytes) for anything else."""
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            raise DecodeError("not an Avro single-object encoded message (no C3 01 header)", raw=data)
        schema = self._by_fingerprint.get(bytes(data[2:HEADER_SIZE]))
        if schema is None:
            raise DecodeError(f"no findings schema has fingerprint {bytes(data[2:HEADER_SIZE]).hex()}", raw=data)
        body = BytesIO(data[HEADER_SIZE:])
        try:
            message = schemaless_reader(body, schema.parsed, None)
        except Exception as err:  # fastavro raises EOFError, ValueError, IndexError... for bad bytes
            raise DecodeError(f"{schema.message_type}: unreadable body: {err}", raw=data) from err
        if body.read(1):
            raise DecodeError(f"{schema.message_type}: bytes left after the record", raw=data)
        return schema.message_type, message


__all__ = ["FINDINGS_SCHEMAS", "MESSAGE_TYPES", "FindingsCodec", "MessageSchema"]
