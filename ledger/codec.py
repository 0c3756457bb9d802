"""Schema loading, fingerprints and Avro single-object encode/decode.

Wire format (Avro specification, "Single object encoding")::

    C3 01 | CRC-64-AVRO of the writer schema's Parsing Canonical Form, 8 bytes LE | Avro binary

The fingerprint alone selects the writer schema among every version in
``schemas/``; the record is read with the newest version of its event type
(Avro schema resolution fills fields the writer did not know from their
defaults) and then checked with :func:`ledger.events.validate` rules.

    codec = default_codec()
    data = codec.encode(events.validate(obj))
    event = codec.decode(data)
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path

from fastavro import parse_schema, schemaless_reader
from fastavro.schema import to_parsing_canonical_form

from . import events
from .errors import DecodeError, SchemaError, ValidationError

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10
MAX_RECORD_BYTES = 1 << 20

# CRC-64-AVRO (Rabin fingerprint) as the Avro specification defines it.
CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_CRC64_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The 64-bit Rabin fingerprint of ``data`` (the spec's ``fingerprint64``)."""
    fp = CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


def schema_fingerprint(canonical_form: str) -> bytes:
    """The 8 fingerprint bytes as carried on the wire (little-endian)."""
    return crc64_avro(canonical_form.encode("utf-8")).to_bytes(8, "little")


# --- Avro binary encoder -----------------------------------------------------------
# fastavro's schemaless_writer costs ~13 µs for a typical DataAccessed (union
# branch matching dominates); these closures, compiled once per schema, write
# the same bytes in ~5 µs. tests/test_codec.py checks them byte for byte
# against fastavro. Input is a validated event, so no type checks here.

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _write_long(n: int, out: bytearray) -> None:
    n = (n << 1) ^ (n >> 63)  # zigzag
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _long_bytes(n: int) -> bytes:
    out = bytearray()
    _write_long(n, out)
    return bytes(out)


def _write_string(s: str, out: bytearray) -> None:
    b = s.encode("utf-8")
    if len(b) < 64:
        out.append(len(b) << 1)
    else:
        _write_long(len(b), out)
    out += b


def _write_bytes(b: bytes, out: bytearray) -> None:
    _write_long(len(b), out)
    out += b


def _write_boolean(v: bool, out: bytearray) -> None:
    out.append(1 if v else 0)


