"""Avro binary encoding compiled once per schema: a writer and a reader for the codec.

fastavro interprets the schema on every call; for the ledger's records that
costs ~13 µs to write and ~20 µs to read a typical DataAccessed. These are
specialised to one schema when the codec loads it:

    write = compile_writer(schema)        # write(event, out: bytearray) -> out
    read = compile_reader(schema)         # read(data: bytes, pos) -> (record, end position)

Both cover what ``events.Validator`` accepts in a schema: records, enums,
arrays, maps, ``["null", T]`` unions, string, bytes, boolean, int, long,
float, double, logical types uuid (a plain string) and timestamp-micros (an
aware UTC datetime, exactly as fastavro builds it). The reader assumes the
writer's schema is the reader's (no resolution: the codec keeps fastavro for
an older writer) and raises :class:`AvroReadError` (a ValueError), IndexError
(bytes end early) or OverflowError (a time out of range) on bad bytes; every
length and count is bounded by the bytes left, so garbage never loops long.
tests/unit/test_avro_binary.py and test_codec.py check both against fastavro.

Measured (bench/bench_codec.py, 5,000 simulated events, median of 3 runs of
best-of-3, µs per event over the mix): the compiled reader decodes in ~14.5 µs
against ~43.5 for fastavro's. The writer is generated code since issue 17 (it
was closures per field): 6.59 µs where fastavro's ``schemaless_writer`` takes
18.35 (same bytes, checked by the bench and by tests/unit/test_avro_binary.py;
best of 3, 2026-12-03); in one process, side by side over 20,000 events, the
closure writer took 5.81 µs (reference mix) and 9.41 (simulated) where the
generated one takes 3.93 and 6.69. On the producer stage it serves (20–35 µs an
event, bench/profile_producer.py) the generated writer saves ~8–10% and fastavro
would cost 35–50% more, so it stays.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

from ledger.errors import SchemaError

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# --- writer ---------------------------------------------------------------------------
# Input is a validated event, so no type checks here.

def _write_long(n: int, out: bytearray) -> None:
    n = (n << 1) ^ (n >> 63)  # zigzag
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def long_bytes(n: int) -> bytes:
    """The Avro (zigzag varint) encoding of the integer ``n``."""
    out = bytearray()
    _write_long(n, out)
    return bytes(out)


_PRIMITIVES = frozenset(("string", "bytes", "boolean", "int", "long", "float", "double", "null"))


def _full_name(t: dict, ns: str) -> str:
    return t["name"] if "." in t["name"] else f"{t.get('namespace', ns)}.{t['name']}"



# --- reader ---------------------------------------------------------------------------
# The reader is generated Python source, one function per schema: every field
# is read into a local and each record is built with one dict display, so a
# call makes almost no Python-level calls (~4x faster than closures per field).
# ``b`` is the data, ``p`` the position, ``end`` = len(b). b[p] past the end
# raises IndexError; p never moves back (lengths and counts are not negative),
# so a string cut short leaves p > end, which the next read or the final check
# reports.

class AvroReadError(ValueError):
    """The bytes do not follow the schema (the codec reports it as a DecodeError)."""


def _varint(b: bytes, p: int, c: int) -> tuple[int, int]:
    """The unsigned varint whose first byte ``c`` was at p - 1 (at most 10 bytes): (value, next position).

    Unrolled: a timestamp takes 8 bytes, and a loop costs 40% more.
    """
    if c < 0x80:
        return c, p
    n = c & 0x7F
    c = b[p]
    n |= (c & 0x7F) << 7
    if c < 0x80:
        return n, p + 1
    c = b[p + 1]
    n |= (c & 0x7F) << 14
    if c < 0x80:
        return n, p + 2
    c = b[p + 2]
    n |= (c & 0x7F) << 21
    if c < 0x80:
        return n, p + 3
    c = b[p + 3]
    n |= (c & 0x7F) << 28
    if c < 0x80:
        return n, p + 4
    c = b[p + 4]
    n |= (c & 0x7F) << 35
    if c < 0x80:
        return n, p + 5
    c = b[p + 5]
    n |= (c & 0x7F) << 42
    if c < 0x80:
        return n, p + 6
    c = b[p + 6]
    n |= (c & 0x7F) << 49
    if c < 0x80:
        return n, p + 7
    c = b[p + 7]
    n |= (c & 0x7F) << 56
    if c < 0x80:
        return n, p + 8
    c = b[p + 8]
    if c > 1:  # the tenth byte may only hold bit 63: anything more is no 64-bit long
        if c >= 0x80:
            raise AvroReadError(f"varint longer than 10 bytes at byte {p - 1}")
        raise AvroReadError(f"varint at byte {p - 1} does not fit 64 bits")
    return n | (c << 63), p + 9


def _long(b: bytes, p: int, c: int) -> tuple[int, int]:
    n, p = _varint(b, p, c)
    return (n >> 1) ^ -(n & 1), p


def _span(b: bytes, p: int, c: int, end: int) -> tuple[int, int]:
    """Where the string/bytes whose length starts with byte ``c`` lies: (start, stop), within the data."""
    n, p = _long(b, p, c)
    if n < 0 or n > end - p:
        raise AvroReadError(f"length {n} at byte {p} does not fit the {end - p} byte(s) left")
    return p, p + n


def _count(b: bytes, p: int, c: int, end: int) -> tuple[int, int]:
    """An array/map block count (a negative count is followed by the block's byte size)."""
    n, p = _long(b, p, c)
    if n < 0:  # the block's byte size follows: read and ignored
        n = -n
        p += 1
        _, p = _varint(b, p, b[p - 1])
    if n > end - p:  # every item takes at least one byte
        raise AvroReadError(f"block of {n} item(s) at byte {p} cannot fit the {end - p} byte(s) left")
    return n, p


def _bad_index(what: str, raw: int, p: int):
    """``what`` names the field and its type (``outcome: enum AccessOutcome``); ``raw`` is the zigzag varint."""
    value = (raw >> 1) ^ -(raw & 1)
    return AvroReadError(f"{what} index {value} at byte {p} is out of range")


class _Source:
    """Lines of generated code with fresh local names."""

    def __init__(self):
        self.lines: list[str] = []
        self.consts: dict[str, object] = {}
        self.counter = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, value, prefix: str = "K") -> str:
        name = self.name(prefix)
        self.consts[name] = value
        return name

    def add(self, depth: int, *lines: str) -> None:
        self.lines.extend("    " * depth + line for line in lines)


