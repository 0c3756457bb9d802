"""Schema loading, fingerprints and Avro single-object encode/decode.

Wire format (Avro specification, "Single object encoding")::

    C3 01 | CRC-64-AVRO of the writer schema's Parsing Canonical Form, 8 bytes LE | Avro binary

The fingerprint alone selects the writer schema among every version in
``schemas/``. ``decode`` reads with the newest version of its event type
(Avro schema resolution fills fields the writer did not know from their
defaults); ``decode_as_written`` reads with the writer's own version, which is
what the ledger stores (docs/architecture.md, "The readable form"). Either way
the event is then checked with :func:`ledger.events.validate` rules.

    codec = default_codec()
    data = codec.encode(events.validate(obj))
    event = codec.decode(data)                         # read with the newest version
    stored = codec.decode_as_written(data)             # read with the writer's version (ingest)
    older = codec.decode(data, reader=codec.versions("DataAccessed")[0])

When the writer is the reader (the common case: the producer has the newest
schema) the body is read by a reader compiled for that schema
(ledger/wire/avro_binary.py, ~4x faster than fastavro) and only the validation
rules run, not the type checks; otherwise fastavro resolves the two schemas,
after the compiled reader of the writer schema has checked the body (fastavro
would read an enum or union index of -1 as the last symbol or branch).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from fastavro import parse_schema, schemaless_reader
from fastavro.schema import fingerprint, to_parsing_canonical_form

from ledger.errors import DecodeError, SchemaError, ValidationError
from ledger.model import events

from .avro_binary import AvroReadError, compile_reader, compile_writer

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10
MAX_RECORD_BYTES = 1 << 20

def schema_fingerprint(canonical_form: str) -> bytes:
    """The 8 fingerprint bytes as carried on the wire: CRC-64-AVRO of the Parsing Canonical Form, little-endian.

    fastavro computes it (its hex is the little-endian bytes); computed once per schema version at load.
    """
    return bytes.fromhex(fingerprint(canonical_form, "CRC-64-AVRO"))


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
        self._newest = {t: vs[-1] for t, vs in versions.items()}
        try:
            self.validator = events.Validator({t: sv.source for t, sv in self._newest.items()})
            # type -> (header bytes, compiled writer of the newest version)
            self._writers = {t: (MAGIC + sv.fingerprint, compile_writer(sv.source, events.NAMESPACE))
                             for t, sv in self._newest.items()}
        except SchemaError as err:
            raise SchemaError(f"newest schemas in {directory or 'schemas/'}: {err}") from err
        self._by_fingerprint = {sv.fingerprint: sv for vs in versions.values() for sv in vs}
        # fingerprint -> the schema parsed for fastavro (uuid read as a plain string)
        self._fastavro = {fp: _reading_schema(sv.source) for fp, sv in self._by_fingerprint.items()}
        self._validators = {sv.fingerprint: self.validator for sv in self._newest.values()}  # per reader
        # fingerprint -> (version, compiled reader, typed check, validator) for writer = reader; None: fastavro
        self._compiled: dict[bytes, tuple | None] = {}
        self._fast: dict[bytes, tuple] = {}  # the same for the newest versions only: decode's hot path
        self._structure: dict[bytes, object] = {}  # fingerprint -> compiled reader guarding fastavro (or None)
        for sv in self._newest.values():
            compiled = self._compile(sv)
            if compiled is not None:
                self._fast[sv.fingerprint] = compiled

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
        return self._by_fingerprint.get(fingerprint)

    def decode(self, data: bytes, reader: SchemaVersion | None = None) -> dict:
        """Bytes from Kafka → a normalized event dict; DecodeError (keeping ``raw``) otherwise.

        ``reader``: the version of the writer's event type to read with (one of
        ``versions(type)``), default the newest; the event is validated against
        the reader's schema. SchemaError if that schema is one the validator
        cannot compile (only possible for an old version).
        """
        if reader is None and type(data) is bytes:  # the hot path: written with the newest version
            fast = self._fast.get(data[2:HEADER_SIZE])
            if fast is not None and data[:2] == MAGIC and len(data) <= self.max_record_bytes:
                return self._read_compiled(data, *fast)
        writer = self._writer_of(data)
        reader = self._reader_for(writer, reader, data)
        if reader is writer:
            compiled = self._compiled.get(writer.fingerprint, _UNCOMPILED)
            if compiled is _UNCOMPILED:
                compiled = self._compile(writer)
            if compiled is not None:
                return self._read_compiled(data if type(data) is bytes else bytes(data), *compiled)
        return self._read_resolving(data, writer, reader)

    def decode_as_written(self, data: bytes) -> dict:
        """Bytes from Kafka → the event as its producer wrote it: read with the writer's own schema.

        The ledger's stored form (docs/architecture.md, "The readable form"): fields the
        writer's version did not have are absent, so the result does not depend on which
        newer versions are installed, and a live ledger and its replay store the same text.
        The writer's schema is always compiled (no resolution), so this is also the fast path.
        """
        if type(data) is bytes:
            fast = self._fast.get(data[2:HEADER_SIZE])
            if fast is not None and data[:2] == MAGIC and len(data) <= self.max_record_bytes:
                return self._read_compiled(data, *fast)
        return self.decode(data, reader=self._writer_of(data))

    def decode_with_fastavro(self, data: bytes, reader: SchemaVersion | None = None) -> dict:
        """What :meth:`decode` returns, always read by fastavro: the reference for tests and benchmarks."""
        writer = self._writer_of(data)
        return self._read_resolving(data, writer, self._reader_for(writer, reader, data))

    # --- decoding ---------------------------------------------------------------------

    def _writer_of(self, data) -> SchemaVersion:
        if data is None:
            raise DecodeError("record has no value (null); an event is never a tombstone", raw=None)
        size = len(data)
        if size > self.max_record_bytes:
            raise DecodeError(f"record is {size} bytes, above the {self.max_record_bytes}-byte limit", raw=data)
        if size < HEADER_SIZE or data[:2] != MAGIC:
            raise DecodeError(f"not Avro single-object encoded (needs C3 01 and an 8-byte fingerprint; "
                              f"starts with {bytes(data[:HEADER_SIZE]).hex() or 'nothing'})", raw=data)
        fp = bytes(data[2:HEADER_SIZE])
        writer = self._by_fingerprint.get(fp)
        if writer is None:
            raise DecodeError(f"unknown writer schema fingerprint {fp.hex()}: no file in "
                              f"{self.directory or 'schemas/'} has it (schemas/ older than the producer?)", raw=data)
        return writer

    def _reader_for(self, writer: SchemaVersion, reader: SchemaVersion | None, data) -> SchemaVersion:
        if reader is None:
            return self._newest[writer.event_type]
        own = self._by_fingerprint.get(reader.fingerprint)
        if own is None or own.event_type != writer.event_type:
            raise DecodeError(f"written as {writer.event_type} {writer.label}: cannot be read with "
                              f"{reader.event_type} {reader.label}", raw=data)
        return own

    def _compile(self, sv: SchemaVersion) -> tuple | None:
        """The compiled reader of ``sv`` (for data it wrote), or None when fastavro must read it."""
        try:
            read = compile_reader(sv.source, events.NAMESPACE, first={"type": sv.event_type})
            validator = self._validator(sv)
        except SchemaError:  # a construct the compiled reader or validator does not cover
            self._compiled[sv.fingerprint] = None
            return None
        compiled = self._compiled[sv.fingerprint] = (sv, read, validator.typed_check(sv.event_type), validator)
        return compiled

    def _validator(self, reader: SchemaVersion) -> events.Validator:
        validator = self._validators.get(reader.fingerprint)
        if validator is None:
            validator = self._validators[reader.fingerprint] = events.Validator({reader.event_type: reader.source})
        return validator

    def _read_compiled(self, data: bytes, sv: SchemaVersion, read, typed_check, validator) -> dict:
        try:
            record, end = read(data, HEADER_SIZE)
        except (IndexError, ValueError, OverflowError) as err:  # AvroReadError and UnicodeDecodeError are ValueErrors
            raise DecodeError(f"unreadable Avro body for {sv.event_type} {sv.label}: {_unreadable(err)}",
                              raw=data) from err
        if end != len(data):
            raise DecodeError(f"{len(data) - end} trailing byte(s) after the {sv.event_type} {sv.label} body",
                              raw=data)
        if typed_check(record):  # the rules hold and nothing needs normalizing: validate would return it as is
            return record
        return self._validated(record, data, sv, sv, validator)

    def _writer_reader(self, writer: SchemaVersion):
        """The compiled reader of ``writer`` (cached), or None if it uses a construct that reader lacks."""
        read = self._structure.get(writer.fingerprint, _UNCOMPILED)
        if read is _UNCOMPILED:
            try:
                read = compile_reader(writer.source, events.NAMESPACE, first={"type": writer.event_type})
            except SchemaError:
                read = None
            self._structure[writer.fingerprint] = read
        return read

    def _check_structure(self, data, writer: SchemaVersion) -> None:
        """Refuse bytes whose enum or union indexes lie outside the writer schema, before fastavro reads them.

        fastavro picks a symbol or branch by indexing a Python list, so an index
        of -1 silently becomes the *last* symbol (``BREAK_GLASS``), with or
        without resolution. The compiled reader of the writer schema checks every
        index (and every length and count) and names the field; it costs a few µs.
        """
        read = self._writer_reader(writer)
        if read is None:
            raise DecodeError(f"{writer.event_type} {writer.label} uses an Avro construct whose indexes the ledger "
                              "cannot check (only records, enums, arrays, maps, [\"null\", T] unions and "
                              "primitive types are read)", raw=data)
        body = data if type(data) is bytes else bytes(data)
        try:
            _, end = read(body, HEADER_SIZE)
        except (IndexError, ValueError, OverflowError) as err:
            raise DecodeError(f"unreadable Avro body for {writer.event_type} {writer.label}: {_unreadable(err)}",
                              raw=data) from err
        if end != len(body):
            raise DecodeError(f"{len(body) - end} trailing byte(s) after the {writer.event_type} {writer.label} body",
                              raw=data)

    def _read_resolving(self, data, writer: SchemaVersion, reader: SchemaVersion) -> dict:
        self._check_structure(data, writer)
        body = BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(body, self._fastavro[writer.fingerprint],
                                       None if reader is writer else self._fastavro[reader.fingerprint])
        except Exception as err:  # fastavro raises EOFError, UnicodeDecodeError, ValueError, ...
            raise DecodeError(f"unreadable Avro body for {writer.event_type} {writer.label}: "
                              f"{type(err).__name__}: {err}", raw=data) from err
        if body.tell() != len(data):
            raise DecodeError(f"{len(data) - body.tell()} trailing byte(s) after the {writer.event_type} "
                              f"{writer.label} body", raw=data)
        record["type"] = writer.event_type
        return self._validated(record, data, writer, reader, self._validator(reader))

    def _validated(self, record: dict, data, writer: SchemaVersion, reader: SchemaVersion, validator) -> dict:
        try:
            return validator.validate(record)
        except ValidationError as err:
            label = writer.label if reader in (writer, self._newest[writer.event_type]) else \
                f"{writer.label} read as {reader.label}"
            raise DecodeError(f"decoded {writer.event_type} ({label}) is invalid: {err.field}: {err.reason}",
                              raw=data) from err


_UNCOMPILED = object()


def _unreadable(err: Exception) -> str:
    if isinstance(err, IndexError):
        return "the bytes end before the record does"
    if isinstance(err, OverflowError):
        return f"a timestamp is out of range ({err})"
    if isinstance(err, AvroReadError):
        return str(err)
    return f"{type(err).__name__}: {err}"


@functools.cache
def default_codec() -> Codec:
    """The codec for the default schema directory, loaded once per process."""
    return Codec.load()
