"""The compiled event validator: schema-driven type checks plus the rules Avro cannot express.

:class:`Validator` compiles one schema per event type into nested closures
once, so a call does no schema walking. ``validate`` checks anything a caller
passes and converts only Python types (ISO strings and other offsets become
aware UTC datetimes, a ``uuid.UUID`` its text); it never rewrites a string;
``typed_check`` is the cheap path for values the Avro reader produced, whose
Python types already match the schema: only the rules run (UUID form,
non-empty strings, 1 to 1,000 unique subjects, dotted codes, an order for
DELAYED_BY_ORDER...: ``event_rules``). ``ledger.events`` re-exports the public names.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from operator import itemgetter

from ledger.errors import SchemaError, ValidationError

from .event_rules import FIELD_RULES, RECORD_RULES, _identifier
from .event_rules import Bad as _Bad
from .validator_fast import FieldSpec, RecordSpec, compile_fast

NAMESPACE = "ledger.events"

UTC = timezone.utc
_MISSING = object()
_UUID_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LONG = (-(2**63), 2**63 - 1)
_INT = (-(2**31), 2**31 - 1)


# --- the compiled validator ---------------------------------------------------

def _path(parts: list[str]) -> str:
    out = ""
    for part in reversed(parts):
        out += part if part.startswith("[") or not out else "." + part
    return out or "(event)"


def _typename(v: object) -> str:
    return "null" if v is None else type(v).__name__


def _utf8(v: str) -> str:
    """``v`` if it can be written as UTF-8 (Avro's strings): no unpaired surrogate like '\\ud800'."""
    if v.isascii():
        return v
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as err:
        raise _Bad(f"contains {v[err.start]!r}, an unpaired surrogate, which UTF-8 (and so Avro) "
                   "cannot encode") from None
    return v


def _check_str(v):
    if type(v) is str and v:
        return _utf8(v)
    raise _Bad("must not be empty" if v == "" else f"expected a string, got {_typename(v)}")


def _check_uuid(v):
    """Only the canonical text is a UUID here: the id is evidence, so it is stored as it was sent.

    ``uuid.UUID()`` would accept (and rewrite) ``+``/``_``/whitespace/``0x``, braces,
    ``urn:uuid:``, missing dashes and upper case, so two different ids on the wire
    could become one and a distinct event be dropped as a repeat. A ``uuid.UUID``
    object (Python callers) is its canonical text.
    """
    if type(v) is str and _UUID_CANONICAL.fullmatch(v):
        return v
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, str):
        raise _Bad(f"{v[:80]!r} is not a canonical UUID: expected 8-4-4-4-12 lowercase hexadecimal digits "
                   "like 0b7c0d1e-2f3a-4b5c-8d6e-7f8091a2b3c4 (no braces, prefix, spaces or upper case)")
    raise _Bad(f"expected a UUID string, got {_typename(v)}")


def _check_time(v):
    if isinstance(v, datetime):
        if v.tzinfo is UTC:
            return v
        if v.utcoffset() is None:
            raise _Bad("datetime has no UTC offset; pass an aware datetime")
        return _to_utc(v)
    if isinstance(v, str):
        try:
            t = datetime.fromisoformat(v)
        except ValueError:
            raise _Bad(f"not an ISO-8601 timestamp: {v!r}") from None
        if t.utcoffset() is None:
            raise _Bad(f"timestamp {v!r} has no UTC offset; add 'Z' or '+00:00'")
        return _to_utc(t)
    raise _Bad(f"expected an ISO-8601 timestamp with offset or an aware datetime, got {_typename(v)}")


def _to_utc(t: datetime) -> datetime:
    try:
        return t.astimezone(UTC)
    except OverflowError:
        raise _Bad(f"{t.isoformat()} is outside the representable range in UTC") from None


def _check_bool(v):
    if type(v) is bool:
        return v
    raise _Bad(f"expected a boolean, got {_typename(v)}")


def _integer(lo: int, hi: int, kind: str):
    def check(v):
        if type(v) is int and lo <= v <= hi:
            return v
        raise _Bad(f"expected an {kind}, got {v!r}" if type(v) is int else f"expected an {kind}, got {_typename(v)}")
    return check


def _check_float(v):
    if type(v) in (int, float):
        return float(v)
    raise _Bad(f"expected a number, got {_typename(v)}")


