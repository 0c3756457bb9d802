"""Single-object encoding: fingerprints, encode/decode round trips, schema resolution, decode errors."""

from __future__ import annotations

import io
import json
import shutil
from datetime import timezone
from pathlib import Path

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import ANY_EVENT, ANY_TYPED

from ledger.errors import DecodeError, SchemaError
from ledger.model import events
from ledger.wire import codec as codec_module
from ledger.wire.codec import HEADER_SIZE, MAGIC, Codec, default_codec, schema_fingerprint

SCHEMAS = Path(codec_module.__file__).resolve().parent.parent.parent / "schemas"
UTC = timezone.utc


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- fingerprints ---------------------------------------------------------------------

CRC64_EMPTY = 0xC15D213AA4D7A795  # the Avro specification's fingerprint of the empty string


def reference_crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO written as the Avro specification's ``fingerprint64`` (bit by bit): the naive reference."""
    fp = CRC64_EMPTY
    for byte in data:
        fp ^= byte
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_EMPTY & -(fp & 1))
    return fp


@FAST
@given(st.text(max_size=300))
def test_fastavros_crc64_matches_the_specifications_algorithm(text):
    """fastavro's CRC-64-AVRO (what the codec uses) equals the spec's fingerprint64, little-endian on the wire."""
    assert schema_fingerprint(text) == reference_crc64_avro(text.encode()).to_bytes(8, "little")


def test_crc64_of_the_empty_string_is_the_spec_constant():
    """The spec's EMPTY constant: fingerprint64 of no bytes."""
    assert schema_fingerprint("") == CRC64_EMPTY.to_bytes(8, "little")


@pytest.mark.parametrize("event_type", events.EVENT_TYPES)
def test_schema_fingerprints_match_fastavro(event_type):
    """Each loaded version's fingerprint is CRC-64-AVRO of its Parsing Canonical Form, little-endian."""
    for sv in default_codec().versions(event_type):
        assert sv.canonical_form == fastavro.schema.to_parsing_canonical_form(sv.parsed)
        assert sv.fingerprint == bytes.fromhex(fastavro.schema.fingerprint(sv.canonical_form, "CRC-64-AVRO"))
        assert sv.fingerprint == schema_fingerprint(sv.canonical_form)
        assert (sv.event_type, sv.label, sv.path.name) == (event_type, f"v{sv.version}", f"v{sv.version}.avsc")


# --- round trips ------------------------------------------------------------------------

@FAST
@given(ANY_EVENT)
def test_round_trip_of_any_valid_event(obj):
    """decode(encode(validate(x))) == validate(x) for generated valid events of every type."""
    codec = default_codec()
    event = events.validate(obj)
    data = codec.encode(event)
    assert data[:2] == MAGIC and Codec.fingerprint(data) == codec.newest(event["type"]).fingerprint
    assert codec.decode(data) == event


@FAST
@given(ANY_EVENT)
def test_encoder_writes_the_same_bytes_as_fastavro(obj):
    """The compiled encoder is byte-for-byte the reference fastavro schemaless_writer."""
    codec = default_codec()
    event = events.validate(obj)
    reference = io.BytesIO()
    fastavro.schemaless_writer(reference, codec.newest(event["type"]).parsed, event)
    assert codec.encode(event)[10:] == reference.getvalue()


def _outcome(decode, data):
    try:
        return decode(data)
    except DecodeError as err:
        return ("DecodeError", err.reason)


@FAST
@given(ANY_EVENT)
def test_compiled_reader_returns_what_the_fastavro_path_returns(obj):
    """For valid events the compiled reader's result equals the fastavro path's, types and key order included."""
    codec = default_codec()
    data = codec.encode(events.validate(obj))
    fast, reference = codec.decode(data), codec.decode_with_fastavro(data)
    assert fast == reference and list(fast) == list(reference)
    assert repr(fast) == repr(reference)  # the same types too: str ids, aware UTC datetimes


@settings(FAST, max_examples=300)
@given(ANY_TYPED)
def test_rules_refuse_or_normalize_decoded_values_as_validate_does(record):
    """Values of the right Avro type that break a rule are refused (naming the field) or normalized like validate."""
    codec = default_codec()
    data = codec.encode(record)  # the compiled writer writes whatever has the right types
    assert _outcome(codec.decode, data) == _outcome(codec.decode_with_fastavro, data)
    try:
        expected = events.validate(record)
    except events.ValidationError as err:
        with pytest.raises(DecodeError) as info:
            codec.decode(data)
        assert f"{err.field}: {err.reason}" in info.value.reason
    else:
        assert codec.decode(data) == expected