def _min_size(t, ns: str, named: dict) -> int:
    """The fewest bytes a value of ``t`` can take (0 only for null and empty records)."""
    if isinstance(t, list):
        return 1
    if isinstance(t, str):
        if t == "null":
            return 0
        if t in ("float", "double"):
            return 4 if t == "float" else 8
        if t in _PRIMITIVES:
            return 1
        t = named[t if "." in t else f"{ns}.{t}"]
    if t["type"] == "record":
        inner = _full_name(t, ns).rpartition(".")[0]
        return sum(_min_size(f["type"], inner, named) for f in t["fields"])
    return _min_size(t["type"], ns, named) if t["type"] not in ("enum", "array", "map") else 1


class _ReaderCompiler:
    def __init__(self):
        self.src = _Source()
        self.named: dict[str, dict] = {}  # full name -> schema dict, to inline references
        self.open: set[str] = set()  # records being compiled: a reference to one is recursion

    def read(self, t, ns: str, target: str, d: int, first: str = "", path: str = "(record)") -> None:
        """Emit code at depth ``d`` that reads a value of type ``t`` into the local ``target``.

        ``path`` names the field in errors (``actor.type``, ``data_categories[]``): an
        out-of-range enum or union index is refused naming it.
        """
        add = self.src.add
        if isinstance(t, list):
            if len(t) != 2 or "null" not in t:
                raise SchemaError("only [\"null\", T] unions are supported")
            null_raw = 2 * t.index("null")
            add(d, "c = b[p]", "p += 1", "if c > 0x7F:", "    c, p = _varint(b, p, c)",
                f"if c == {null_raw}:", f"    {target} = None", f"elif c == {2 - null_raw}:")
            self.read(t[1 - t.index("null")], ns, target, d + 1, path=path)
            add(d, "else:", f"    raise _bad_index({path + ': union'!r}, c, p)")
            return
        if isinstance(t, str) and t not in _PRIMITIVES:
            full = t if "." in t else f"{ns}.{t}"
            if full not in self.named or full in self.open:
                raise SchemaError(f"unknown or recursive type {t!r}")
            t = self.named[full]
            ns = full.rpartition(".")[0]
        kind = t if isinstance(t, str) else t["type"]
        logical = t.get("logicalType") if isinstance(t, dict) else None
        if logical is not None and (logical, kind) not in (("uuid", "string"), ("timestamp-micros", "long")):
            raise SchemaError(f"cannot read logicalType {logical!r} on {kind!r}")
        if kind in ("long", "int"):
            add(d, "c = b[p]", "p += 1", "if c < 0x80:", f"    {target} = (c >> 1) ^ -(c & 1)",
                "else:", "    c, p = _varint(b, p, c)", f"    {target} = (c >> 1) ^ -(c & 1)")
            if logical == "timestamp-micros":
                add(d, f"{target} = _EPOCH + _MICROSECOND * {target}")  # = fastavro's, 2.5x faster
        elif kind in ("string", "bytes"):
            # One byte of length (< 64 bytes, the usual case) is not bounds-checked here: a slice
            # past the end leaves p > end, and the next b[p] or the final check catches it.
            add(d, "c = b[p]", "if c & 0x81:", "    p, q = _span(b, p + 1, c, end)", "else:", "    p += 1",
                "    q = p + (c >> 1)", f"{target} = b[p:q]{'.decode()' if kind == 'string' else ''}", "p = q")
        elif kind == "boolean":
            add(d, "c = b[p]", "p += 1", "if c > 1:",
                "    raise _AvroReadError(f'boolean byte {c} at byte {p - 1} is neither 0 nor 1')",
                f"{target} = c == 1")
        elif kind in ("float", "double"):
            size, fmt = (4, "<f") if kind == "float" else (8, "<d")
            unpack = self.src.const(struct.Struct(fmt).unpack_from, "U")
            add(d, f"if p + {size} > end:", f"    raise _AvroReadError('{kind} at byte ' + str(p) + ' ends early')",
                f"{target} = {unpack}(b, p)[0]", f"p += {size}")
        elif kind == "null":
            add(d, f"{target} = None")
        elif kind == "enum":
            full = _full_name(t, ns)
            self.named[full] = t
            symbols = self.src.const({2 * i: s for i, s in enumerate(t["symbols"])}, "E")
            add(d, "c = b[p]", "p += 1", "if c > 0x7F:", "    c, p = _varint(b, p, c)",
                f"{target} = {symbols}.get(c)", f"if {target} is None:",
                f"    raise _bad_index({path + ': enum ' + t['name']!r}, c, p)")
        elif kind == "record":
            full = _full_name(t, ns)
            self.named[full] = t
            self.open.add(full)
            inner = full.rpartition(".")[0]
            names = []
            for f in t["fields"]:
                local = self.src.name("v")
                self.read(f["type"], inner, local, d,
                          path=f["name"] if path == "(record)" else f"{path}.{f['name']}")
                names.append((f["name"], local))
            self.open.discard(full)
            add(d, f"{target} = {{{first}{', '.join(f'{n!r}: {v}' for n, v in names)}}}")
        elif kind in ("array", "map"):
            item_type = t["items"] if kind == "array" else t["values"]
            if _min_size(item_type, ns, self.named) < 1:
                raise SchemaError(f"cannot bound the length of an {kind} of zero-size items")
            item, append = self.src.name("x"), self.src.name("append")
            add(d, f"{target} = {'[]' if kind == 'array' else '{}'}", "c = b[p]", "p += 1", "if c:")
            if kind == "array":
                add(d + 1, f"{append} = {target}.append")
            # A count of more than one byte may still be 0 (80 00, a non-minimal zero): that ends the blocks too.
            add(d + 1, "while c:", "    if c & 0x81 or (c >> 1) > end - p:", "        n, p = _count(b, p, c, end)",
                "        if not n:", "            break", "    else:", "        n = c >> 1", "    for _ in range(n):")
            if kind == "map":
                key = self.src.name("k")
                self.read("string", ns, key, d + 3)
            self.read(item_type, ns, item, d + 3, path=path + "[]")
            add(d + 3, f"{append}({item})" if kind == "array" else f"{target}[{key}] = {item}")
            add(d + 2, "c = b[p]", "p += 1")
        else:
            raise SchemaError(f"cannot read Avro type {kind!r}")