def _check_bytes(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    raise _Bad(f"expected bytes, got {_typename(v)}")


def _enum(symbols: list[str]):
    allowed = frozenset(symbols)
    listing = ", ".join(symbols)

    def check(v):
        if type(v) is str and v in allowed:
            return v
        raise _Bad(f"{v!r} is not one of: {listing}")
    return check


def _array(item):
    def check(v):
        if type(v) not in (list, tuple):
            raise _Bad(f"expected a list, got {_typename(v)}")
        i = 0
        try:
            out = []
            for i, x in enumerate(v):  # noqa: B007 - the except clause names the index that failed
                out.append(item(x))
            return out
        except _Bad as bad:
            bad.parts.append(f"[{i}]")
            raise
    return check


def _map(value):
    def check(v):
        if not isinstance(v, Mapping):
            raise _Bad(f"expected an object, got {_typename(v)}")
        out = {}
        for k, x in v.items():
            if type(k) is not str:
                raise _Bad(f"keys must be strings, got {_typename(k)}")
            try:
                _utf8(k)
            except _Bad as bad:
                bad.parts.append(f"[{json.dumps(k)}]")
                raise
            try:
                out[k] = value(x)
            except _Bad as bad:
                bad.parts.append(f"[{json.dumps(k)}]")
                raise
        return out
    return check


def _attribute_value(v):
    if type(v) is str:  # attribute values may be empty
        return _utf8(v)
    raise _Bad(f"expected a string, got {_typename(v)}")


class Validator:
    """Checks and normalizes events against one schema per event type (the newest).

    ``fast=False`` keeps only the reference closures (validator_fast.py's generated
    functions are held to them by tests/unit/test_validator_fast.py).
    """

    def __init__(self, schemas: Mapping[str, Mapping], *, fast: bool = True):
        self.schemas = dict(schemas)
        compiled = {t: self._compile_event(t, s, fast) for t, s in self.schemas.items()}
        self._checks = {t: check for t, (check, _) in compiled.items()}
        self._typed = {t: typed for t, (_, typed) in compiled.items()}

    def validate(self, obj: Mapping) -> dict:
        """Return a new normalized event dict or raise ValidationError naming the field."""
        try:
            event_type = obj["type"]
        except (KeyError, TypeError, IndexError):
            if not isinstance(obj, Mapping):
                raise ValidationError("(event)", f"expected an object, got {_typename(obj)}") from None
            raise ValidationError("type", f"is required; one of {', '.join(self._checks)}") from None
        check = self._checks.get(event_type) if type(event_type) is str else None
        if check is None:
            raise ValidationError("type", f"{event_type!r} is not one of: {', '.join(self._checks)}")
        try:
            return check(obj)
        except _Bad as bad:
            raise ValidationError(_path(bad.parts), bad.reason, event_type) from None

    def typed_check(self, event_type: str) -> Callable[[dict], bool]:
        """The cheap check for an event whose values the Avro reader produced from this schema.

        ``check(event)`` is True only when ``validate(event)`` would return an
        equal event; it runs the rules but no type checks, so it requires every
        field present with the type the schema gives it (str, int, aware UTC
        datetime, list, dict, a symbol of the enum...). False means "ask
        ``validate``", which then normalizes (an upper-case UUID) or raises.
        """
        return self._typed[event_type]

    def _compile_event(self, event_type: str, schema: Mapping, fast: bool):
        if _full_name(schema, NAMESPACE) != f"{NAMESPACE}.{event_type}":
            raise SchemaError(f"{event_type}: record name must be {NAMESPACE}.{event_type}")
        compiler = _Compiler()
        check = compiler.record(schema, NAMESPACE, top=event_type)
        if fast:
            check = compile_fast(event_type, schema, NAMESPACE, compiler.specs, check, missing=_MISSING,
                                 uuid_match=_UUID_CANONICAL.fullmatch, identifier_rule=_identifier)
        return check, compiler.typed_checks[_full_name(schema, NAMESPACE)]


def _full_name(schema: Mapping, namespace: str) -> str:
    name = schema["name"]
    return name if "." in name else f"{schema.get('namespace', namespace)}.{name}"


class _Compiler:
    """Turns one self-contained Avro schema into nested check closures."""

    def __init__(self):
        self.named: dict[str, object] = {}
        self.typed: dict[str, tuple] = {}  # full name -> spec on the typed path (see _typed_record)
        self.consts: dict[str, object] = {"_Bad": _Bad, "_uuid": _UUID_CANONICAL.fullmatch}
        self.typed_checks: dict[str, Callable[[dict], bool]] = {}  # full name -> generated check
        self.specs: dict[str, RecordSpec] = {}  # full name -> what validator_fast needs of each record

    def type_(self, t, ns: str, owner: str, field: str):
        """``(check, spec)``: the full check, and what an Avro-typed value still needs (see _typed_record)."""
        logical = t.get("logicalType") if isinstance(t, dict) else None
        kind = t.get("type") if isinstance(t, dict) else t
        if isinstance(t, list):
            branches = [b for b in t if b != "null"]
            if len(branches) != 1 or len(t) != 2:
                raise SchemaError(f"{owner}.{field}: only [\"null\", T] unions are supported")
            return self.type_(branches[0], ns, owner, field)
        if logical == "uuid" and kind == "string":
            return _check_uuid, ("_uuid({v})",)
        if logical == "timestamp-micros" and kind == "long":
            return _check_time, ()  # the reader builds aware UTC datetimes
        if logical is not None:
            raise SchemaError(f"{owner}.{field}: unsupported logicalType {logical!r}")
        if kind == "string":
            return _check_str, _NON_EMPTY
        if kind in ("long", "int"):
            lo, hi = _LONG if kind == "long" else _INT
            check = _integer(lo, hi, "integer" if kind == "long" else "32-bit integer")
            return check, (f"{lo} <= " + "{v}" + f" <= {hi}",)
        simple = {"boolean": _check_bool, "float": _check_float, "double": _check_float, "bytes": _check_bytes}
        if kind in simple:
            return simple[kind], ()
        if isinstance(kind, str) and not isinstance(t, dict):  # a reference to a named type
            full = kind if "." in kind else f"{ns}.{kind}"
            if full not in self.named:
                raise SchemaError(f"{owner}.{field}: unknown type {kind!r}")
            return self.named[full], self.typed[full]
        if kind == "enum":
            check = _enum(t["symbols"])
            full = _full_name(t, ns)
            self.named[full], self.typed[full] = check, ()  # the reader yields only the schema's symbols
            return check, ()
        if kind == "record":
            check = self.record(t, ns)
            return check, self.typed[_full_name(t, ns)]
        if kind in ("array", "map"):
            items = t["items"] if kind == "array" else t["values"]
            if kind == "map" and items == "string":
                return _map(_attribute_value), ()  # attribute values may be empty
            check, spec = self.type_(items, ns, owner, field)
            var = f"x{len(self.consts)}"  # unique: nested arrays need distinct names
            if kind == "array":
                return _array(check), _items_spec(spec, var, "{v}")
            return _map(check), _items_spec(spec, var, "{v}.values()")
        raise SchemaError(f"{owner}.{field}: unsupported Avro type {kind!r}")

    def record(self, schema: Mapping, ns: str, top: str | None = None):
        full = _full_name(schema, ns)
        ns = full.rpartition(".")[0]
        short = "Event" if top else full.rpartition(".")[2]
        fields, typed_fields, specs = [], [], []
        for f in schema["fields"]:
            name, t = f["name"], f["type"]
            check, spec = self.type_(t, ns, short, name)
            rule = FIELD_RULES.get(f"{short}.{name}")
            nullable = isinstance(t, list) and "null" in t
            if rule is not None:
                check = _then(check, rule)
            typed_fields.append((name, spec, nullable, rule))
            if top and name == "event_id":
                default = _new_event_id
            elif "default" in f:
                default = _default_factory(f["default"], t)
            else:
                default = None
            fields.append((name, check, nullable, default, check is _check_str))
            specs.append(FieldSpec(name, check, nullable, default, "default" in f and f["default"] is None, rule,
                                   default is _new_event_id))
        rule = RECORD_RULES.get(full.rpartition(".")[2])
        self.specs[full] = RecordSpec(full, specs, rule)
        check = _record(full, tuple(fields), rule, top)
        self.named[full] = check
        typed, inline = _typed_record(full.replace(".", "_"), typed_fields, rule, self.const, self.consts)
        self.typed[full] = inline if inline is not None else (f"{self.const(typed)}" + "({v})",)
        self.typed_checks[full] = typed
        return check

    def const(self, value) -> str:
        key = f"K{len(self.consts)}"
        self.consts[key] = value
        return key


def _then(check, rule):
    def checked(v):
        return rule(check(v))
    return checked


_IDS_PER_READ = 64
_random = threading.local()  # per thread: random hex of ids not yet given out


def _new_event_id() -> str:
    """A random (version 4) UUID; 3x faster than ``str(uuid.uuid4())``, which matters at 25k events/s.

    The random bytes come from os.urandom 64 ids at a time: each call of it releases the GIL, and
    in a busy server a thread that releases it waits a switch interval (5 ms) to get it back, which
    made most of a recorded read's wall time (the HTTP API's recording under load).
    """
    try:
        x = _random.hexes.pop()
    except (AttributeError, IndexError):
        data = os.urandom(16 * _IDS_PER_READ).hex()
        _random.hexes = [data[i : i + 32] for i in range(0, len(data), 32)]
        x = _random.hexes.pop()
    return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-{'89ab'[int(x[16], 16) & 3]}{x[17:20]}-{x[20:]}"


def _forget_random() -> None:
    """In a forked child: the parent's unused random bytes must not become the child's ids too."""
    global _random
    _random = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_random)