@FAST
@given(ANY_EVENT, st.data())
def test_truncated_or_garbled_bytes_raise_decode_error(obj, data):
    """Cut or overwritten bodies raise DecodeError (never another type) on both paths, or decode alike on both."""
    codec = default_codec()
    raw = bytearray(codec.encode(events.validate(obj)))
    for _ in range(data.draw(st.integers(0, 3))):
        raw[data.draw(st.integers(10, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(10, len(raw)))
    damaged = bytes(raw[:cut] + raw[len(raw):] if data.draw(st.booleans()) else raw)
    try:
        event = codec.decode(damaged)
    except DecodeError as err:
        assert err.raw == damaged
        with pytest.raises(DecodeError):  # the fastavro path is guarded too (an enum index of -1: issue 11)
            codec.decode_with_fastavro(damaged)
        return
    assert codec.decode_with_fastavro(damaged) == event


def test_every_prefix_of_a_record_is_refused():
    """Each strict prefix of a valid record's body raises DecodeError, and so do trailing bytes."""
    codec = default_codec()
    data = _valid_bytes()
    for cut in range(HEADER_SIZE, len(data)):
        with pytest.raises(DecodeError, match="unreadable Avro body|past the end"):
            codec.decode(data[:cut])
    with pytest.raises(DecodeError, match="2 trailing byte"):
        codec.decode(data + b"\x00\x00")


def test_bulk_events_and_other_byte_types_decode():
    """A 1,000-subject event decodes; a bytearray or memoryview decodes like bytes."""
    codec = default_codec()
    event = events.validate({**events.validate(_sample()), "subject_ids": [f"c-{i}" for i in range(1000)]})
    data = codec.encode(event)
    assert codec.decode(data) == event == codec.decode(bytearray(data)) == codec.decode(memoryview(data))


def test_encode_of_an_unvalidated_event_names_the_problem():
    """Encoding something validate would refuse raises ValidationError, not a KeyError deep inside."""
    with pytest.raises(events.ValidationError, match="validate"):
        default_codec().encode({"type": "DataAccessed", "event_id": "x"})
    with pytest.raises(events.ValidationError, match="type"):
        default_codec().encode({"type": "Nope"})


# --- schema evolution -------------------------------------------------------------------

def _copy_schemas(tmp_path: Path) -> Path:
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    return root


def _add_version(root: Path, event_type: str, change) -> Path:
    """Write the next version of ``event_type``: the newest file's JSON changed by ``change``."""
    versions = sorted(root.joinpath(event_type).glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
    schema = json.loads(versions[-1].read_text())
    change(schema)
    path = root / event_type / f"v{len(versions) + 1}.avsc"
    path.write_text(json.dumps(schema, indent=2))
    return path


def _with_field(field: dict):
    return lambda schema: schema["fields"].append(field)


def test_v1_data_is_read_with_v2_defaults(tmp_path):
    """A record written with v1 decodes through a codec whose newest version adds a defaulted field."""
    root = _copy_schemas(tmp_path)
    _add_version(root, "DataAccessed", _with_field(
        {"name": "session_id", "type": "string", "default": "unknown", "doc": "Session."}))
    _add_version(root, "DataAccessed", _with_field(
        {"name": "screen", "type": ["null", "string"], "default": None, "doc": "Screen."}))
    v1_codec, v3_codec = default_codec(), Codec.load(root)
    event = events.validate({"type": "DataAccessed", "occurred_at": "2026-01-01T00:00:00Z",
                             "source_service": "crm", "actor": {"id": "a", "type": "SYSTEM"},
                             "subject_ids": ["c1"], "data_categories": ["user.name"],
                             "purpose": "essential.billing", "access_type": "QUERY", "outcome": "DENIED"})
    decoded = v3_codec.decode(v1_codec.encode(event))
    assert decoded == {**event, "session_id": "unknown", "screen": None}
    assert [sv.label for sv in v3_codec.versions("DataAccessed")] == ["v1", "v2", "v3"]
    newer = v3_codec.encode(v3_codec.validate({**event, "session_id": "s-9"}))
    assert Codec.fingerprint(newer) == v3_codec.newest("DataAccessed").fingerprint
    assert v3_codec.decode(newer)["session_id"] == "s-9"


def test_decode_with_an_older_reader(tmp_path):
    """decode(reader=vN) reads with that version (the writer's own, a newer or an older one), never another type's."""
    root = _copy_schemas(tmp_path)
    _add_version(root, "DataAccessed", _with_field(
        {"name": "session_id", "type": "string", "default": "unknown", "doc": "Session."}))
    _add_version(root, "DataAccessed", _with_field(
        {"name": "screen", "type": ["null", "string"], "default": None, "doc": "Screen."}))
    codec = Codec.load(root)
    v1, v2, v3 = codec.versions("DataAccessed")
    event = events.validate(_sample())
    data = default_codec().encode(event)
    assert codec.decode(data, reader=v1) == event == codec.decode_with_fastavro(data, reader=v1)
    assert codec.decode(data, reader=v2) == {**event, "session_id": "unknown"}
    assert codec.decode(data, reader=v3) == codec.decode(data) == {**event, "session_id": "unknown", "screen": None}
    newer = codec.encode(codec.validate({**event, "session_id": "s"}))
    assert codec.decode(newer, reader=v1) == event  # a reader older than the writer drops the new fields
    with pytest.raises(DecodeError, match="cannot be read with ConsentChanged v1"):
        codec.decode(data, reader=codec.versions("ConsentChanged")[0])
    bad = default_codec().encode({**event, "subject_ids": []})
    with pytest.raises(DecodeError, match=r"DataAccessed \(v1\) is invalid: subject_ids"):
        codec.decode(bad, reader=v1)
    with pytest.raises(DecodeError, match=r"DataAccessed \(v1 read as v2\) is invalid: subject_ids"):
        codec.decode(bad, reader=v2)


def test_env_variable_selects_the_schema_directory(tmp_path, monkeypatch):
    """Codec.load() without arguments uses LEDGER_SCHEMAS_DIR when it is set."""
    root = _copy_schemas(tmp_path)
    _add_version(root, "ConsentChanged", _with_field({"name": "x", "type": "long", "default": 0, "doc": "x"}))
    monkeypatch.setenv("LEDGER_SCHEMAS_DIR", str(root))
    assert Codec.load().newest("ConsentChanged").version == 2
    assert Codec.load(SCHEMAS).newest("ConsentChanged").version == 1


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda root: _add_version(root, "DataShared", lambda s: s["fields"][-1].update(default=None)), "share the fingerprint"),
    (lambda root: _add_version(root, "DataShared", lambda s: s["fields"][1]["type"].pop("logicalType")), "share the fingerprint"),
    (lambda root: _add_version(root, "DataShared", lambda s: s.update(name="Shared")), "record name"),
    (lambda root: (root / "DataShared" / "v2.avsc").write_text("{not json"), "cannot read schema"),
    (lambda root: (root / "DataShared" / "v3.avsc").write_text("{}"), "without gaps"),
    (lambda root: (root / "DataShared" / "latest.avsc").write_text("{}"), "v1.avsc, v2.avsc"),
    (lambda root: (root / "DataLeaked").mkdir(), "not an event type"),
    (lambda root: _add_version(root, "DataShared", _with_field(
        {"name": "x", "type": ["null", "string", "long"], "default": None, "doc": "x"})), "unions are supported"),
    (lambda root: shutil.rmtree(root / "ConsentChanged"), "no schema version for ConsentChanged"),
])
def test_load_refuses_an_inconsistent_directory(tmp_path, mutate, words):
    """Collisions, wrong record names, malformed JSON, gaps and stray files are refused naming the file."""
    root = _copy_schemas(tmp_path)
    mutate(root)
    with pytest.raises(SchemaError) as info:
        Codec.load(root)
    assert words in str(info.value)
    if "fingerprint" in words:
        assert "DataShared v1" in str(info.value) and "DataShared v2" in str(info.value)