def compile_reader(schema: dict, ns: str = "", first: dict | None = None):
    """A ``read(data: bytes, pos) -> (record dict, end position)`` function for the record ``schema``.

    ``first``: constant items placed at the start of the record dict (the codec
    puts ``"type"`` there, as ``events.validate`` does). Raises SchemaError for a
    schema it does not cover (the codec then keeps fastavro for it).
    """
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise SchemaError("the reader is compiled for a record schema")
    compiler = _ReaderCompiler()
    src = compiler.src
    items = "".join(f"{k!r}: {src.const(v)}, " for k, v in (first or {}).items())
    compiler.read(schema, ns, "r", 1, first=items)
    text = "\n".join(["def read(b, p):", "    end = len(b)", *src.lines, "    if p > end:",
                      "        raise _AvroReadError(f'a string or bytes value runs {p - end} byte(s) past the end')",
                      "    return r, p", ""])
    scope = {"_varint": _varint, "_span": _span, "_count": _count, "_bad_index": _bad_index,
             "_AvroReadError": AvroReadError, "_EPOCH": EPOCH, "_MICROSECOND": timedelta(microseconds=1), **src.consts}
    exec(compile(text, f"<avro reader {_full_name(schema, ns)}>", "exec"), scope)  # noqa: S102 - generated above
    read = scope["read"]
    read.source = text  # for debugging: print(read.source)
    return read