def _default_factory(default, t):
    if default is None:
        return lambda: None
    first = t[0] if isinstance(t, list) else t
    if isinstance(first, dict) and first.get("logicalType") == "timestamp-micros":
        value = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=default)
        return lambda: value
    return lambda: json.loads(json.dumps(default))  # a fresh copy each time ({} and [] are mutable)


def _record(full: str, fields: tuple, rule, top: str | None):
    names = frozenset(f[0] for f in fields) | ({"type"} if top else frozenset())

    def check(v):
        if type(v) is not dict and not isinstance(v, Mapping):
            raise _Bad(f"expected an object ({full}), got {_typename(v)}")
        out = {"type": top} if top else {}
        seen = 1 if top else 0
        for name, field_check, nullable, default, plain_str in fields:
            x = v.get(name, _MISSING)
            if plain_str and type(x) is str and x and x.isascii():  # the most common case, without a call
                seen += 1
                out[name] = x
            elif x is _MISSING:
                if default is None:
                    raise _Bad("is required", name)
                out[name] = default()
            elif x is None:
                seen += 1
                if nullable:
                    out[name] = None
                elif default is _new_event_id:  # event_id: None means "assign one"
                    out[name] = default()
                else:
                    raise _Bad("must not be null", name)
            else:
                seen += 1
                try:
                    out[name] = field_check(x)
                except _Bad as bad:
                    bad.parts.append(name)
                    raise
        if seen != len(v):
            unknown = sorted(str(k) for k in v if k not in names)
            raise _Bad(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}", unknown[0])
        if rule is not None:
            rule(out)
        return out
    return check


