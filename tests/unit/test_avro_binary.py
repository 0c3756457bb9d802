"""The compiled Avro reader and writer (ledger.avro_binary) against fastavro, on schemas beyond the events'."""

from __future__ import annotations

import io
from datetime import timezone

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import SchemaError
from ledger.wire.avro_binary import AvroReadError, compile_reader, compile_writer, long_bytes

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every type the reader covers, nested: records in arrays and maps, unions both ways round, named references.
SCHEMA = {
    "type": "record", "name": "All", "namespace": "t", "fields": [
        {"name": "s", "type": "string"},
        {"name": "b", "type": "bytes"},
        {"name": "yes", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "n", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "e", "type": {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN", "BLUE"]}},
        {"name": "e2", "type": ["Colour", "null"]},
        {"name": "opt", "type": ["null", "long"]},
        {"name": "pair", "type": {"type": "record", "name": "Pair", "fields": [
            {"name": "k", "type": "string"}, {"name": "v", "type": ["null", "double"]}]}},
        {"name": "pairs", "type": {"type": "array", "items": "Pair"}},
        {"name": "by_name", "type": {"type": "map", "values": "t.Pair"}},
        {"name": "matrix", "type": {"type": "array", "items": {"type": "array", "items": "int"}}},
        {"name": "tags", "type": {"type": "map", "values": "string"}},
    ]}
PARSED = fastavro.parse_schema({**SCHEMA, "fields": [
    {**f, "type": "string"} if f["name"] == "id" else f for f in SCHEMA["fields"]]})  # uuid read as a string
READ = compile_reader(SCHEMA)
WRITE = compile_writer(SCHEMA)

TEXT = st.text(max_size=70)  # 64 bytes and more need a two-byte length
PAIR = st.fixed_dictionaries({"k": TEXT, "v": st.none() | st.floats(allow_nan=False)})
RECORDS = st.fixed_dictionaries({
    "s": TEXT, "b": st.binary(max_size=70), "yes": st.booleans(),
    "i": st.integers(-2**31, 2**31 - 1), "n": st.integers(-2**63, 2**63 - 1),
    "f": st.floats(width=32, allow_nan=False), "d": st.floats(allow_nan=False),
    "at": st.datetimes(timezones=st.just(timezone.utc)),
    "id": st.uuids().map(str), "e": st.sampled_from(["RED", "GREEN", "BLUE"]),
    "e2": st.none() | st.sampled_from(["RED", "BLUE"]), "opt": st.none() | st.integers(-2**63, 2**63 - 1),
    "pair": PAIR, "pairs": st.lists(PAIR, max_size=3), "by_name": st.dictionaries(TEXT, PAIR, max_size=3),
    "matrix": st.lists(st.lists(st.integers(-2**31, 2**31 - 1), max_size=3), max_size=70),
    "tags": st.dictionaries(TEXT, TEXT, max_size=3),
})


def fastavro_bytes(record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, PARSED, record)
    return out.getvalue()


def fastavro_read(data: bytes):
    return fastavro.schemaless_reader(io.BytesIO(data), PARSED, None)


@FAST
@given(RECORDS)
def test_reader_and_writer_agree_with_fastavro(record):
    """The compiled writer writes fastavro's bytes and the compiled reader reads back fastavro's values."""
    data = fastavro_bytes(record)
    out = bytearray()
    WRITE(record, out)
    assert bytes(out) == data
    value, end = READ(data, 0)
    assert end == len(data)
    assert value == fastavro_read(data)
    assert list(value) == [f["name"] for f in SCHEMA["fields"]]
    assert value["at"].tzinfo is not None and value["at"] == record["at"]


@FAST
@given(RECORDS, st.data())
def test_damaged_bytes_raise_only_the_documented_errors(record, data):
    """Cut or overwritten bytes raise AvroReadError, IndexError or OverflowError, or read as fastavro reads them."""
    raw = bytearray(fastavro_bytes(record))
    cut = data.draw(st.integers(0, len(raw)))
    for _ in range(data.draw(st.integers(0, 4))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    damaged = bytes(raw[:cut] if data.draw(st.booleans()) else raw)
    try:
        value, end = READ(damaged, 0)
    except (AvroReadError, UnicodeDecodeError, IndexError, OverflowError):
        return
    assert end <= len(damaged)
    reference = io.BytesIO(damaged)
    expected = fastavro.schemaless_reader(reference, PARSED, None)
    assert repr(value) == repr(expected) and reference.tell() == end  # repr: a damaged float may be NaN


LONGS = {"type": "record", "name": "L", "fields": [{"name": "a", "type": {"type": "array", "items": "long"}}]}
STRINGS = {"type": "record", "name": "S", "fields": [{"name": "s", "type": "string"}]}


def test_negative_block_counts_and_long_varints_are_read():
    """A block with a negative count (followed by its byte size) and non-minimal varints read as fastavro reads them."""
    read = compile_reader(LONGS)
    data = long_bytes(-2) + long_bytes(2) + long_bytes(7) + long_bytes(-1) + long_bytes(1) + b"\x80\x00" + b"\x00"
    assert read(data, 0) == ({"a": [7, -1, 0]}, len(data))
    assert fastavro.schemaless_reader(io.BytesIO(data), fastavro.parse_schema(LONGS), None) == {"a": [7, -1, 0]}
    union = compile_reader({"type": "record", "name": "U", "fields": [{"name": "u", "type": ["null", "long"]}]})
    assert union(b"\x82\x00\x04", 0) == ({"u": 2}, 3)  # branch 1 written in two bytes


def test_a_non_minimal_zero_block_count_ends_an_array_or_map():
    """80 00 (zero in two varint bytes) ends the blocks as 00 does, as fastavro and Apache avro read it; the
    compiled reader used to read the next field's bytes as another block (found by tests/test_fuzz_apache_avro.py)."""
    schema = {"type": "record", "name": "M", "fields": [
        {"name": "a", "type": {"type": "array", "items": "long"}},
        {"name": "m", "type": {"type": "map", "values": "string"}}, {"name": "s", "type": "string"}]}
    read = compile_reader(schema)
    for a_end, m_end in ((b"\x80\x00", b"\x00"), (b"\x00", b"\x80\x80\x00"), (b"\x80\x00", b"\x80\x00")):
        data = long_bytes(1) + long_bytes(5) + a_end + long_bytes(1) + b"\x02k\x02v" + m_end + b"\x06abc"
        expected = {"a": [5], "m": {"k": "v"}, "s": "abc"}
        assert read(data, 0) == (expected, len(data))
        assert fastavro.schemaless_reader(io.BytesIO(data), fastavro.parse_schema(schema), None) == expected
    empty = b"\x80\x00\x80\x00\x00"
    assert read(empty, 0) == ({"a": [], "m": {}, "s": ""}, len(empty))


@pytest.mark.parametrize(("schema", "data", "words"), [
    (STRINGS, long_bytes(2**62) + b"abc", "does not fit"),
    (STRINGS, long_bytes(-3) + b"abc", "does not fit"),
    (STRINGS, long_bytes(1000), "does not fit"),
    (STRINGS, b"\x06ab", r"runs 1 byte\(s\) past the end"),
    (LONGS, long_bytes(2**62) + b"\x02" * 20, "cannot fit"),
    (LONGS, long_bytes(-(2**62)) + long_bytes(3) + b"\x02" * 20, "cannot fit"),
    (LONGS, b"\x02" + b"\xff" * 12, "longer than 10 bytes"),
    ({"type": "record", "name": "B", "fields": [{"name": "b", "type": "boolean"}]}, b"\x02", "neither 0 nor 1"),
    ({"type": "record", "name": "F", "fields": [{"name": "f", "type": "double"}]}, b"\x00" * 7, "ends early"),
    ({"type": "record", "name": "U", "fields": [{"name": "u", "type": ["null", "long"]}]}, b"\x04", "union index 2"),
])
def test_garbage_fails_fast_with_a_reason(schema, data, words):
    """Lengths and counts are bounded by the bytes left: garbage fails at once, never loops or allocates much."""
    with pytest.raises(AvroReadError, match=words):
        compile_reader(schema)(data, 0)


def test_reading_past_the_end_is_an_index_error():
    """A record cut short raises IndexError (the codec reports it as bytes ending early)."""
    two = {"type": "record", "name": "T", "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "long"}]}
    with pytest.raises(IndexError):
        compile_reader(two)(long_bytes(5), 0)


@pytest.mark.parametrize("field_type", [
    {"type": "fixed", "name": "F", "size": 4},
    {"type": "int", "logicalType": "date"},
    ["null", "string", "long"],
    {"type": "array", "items": "null"},
    "Unknown",
])
def test_types_the_reader_does_not_cover_are_refused_at_compile_time(field_type):
    """A schema outside the covered subset raises SchemaError, so the codec keeps fastavro for it."""
    with pytest.raises(SchemaError):
        compile_reader({"type": "record", "name": "X", "fields": [{"name": "x", "type": field_type}]})


def test_constant_first_items_lead_the_record():
    """``first`` puts constant items (the event type) at the start of the record dict, as validate does."""
    read = compile_reader(STRINGS, first={"type": "S"})
    value, _ = read(b"\x02a", 0)
    assert list(value.items()) == [("type", "S"), ("s", "a")]


def test_recursive_schemas_are_refused_at_compile_time():
    """A record that refers to itself is refused with SchemaError (the validator refuses it too)."""
    node = {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}
    with pytest.raises(SchemaError, match="recursive"):
        compile_reader(node)


@pytest.mark.parametrize("tenth, reason", [(0x02, "64 bits"), (0x7F, "64 bits"), (0x81, "longer than 10 bytes")])
def test_a_varint_beyond_64_bits_is_refused(tenth, reason):
    """A tenth varint byte above 1 would need more than 64 bits: an error, not a silently wrong long."""
    data = b"\xff" * 9 + bytes([tenth]) + b"\x00" * 16
    with pytest.raises(AvroReadError, match=reason):
        compile_reader(LONGS_ONE)(data, 0)


def test_the_extreme_longs_still_read():
    for n in (2**63 - 1, -(2**63)):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, fastavro.parse_schema(LONGS_ONE), {"a": n})
        assert compile_reader(LONGS_ONE)(out.getvalue(), 0)[0] == {"a": n}


LONGS_ONE = {"type": "record", "name": "One", "fields": [{"name": "a", "type": "long"}]}


BOUNDARY = {"type": "record", "name": "B", "fields": [
    {"name": "s", "type": "string"}, {"name": "n", "type": "long"},
    {"name": "a", "type": {"type": "array", "items": "int"}}, {"name": "m", "type": {"type": "map", "values": "bytes"}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}}]}
_EPOCH = __import__("datetime").datetime(1970, 1, 1, tzinfo=timezone.utc)
# Where the generated writer changes method: the length table ends at 16,383; the loop-free
# timestamp covers zigzag values 2**49 .. 2**56 - 1 (eight varint bytes).
EDGES = [0, 1, 63, 64, 16_383, 16_384, 2**48 - 1, 2**48, 2**55 - 1, 2**55, 2**62]


@pytest.mark.parametrize("n", [*EDGES, *(-e for e in EDGES), -(2**63), 2**63 - 1])
def test_the_writer_agrees_with_fastavro_at_its_method_boundaries(n):
    """Lengths, counts, longs and timestamps on both sides of the writer's table and loop-free ranges:
    fastavro's bytes."""
    from datetime import timedelta

    size = min(abs(n), 20_000)
    micros = max(min(n, 253_402_300_799_999_999), -62_135_596_800_000_000)  # datetime's own range
    record = {"s": "é" * (size // 2) + "x" * (size % 2), "n": n, "a": list(range(min(size, 17_000))),
              "m": {str(i): b"v" for i in range(min(size, 16_400))}, "at": _EPOCH + timedelta(microseconds=micros)}
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(BOUNDARY), record)
    mine = bytearray()
    compile_writer(BOUNDARY)(record, mine)
    assert bytes(mine) == out.getvalue()
    assert long_bytes(n) == bytes(_zigzag_varint(n))


def _zigzag_varint(n: int) -> bytearray:
    """The Avro specification's long encoding, written plainly: the reference for long_bytes."""
    z, out = (n << 1) ^ (n >> 63), bytearray()
    while True:
        if z < 0x80:
            out.append(z)
            return out
        out.append((z & 0x7F) | 0x80)
        z >>= 7