# --- decode errors ----------------------------------------------------------------------

def _sample() -> dict:
    return {"type": "DataAccessed", "occurred_at": "2026-01-01T00:00:00Z", "source_service": "crm",
            "actor": {"id": "a", "type": "SYSTEM"}, "subject_ids": ["c1"], "data_categories": ["user.name"],
            "purpose": "essential.billing", "access_type": "QUERY", "outcome": "DENIED"}


def _valid_bytes() -> bytes:
    obj = {"type": "SubjectNotified", "occurred_at": "2026-01-01T00:00:00Z", "source_service": "notify",
           "actor": {"id": "svc", "type": "SERVICE"}, "subject_ids": ["c1"],
           "disclosure_event_id": "0b7c0d1e-2f3a-4b5c-8d6e-7f8091a2b3c4",
           "notified_at": "2026-01-01T00:00:00Z", "channel": "email"}
    return default_codec().encode(events.validate(obj))


def _written_by_fastavro(record: dict) -> bytes:
    sv = default_codec().newest("SubjectNotified")
    out = io.BytesIO(MAGIC + sv.fingerprint)
    out.seek(0, io.SEEK_END)
    fastavro.schemaless_writer(out, sv.parsed, record)
    return out.getvalue()


def _bad_record(**changes) -> dict:
    record = default_codec().decode(_valid_bytes())
    record.update(changes)
    return record