# --- the typed path: values from the Avro reader --------------------------------
# What an Avro-typed value still needs is a "spec": a tuple of Python conditions
# on "{v}" that must all hold (() = any value of the type is valid). An event's
# spec becomes one generated function (about 3x faster than a closure per
# field; nested records without rules inlined), returning False as soon as
# something fails or would be normalized.

_NON_EMPTY = ('{v} != ""',)  # None (a null optional string) != "" as well


def _items_spec(spec: tuple, var: str, values: str) -> tuple:
    """The spec of an array (``values="{v}"``) or map (``"{v}.values()"``) whose items have ``spec``."""
    if not spec:
        return ()
    if spec == _NON_EMPTY:
        return ('"" not in ' + values,)
    conditions = " and ".join(f"({c.replace('{v}', var)})" for c in spec)
    return (f"all({conditions} for {var} in " + values + ")",)


def _typed_record(name: str, fields: list[tuple], rule, const: Callable[[object], str], scope: dict):
    """The generated check of one record, and its spec for a parent to inline (None when it runs rules).

    ``fields``: (name, spec, nullable, field rule or None); ``const(value)``
    names a value in ``scope``, the generated code's globals.
    """
    conditions = []  # on "{v}", the record
    plain = [f for f, spec, _, field_rule in fields if spec == _NON_EMPTY and field_rule is None]
    if len(plain) > 1:  # one C-level lookup of every plain string field
        conditions.append(f'"" not in {const(itemgetter(*plain))}' + "({v})")
    elif plain:
        conditions.append("{v}" + f'[{plain[0]!r}] != ""')
    ruled = []
    for f, spec, nullable, field_rule in fields:
        src = "{v}" + f"[{f!r}]"
        if spec and f not in plain:
            joined = " and ".join(f"({c.replace('{v}', src)})" for c in spec)
            conditions.append(f"({src} is None or {joined})" if nullable else joined)
        if field_rule is not None:
            ruled.append((src.replace("{v}", "r"), nullable, const(field_rule)))
    lines = [f"def typed_{name}(r):"]
    lines += [f"    if not ({c.replace('{v}', 'r')}): return False" for c in conditions]
    for src, nullable, rule_name in ruled:  # the rule must hold and leave the value as it is ("de" -> "DE")
        indent = "        " if nullable else "    "
        lines += [f"    v = {src}", *(["    if v is not None:"] if nullable else []),
                  f"{indent}try:", f"{indent}    if {rule_name}(v) != v: return False",
                  f"{indent}except _Bad:", f"{indent}    return False"]
    if rule is not None:
        lines += ["    try:", f"        {const(rule)}(r)", "    except _Bad:", "        return False"]
    lines.append("    return True")
    text = "\n".join(lines)
    exec(compile(text, f"<typed check {name}>", "exec"), scope)  # noqa: S102 - generated above
    check = scope[f"typed_{name}"]
    check.source = text  # for debugging
    return check, (tuple(conditions) if not ruled and rule is None else None)