# --- writer ---------------------------------------------------------------------------
# Generated Python source too, one function per schema: every field is written
# inline (a string is its encoded bytes after a length from a table), nested
# records and named types are inlined, so a write makes almost no Python calls.
# Input is a validated event (the codec's contract), so there are no type checks.

#: The encodings of 0 .. 16383 (a length or count up to 16 KiB takes one table lookup).
_SMALL = tuple(long_bytes(n) for n in range(16384))
_NSMALL = len(_SMALL)


def _long_fast(n: int) -> bytes:
    """``long_bytes(n)``; a timestamp of 1987–2254 in µs (eight bytes) without a loop."""
    z = (n << 1) ^ (n >> 63)
    if 0x2000000000000 <= z < 0x100000000000000:
        return ((z & 0x7F) | (z & 0x3F80) << 1 | (z & 0x1FC000) << 2 | (z & 0xFE00000) << 3
                | (z & 0x7F0000000) << 4 | (z & 0x3F800000000) << 5 | (z & 0x1FC0000000000) << 6
                | (z & 0xFE000000000000) << 7 | 0x80808080808080).to_bytes(8, "little")
    return long_bytes(n)


class _WriterCompiler:
    def __init__(self, named: dict):
        self.src = _Source()
        self.named = named  # full name -> schema dict, to inline references
        self.open: set[str] = set()

    def length(self, n: str) -> str:
        return f"(_S[{n}] if {n} < _NS else _lb({n}))"

    def write(self, t, ns: str, x: str, d: int) -> None:
        """Emit code at depth ``d`` that appends the encoding of the value in local ``x`` to ``out``."""
        add, src = self.src.add, self.src
        if isinstance(t, list):  # only ["null", T] / [T, "null"], as events.Validator enforces
            if len(t) != 2 or "null" not in t:
                raise SchemaError("only [\"null\", T] unions are supported")
            null_index = t.index("null")
            add(d, f"if {x} is None:", f"    out += {src.const(long_bytes(null_index), 'T')}", "else:",
                f"    out += {src.const(long_bytes(1 - null_index), 'T')}")
            self.write(t[1 - null_index], ns, x, d + 1)
            return
        if isinstance(t, str) and t not in _PRIMITIVES:
            full = t if "." in t else f"{ns}.{t}"
            if full not in self.named or full in self.open:
                raise SchemaError(f"unknown or recursive type {t!r}")
            t, ns = self.named[full], full.rpartition(".")[0]
        kind = t if isinstance(t, str) else t["type"]
        logical = t.get("logicalType") if isinstance(t, dict) else None
        if logical == "timestamp-micros" and kind == "long":
            # timedelta arithmetic: exact, as times.to_micros (a float timestamp would round)
            delta = src.name("d")
            add(d, f"{delta} = {x} - _EPOCH",
                f"out += _lf(({delta}.days * 86400 + {delta}.seconds) * 1000000 + {delta}.microseconds)")
        elif kind in ("int", "long"):
            add(d, f"out += _S[{x}] if 0 <= {x} < _NS else _lb({x})")
        elif kind in ("string", "bytes"):
            data, n = src.name("b"), src.name("n")
            add(d, f"{data} = {x}.encode()" if kind == "string" else f"{data} = {x}", f"{n} = len({data})",
                f"out += {self.length(n)}", f"out += {data}")
        elif kind == "boolean":
            add(d, f"out += b'\\x01' if {x} else b'\\x00'")
        elif kind in ("float", "double"):
            pack = src.const(struct.Struct("<f" if kind == "float" else "<d").pack, "P")
            add(d, f"out += {pack}({x})")
        elif kind == "null":
            pass
        elif kind == "enum":
            self.named[_full_name(t, ns)] = t
            tags = src.const({symbol: long_bytes(i) for i, symbol in enumerate(t["symbols"])}, "E")
            add(d, f"out += {tags}[{x}]")
        elif kind == "record":
            full = _full_name(t, ns)
            self.named[full] = t
            self.open.add(full)
            inner = full.rpartition(".")[0]
            for f in t["fields"]:
                value = src.name("v")
                add(d, f"{value} = {x}[{f['name']!r}]")
                self.write(f["type"], inner, value, d)
            self.open.discard(full)
        elif kind == "array":
            item = src.name("x")
            add(d, f"if {x}:", f"    out += {self.length(f'len({x})')}", f"    for {item} in {x}:")
            self.write(t["items"], ns, item, d + 2)
            add(d, "out += b'\\x00'")
        elif kind == "map":
            key, item = src.name("k"), src.name("x")
            add(d, f"if {x}:", f"    out += {self.length(f'len({x})')}", f"    for {key}, {item} in {x}.items():")
            self.write("string", ns, key, d + 2)
            self.write(t["values"], ns, item, d + 2)
            add(d, "out += b'\\x00'")
        else:
            raise SchemaError(f"cannot encode Avro type {kind!r}")


def compile_writer(t, ns: str = "", named: dict | None = None):
    """A ``write(value, out: bytearray)`` function for Avro type ``t`` (a validated value: no type checks)."""
    compiler = _WriterCompiler({} if named is None else named)
    compiler.write(t, ns, "value", 1)
    text = "\n".join(["def write(value, out):", *compiler.src.lines, "    return out", ""])
    scope = {"_S": _SMALL, "_NS": _NSMALL, "_lb": long_bytes, "_lf": _long_fast, "_EPOCH": EPOCH,
             **compiler.src.consts}
    name = _full_name(t, ns) if isinstance(t, dict) and "name" in t else str(t)
    exec(compile(text, f"<avro writer {name}>", "exec"), scope)  # noqa: S102 - generated above
    write = scope["write"]
    write.source = text  # for debugging: print(write.source)
    return write