@pytest.mark.parametrize(("make", "words"), [
    (lambda ok: None, "no value"),
    (lambda ok: b"", "not Avro single-object"),
    (lambda ok: ok[:9], "not Avro single-object"),
    (lambda ok: b"\xc3\x02" + ok[2:], "not Avro single-object"),
    (lambda ok: b"{\"type\": \"DataAccessed\"}", "not Avro single-object"),
    (lambda ok: MAGIC + bytes.fromhex("0011223344556677") + ok[10:], "unknown writer schema fingerprint 0011223344556677"),
    (lambda ok: ok[:-5], "unreadable Avro body for SubjectNotified v1"),
    (lambda ok: ok + b"\x00", "1 trailing byte(s)"),
    (lambda ok: ok[:10] + b"\xff" * 12, "unreadable"),
    (lambda ok: _written_by_fastavro(_bad_record(subject_ids=[])), "subject_ids"),
    (lambda ok: _written_by_fastavro(_bad_record(subject_ids=["a", "a"])), "subject_ids[1]"),
    (lambda ok: _written_by_fastavro(_bad_record(disclosure_event_id="nope")), "disclosure_event_id"),
    (lambda ok: _written_by_fastavro(_bad_record(channel="")), "channel"),
])
def test_decode_errors_keep_the_raw_bytes_and_say_why(make, words):
    """Every undecodable input raises DecodeError with a reason naming the problem and the raw bytes."""
    data = make(_valid_bytes())
    with pytest.raises(DecodeError) as info:
        default_codec().decode(data)
    assert words in info.value.reason and info.value.raw == data


@pytest.mark.parametrize("change, field", [
    (lambda e: {**e, "event_id": e["event_id"].upper()}, "event_id"),
    (lambda e: {**e, "recipient": {**e["recipient"], "country": "de"}}, "recipient.country"),
    (lambda e: {**e, "request": {**e["request"], "document_sha256": "AB" * 32}}, "request.document_sha256"),
])
def test_non_canonical_values_on_the_wire_are_refused_not_rewritten(change, field):
    """An upper-case UUID, a lower-case country or an upper-case digest in a raw record is refused naming the
    field, by the compiled and the fastavro path alike (issue 11, defect 2: they used to come back rewritten)."""
    codec = default_codec()
    disclosure = {"type": "LegalDisclosure", "occurred_at": "2026-01-01T00:00:00Z", "source_service": "legal",
                  "actor": {"id": "l-1", "type": "EMPLOYEE"}, "subject_ids": ["c1"],
                  "data_categories": ["user.name"], "purpose": "legal.obligation", "reviewed_by": "l-2",
                  "request": {"id": "R-1", "kind": "SUBPOENA", "authority": "Court",
                              "received_at": "2026-01-01T00:00:00Z", "document_sha256": "ab" * 32},
                  "requested_categories": ["user.name"],
                  "recipient": {"id": "court", "name": "Court", "kind": "REGULATOR", "country": "DE"},
                  "notification": {"status": "PENDING"}}
    event = events.validate(disclosure)
    assert codec.decode(codec.encode(event)) == event
    data = codec.encode(change(event))
    for decode in (codec.decode, codec.decode_with_fastavro, codec.decode_as_written):
        with pytest.raises(DecodeError, match=f"is invalid: {field}: ") as info:
            decode(data)
        assert info.value.raw == data


def test_decode_refuses_oversized_records():
    """Records above the configured size limit are refused before parsing."""
    data = _valid_bytes()
    small = Codec.load(max_record_bytes=len(data) - 1)
    with pytest.raises(DecodeError, match="above the"):
        small.decode(data)
    assert default_codec().max_record_bytes == 1 << 20
    assert Codec.fingerprint(data) == data[2:10] and Codec.fingerprint(b"xx") is None


def test_default_codec_is_cached():
    """default_codec() loads the schemas once per process."""
    assert default_codec() is default_codec()