def _write_timestamp_micros(v: datetime, out: bytearray) -> None:
    d = v - _EPOCH
    _write_long((d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds, out)


_PRIMITIVE_WRITERS = {
    "string": _write_string, "bytes": _write_bytes, "boolean": _write_boolean,
    "int": _write_long, "long": _write_long,
    "float": lambda v, out: out.extend(struct.pack("<f", v)),
    "double": lambda v, out: out.extend(struct.pack("<d", v)),
    "null": lambda v, out: None,
}


def _compile_writer(t, ns: str, named: dict):
    """A ``write(value, out: bytearray)`` closure for Avro type ``t``."""
    if isinstance(t, list):  # only ["null", T] / [T, "null"], as events.Validator enforces
        null_index = t.index("null")
        write = _compile_writer(t[1 - null_index], ns, named)
        null_tag, value_tag = _long_bytes(null_index), _long_bytes(1 - null_index)

        def write_union(v, out):
            if v is None:
                out += null_tag
            else:
                out += value_tag
                write(v, out)
        return write_union
    if isinstance(t, str):
        if t in _PRIMITIVE_WRITERS:
            return _PRIMITIVE_WRITERS[t]
        return named[t if "." in t else f"{ns}.{t}"]
    kind = t["type"]
    if t.get("logicalType") == "timestamp-micros" and kind == "long":
        return _write_timestamp_micros
    if kind == "record":
        full = t["name"] if "." in t["name"] else f"{t.get('namespace', ns)}.{t['name']}"
        inner = full.rpartition(".")[0]
        fields = [(f["name"], _compile_writer(f["type"], inner, named)) for f in t["fields"]]

        def write_record(v, out):
            for name, write in fields:
                write(v[name], out)
        named[full] = write_record
        return write_record
    if kind == "enum":
        tags = {symbol: _long_bytes(i) for i, symbol in enumerate(t["symbols"])}

        def write_enum(v, out):
            out += tags[v]
        named[t["name"] if "." in t["name"] else f"{t.get('namespace', ns)}.{t['name']}"] = write_enum
        return write_enum
    if kind == "array":
        write_item = _compile_writer(t["items"], ns, named)

        def write_array(v, out):
            if v:
                _write_long(len(v), out)
                for x in v:
                    write_item(x, out)
            out.append(0)
        return write_array
    if kind == "map":
        write_value = _compile_writer(t["values"], ns, named)

        def write_map(v, out):
            if v:
                _write_long(len(v), out)
                for k, x in v.items():
                    _write_string(k, out)
                    write_value(x, out)
            out.append(0)
        return write_map
    if kind in _PRIMITIVE_WRITERS:  # {"type": "string", "logicalType": "uuid"} and the like
        return _PRIMITIVE_WRITERS[kind]
    raise SchemaError(f"cannot encode Avro type {kind!r}")


@dataclass(frozen=True, eq=False)
class SchemaVersion:
    """One released schema file."""

    event_type: str
    version: int
    path: Path
    source: dict  # the file's JSON, as written (defaults, docs, logical types)
    parsed: dict  # the schema parsed by fastavro
    canonical_form: str
    fingerprint: bytes  # 8 bytes, little-endian, as on the wire

    @property
    def label(self) -> str:
        return f"v{self.version}"

    def __repr__(self) -> str:
        return f"<SchemaVersion {self.event_type} {self.label} {self.fingerprint.hex()}>"


def load_versions(directory: str | Path | None = None) -> dict[str, list[SchemaVersion]]:
    """Every version of every event type, oldest first; no cross-version checks."""
    loaded: dict[str, list[SchemaVersion]] = {}
    for event_type, files in events.schema_files(directory).items():
        expected = list(range(1, len(files) + 1))
        if [v for v, _ in files] != expected:
            have = ", ".join(p.name for _, p in files)
            raise SchemaError(f"{files[0][1].parent}: versions must be v1..v{len(files)} without gaps, found {have}")
        loaded[event_type] = [_load_file(event_type, version, path) for version, path in files]
    return loaded


def _load_file(event_type: str, version: int, path: Path) -> SchemaVersion:
    source = events.read_schema_file(path)
    name = source.get("name", "")
    full = name if "." in name else f"{source.get('namespace', '')}.{name}"
    if full != f"{events.NAMESPACE}.{event_type}":
        raise SchemaError(f"{path}: record name is {full!r}, expected {events.NAMESPACE}.{event_type}")
    try:
        parsed = parse_schema(source)
        canonical = to_parsing_canonical_form(parsed)
    except Exception as err:  # fastavro raises several types for a bad schema
        raise SchemaError(f"{path}: not a valid Avro schema: {err}") from err
    return SchemaVersion(event_type, version, path, source, parsed, canonical, schema_fingerprint(canonical))


def fingerprint_collisions(versions: dict[str, list[SchemaVersion]]) -> list[tuple[SchemaVersion, SchemaVersion]]:
    """Pairs of files sharing a fingerprint (Parsing Canonical Form ignores defaults and logical types)."""
    first: dict[bytes, SchemaVersion] = {}
    pairs = []
    for version_list in versions.values():
        for sv in version_list:
            if sv.fingerprint in first:
                pairs.append((first[sv.fingerprint], sv))
            else:
                first[sv.fingerprint] = sv
    return pairs


def collision_message(a: SchemaVersion, b: SchemaVersion) -> str:
    return (f"{a.event_type} {a.label} ({a.path}) and {b.event_type} {b.label} ({b.path}) share the "
            f"fingerprint {a.fingerprint.hex()}: their Parsing Canonical Forms are identical "
            "(a change to only defaults, docs or logical types); change a field or drop the new version")


def _without_uuid_type(t):
    if isinstance(t, dict):
        if t.get("logicalType") == "uuid":
            return {k: v for k, v in t.items() if k != "logicalType"}
        return {k: _without_uuid_type(v) for k, v in t.items()}
    if isinstance(t, list):
        return [_without_uuid_type(x) for x in t]
    return t


def _reading_schema(source: dict) -> dict:
    """``source`` parsed for decoding, with uuid logical types read as plain strings.

    fastavro would build a ``uuid.UUID`` that validation turns straight back
    into a string (~2 µs per id); validation checks the UUID form anyway.
    """
    return parse_schema(_without_uuid_type(source))


class Codec:
    """Encodes validated events and decodes wire bytes back into validated events."""

    def __init__(self, versions: dict[str, list[SchemaVersion]], *, max_record_bytes: int = MAX_RECORD_BYTES,
                 directory: Path | None = None):
        collisions = fingerprint_collisions(versions)
        if collisions:
            raise SchemaError(collision_message(*collisions[0]))
        self.directory = directory
        self.max_record_bytes = max_record_bytes
        self._versions = versions
        newest = {t: vs[-1] for t, vs in versions.items()}
        try:
            self.validator = events.Validator({t: sv.source for t, sv in newest.items()})
            # type -> (header bytes, compiled writer of the newest version)
            self._writers = {t: (MAGIC + sv.fingerprint, _compile_writer(sv.source, events.NAMESPACE, {}))
                             for t, sv in newest.items()}
        except SchemaError as err:
            raise SchemaError(f"newest schemas in {directory or 'schemas/'}: {err}") from err
        # fingerprint -> (type, writer version, parsed writer, parsed reader or None when it is the writer)
        self._readers: dict[bytes, tuple] = {}
        for t, vs in versions.items():
            reader = _reading_schema(vs[-1].source)
            for sv in vs[:-1]:
                self._readers[sv.fingerprint] = (t, sv, _reading_schema(sv.source), reader)
            self._readers[vs[-1].fingerprint] = (t, vs[-1], reader, None)

    @classmethod
    def load(cls, directory: str | Path | None = None, *, max_record_bytes: int = MAX_RECORD_BYTES) -> "Codec":
        """Load every version in ``directory`` (default: env LEDGER_SCHEMAS_DIR, else the repo's schemas/)."""
        root = events.schemas_dir(directory)
        return cls(load_versions(root), max_record_bytes=max_record_bytes, directory=root)

    def versions(self, event_type: str) -> list[SchemaVersion]:
        """Every version of ``event_type``, oldest first."""
        try:
            return list(self._versions[event_type])
        except KeyError:
            raise SchemaError(f"no schema for event type {event_type!r}") from None

    def newest(self, event_type: str) -> SchemaVersion:
        return self.versions(event_type)[-1]

    def all_versions(self) -> dict[str, list[SchemaVersion]]:
        return {t: list(vs) for t, vs in self._versions.items()}

    def validate(self, obj) -> dict:
        """events.validate against this codec's newest schemas."""
        return self.validator.validate(obj)

    def encode(self, event: dict) -> bytes:
        """Single-object encoding of an already validated event, with the newest version of its type."""
        try:
            header, write = self._writers[event["type"]]
        except (KeyError, TypeError):
            raise ValidationError("type", f"cannot encode event type {event.get('type')!r}") from None
        out = bytearray(header)
        try:
            write(event, out)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as err:
            raise ValidationError("(event)", f"cannot be Avro-encoded ({type(err).__name__}: {err}); "
                                  "pass it through events.validate first", event["type"]) from err
        return bytes(out)

    @staticmethod
    def fingerprint(data: bytes) -> bytes | None:
        """The writer-schema fingerprint carried by ``data``, or None if it is not single-object encoded."""
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            return None
        return bytes(data[2:HEADER_SIZE])

    def schema_for(self, fingerprint: bytes) -> SchemaVersion | None:
        entry = self._readers.get(fingerprint)
        return entry[1] if entry else None

    def decode(self, data: bytes) -> dict:
        """Bytes from Kafka → a normalized event dict; DecodeError (keeping ``raw``) otherwise."""
        if data is None:
            raise DecodeError("record has no value (null); an event is never a tombstone", raw=None)
        size = len(data)
        if size > self.max_record_bytes:
            raise DecodeError(f"record is {size} bytes, above the {self.max_record_bytes}-byte limit", raw=data)
        if size < HEADER_SIZE or data[:2] != MAGIC:
            raise DecodeError(f"not Avro single-object encoded (needs C3 01 and an 8-byte fingerprint; "
                              f"starts with {bytes(data[:HEADER_SIZE]).hex() or 'nothing'})", raw=data)
        fp = bytes(data[2:HEADER_SIZE])
        entry = self._readers.get(fp)
        if entry is None:
            raise DecodeError(f"unknown writer schema fingerprint {fp.hex()}: no file in "
                              f"{self.directory or 'schemas/'} has it (schemas/ older than the producer?)", raw=data)
        event_type, sv, writer, reader = entry
        body = BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(body, writer, reader)
        except Exception as err:  # fastavro raises EOFError, UnicodeDecodeError, ValueError, ...
            raise DecodeError(f"unreadable Avro body for {event_type} {sv.label}: "
                              f"{type(err).__name__}: {err}", raw=data) from err
        if body.tell() != size:
            raise DecodeError(f"{size - body.tell()} trailing byte(s) after the {event_type} {sv.label} body",
                              raw=data)
        record["type"] = event_type
        try:
            return self.validator.validate(record)
        except ValidationError as err:
            raise DecodeError(f"decoded {event_type} ({sv.label}) is invalid: {err.field}: {err.reason}",
                              raw=data) from err


@functools.cache
def default_codec() -> Codec:
    """The codec for the default schema directory, loaded once per process."""
    return Codec.load()
