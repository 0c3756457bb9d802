"""The validator's fast path: one generated function per event type, the closures as its reference.

``Validator`` (validator.py) compiles each schema into nested closures: the
reference, which names the field and the reason of every failure. This module
generates, per event type, one function that does what the reference does for
the values a service usually passes, in straight-line code: each field read
once with ``dict.get``, a type test inline (an exact ``str`` of ASCII, a
canonical UUID, an aware UTC ``datetime``, a symbol of the enum, ...), nested
records inlined, defaults filled, the same rules called, and the result built
with one dict display in schema order. Anything else in a field (an ISO time
string, a ``uuid.UUID``, non-ASCII text) goes through that field's reference
check; anything that fails (a wrong type, a broken rule, an unknown field)
makes the whole event go through the reference, which raises the error. So
the fast path never decides what is an error, and returns only what the
reference would return (tests/unit/test_validator_fast.py holds it to the
reference on valid, loose and hostile events).

Measured (bench/bench_codec.py --events 5000 --repeat 3, best of 3, same run,
2026-12-03): 6.42 µs an event over the simulated mix against 10.07 for the
reference closures (4.71 against 7.80 for a one-subject DataAccessed). The SDK's
``emit`` costs 20–35 µs an event here (bench/profile_producer.py), so the ~3.6 µs
saved are 10–18% of the stage it serves: it stays (issue 13 item 8's rule).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from ledger.errors import SchemaError

UTC = timezone.utc


class FieldSpec:
    """What the reference knows of one field: its type, its check (rule included), null and default handling."""

    __slots__ = ("check", "default", "default_none", "name", "new_id", "nullable", "rule")

    def __init__(self, name: str, check, nullable: bool, default, default_none: bool, rule, new_id: bool):
        self.name, self.check, self.nullable = name, check, nullable
        self.default = default  # the reference's factory of the default, None if the field has none
        self.default_none = default_none  # the default is null
        self.rule = rule  # the field rule, already inside ``check``; None if none
        self.new_id = new_id  # event_id: missing or None means "assign one"


class RecordSpec:
    """A record's fields in schema order and its record rule (None if it has none)."""

    __slots__ = ("fields", "full", "rule")

    def __init__(self, full: str, fields: list[FieldSpec], rule):
        self.full, self.fields, self.rule = full, fields, rule


def _plain_strings(items: list) -> bool:
    """True when every item is an exact, non-empty ASCII ``str`` (what the reference keeps as it is)."""
    for s in items:
        if type(s) is not str or not s or not s.isascii():
            return False
    return True


class _Fallback(Exception):
    """Raised inside the generated code: this event goes through the reference."""


class _Generator:
    def __init__(self, records: Mapping[str, RecordSpec], named: dict, scope: dict, identifier_rule):
        self.records = records
        self.named = named  # full name -> schema of every record and enum
        self.lines: list[str] = []
        self.scope = {"_F": _Fallback, "_dt": datetime, "_UTC": UTC, "_strs": _plain_strings, **scope}
        self.identifier_rule = identifier_rule
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, value, prefix: str = "K") -> str:
        name = self.name(prefix)
        self.scope[name] = value
        return name

    def add(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def resolve(self, t, ns: str):
        """(the type with its union and named references resolved, its namespace)."""
        if isinstance(t, list):
            t = next(b for b in t if b != "null")
        if isinstance(t, str) and t not in _PRIMITIVES:
            full = t if "." in t else f"{ns}.{t}"
            t = self.named[full]
            ns = full.rpartition(".")[0]
        return t, ns

    def record(self, full: str, schema: Mapping, ns: str, src: str, depth: int, top: str | None) -> str:
        """Code reading the dict in local ``src`` into a new local; returns that local's name."""
        spec = self.records[full]
        inner = full.rpartition(".")[0]
        get, missing, out = self.name("g"), self.name("m"), self.name("r")
        can_miss = any(f.default is not None or f.new_id for f in spec.fields)
        self.add(depth, f"{get} = {src}.get")
        if can_miss:
            self.add(depth, f"{missing} = 0")
        items = [f"'type': {top!r}"] if top else []
        schema_fields = {f["name"]: f for f in schema["fields"]}
        for f in spec.fields:
            local = self.field(f, schema_fields[f.name]["type"], inner, get, missing, depth)
            items.append(f"{f.name!r}: {local}")
        expected = len(spec.fields) + (1 if top else 0)
        self.add(depth, f"if len({src}) != {expected}{f' - {missing}' if can_miss else ''}:")
        self.add(depth + 1, "raise _F")  # an unknown field: the reference names it
        self.add(depth, f"{out} = {{{', '.join(items)}}}")
        if spec.rule is not None:
            self.add(depth, f"{self.const(spec.rule, 'R')}({out})")
        return out

    def field(self, f: FieldSpec, t, ns: str, get: str, missing: str, depth: int) -> str:
        x, local = self.name("x"), self.name("v")
        add = self.add
        add(depth, f"{x} = {get}({f.name!r}, _M)")
        resolved, inner = self.resolve(t, ns)
        fast = self.fast_test(f, resolved, x)
        branches = []
        if fast is not None:
            add(depth, f"if {fast}:")
            if isinstance(resolved, dict) and resolved.get("type") == "record":
                full = _full_name(resolved, inner)
                nested = self.record(full, resolved, inner, x, depth + 1, None)
                add(depth + 1, f"{local} = {nested}")
            else:
                add(depth + 1, f"{local} = {self.converted(resolved, x)}")
            if f.rule is not None and not self.rule_in_test(f, resolved):
                add(depth + 1, f"{self.const(f.rule, 'R')}({local})")
            branches.append("elif")
        else:
            branches.append("if")
        keyword = branches[0]
        if f.nullable or f.new_id:
            add(depth, f"{keyword} {x} is None:")
            add(depth + 1, f"{local} = {self.const(f.default, 'D')}()" if f.new_id else f"{local} = None")
            keyword = "elif"
        if f.default is not None or f.new_id:
            add(depth, f"{keyword} {x} is _M:")
            add(depth + 1, f"{missing} += 1")
            add(depth + 1, f"{local} = {self.default_value(f)}")
            keyword = "elif"
        else:
            add(depth, f"{keyword} {x} is _M:")
            add(depth + 1, "raise _F")  # required: the reference says so
            keyword = "elif"
        add(depth, "else:")
        add(depth + 1, f"{local} = {self.const(f.check, 'C')}({x})")  # the reference check of this field
        return local

    def default_value(self, f: FieldSpec) -> str:
        return "None" if f.default_none else f"{self.const(f.default, 'D')}()"

    def rule_in_test(self, f: FieldSpec, t) -> bool:
        return f.rule is self.identifier_rule and t == "string"

    def fast_test(self, f: FieldSpec, t, x: str) -> str | None:
        """A Python condition true only for values the reference returns unchanged (or converts as ``converted``)."""
        kind = t if isinstance(t, str) else t["type"]
        logical = t.get("logicalType") if isinstance(t, dict) else None
        if logical == "uuid":
            return f"type({x}) is str and _uuid({x})"
        if logical == "timestamp-micros":
            return f"type({x}) is _dt and {x}.tzinfo is _UTC"
        if kind == "string":
            # Printable text has no surrogate (so UTF-8 can carry it) and no Cc or Cf character (so
            # _identifier returns it as it is); other text (a newline in a note) takes the field's check.
            if f.rule is self.identifier_rule:
                return f"type({x}) is str and {x} and {x}.isprintable()"
            return f"type({x}) is str and {x} and ({x}.isascii() or {x}.isprintable())"
        if kind == "long":
            return f"type({x}) is int and -9223372036854775808 <= {x} <= 9223372036854775807"
        if kind == "int":
            return f"type({x}) is int and -2147483648 <= {x} <= 2147483647"
        if kind == "boolean":
            return f"({x} is True or {x} is False)"
        if kind == "enum":
            return f"type({x}) is str and {x} in {self.const(frozenset(t['symbols']), 'E')}"
        if kind == "record":
            return f"type({x}) is dict"
        if kind == "array" and t["items"] == "string":
            return f"type({x}) is list and _strs({x})"
        if kind == "map":
            return f"type({x}) is dict and not {x}"  # the usual attributes: none
        return None  # float, bytes, other arrays: the reference check alone

    def converted(self, t, x: str) -> str:
        kind = t if isinstance(t, str) else t["type"]
        if kind == "array":
            return f"list({x})"  # a new list, as the reference returns
        if kind == "map":
            return "{}"
        return x


_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")


def _full_name(schema: Mapping, namespace: str) -> str:
    name = schema["name"]
    return name if "." in name else f"{schema.get('namespace', namespace)}.{name}"


def compile_fast(event_type: str, schema: Mapping, ns: str, records: Mapping[str, RecordSpec],
                 reference: Callable, *, missing: object, uuid_match, identifier_rule) -> Callable:
    """``check(obj) -> normalized dict`` equal to ``reference(obj)``; every error is raised by ``reference``.

    ``records``: the reference's :class:`RecordSpec` of every record in ``schema`` by full name;
    ``missing``: the reference's marker of an absent field; ``uuid_match``: its canonical-UUID
    match; ``identifier_rule``: its rule for identifiers, whose printable case the generated test
    does inline.
    """
    scope = {"_M": missing, "_ref": reference, "_uuid": uuid_match}
    gen = _Generator(records, _named_types(schema, ns), scope, identifier_rule)
    full = _full_name(schema, ns)
    gen.add(0, "def check(v):")
    gen.add(1, "if type(v) is not dict:")
    gen.add(2, "return _ref(v)")
    gen.add(1, "try:")
    out = gen.record(full, schema, full.rpartition(".")[0], "v", 2, event_type)
    gen.add(2, f"return {out}")
    gen.add(1, "except Exception:")
    gen.add(2, "pass  # invalid, or a case the fast path leaves to the reference")
    gen.add(1, "return _ref(v)")
    text = "\n".join(gen.lines) + "\n"
    try:
        exec(compile(text, f"<fast validator {event_type}>", "exec"), gen.scope)  # noqa: S102 - generated above
    except SyntaxError as err:  # pragma: no cover - a generator bug, not a user error
        raise SchemaError(f"{event_type}: cannot generate the fast validator: {err}") from err
    check = gen.scope["check"]
    check.source = text  # for debugging: print(check.source)
    return check


def _named_types(schema, ns: str, named: dict | None = None) -> dict:
    """Every named type (record, enum) defined in ``schema``, by full name."""
    named = {} if named is None else named
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, ns, named)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum"):
            full = _full_name(schema, ns)
            named[full] = schema
            ns = full.rpartition(".")[0]
        if kind == "record":
            for f in schema["fields"]:
                _named_types(f["type"], ns, named)
        elif kind == "array":
            _named_types(schema["items"], ns, named)
        elif kind == "map":
            _named_types(schema["values"], ns, named)
        elif isinstance(kind, (dict, list)):
            _named_types(kind, ns, named)
    return named
