"""The event model as plain dicts: validation, JSON form, derived ids, Kafka keys.

Start with :func:`validate`: it takes a mapping with a ``"type"`` key (one of
:data:`EVENT_TYPES`) and returns a *new* normalized dict (see
docs/architecture.md, "Events"), or raises :class:`ValidationError` naming the
field as a dotted path (``actor.type``, ``subject_ids[3]``).

The field list of each event comes from the newest ``schemas/<Event>/vN.avsc``
(one source of truth for the wire and for validation); the checks Avro cannot
express (UUIDs, UTC offsets, 1 to 1,000 unique subjects, dotted category codes,
an order reference for DELAYED_BY_ORDER...) are the rules in
``ledger/model/validator.py``, where :class:`Validator` is compiled once per schema
set into closures, so a call does no schema walking.

The readable JSON form (:func:`readable_json`) has a fast path generated per
event type (:func:`compile_json_form`), held to ``canonical_json(to_json(e))``
byte for byte by tests/unit/test_index_json.py. Measured (bench/bench_codec.py,
5,000 simulated events, median of 3 runs of best-of-3): 7.28 µs an event
against 13.01 µs for one pass of the C encoder (``json.dumps``' engine), 5.7 µs
saved on the writer's ~115 µs serial ingest of an event (BENCHMARKS.md,
"Where the time goes now"): 5.0%, at the threshold of issue 13 item 8.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from json.encoder import c_make_encoder, encode_basestring
from pathlib import Path

from ledger.errors import SchemaError, ValidationError

from .event_rules import DELAYED, MAX_SUBJECTS
from .times import time_text
from .validator import NAMESPACE, Validator

__all__ = ["EVENT_TYPES", "SUBJECTLESS_TYPES", "ROUTING_KEY_FIELD", "NAMESPACE", "MAX_SUBJECTS", "EVENT_ID_NAMESPACE", "DELAYED", "ValidationError",
           "Validator", "schemas_dir", "schema_files", "read_schema_file", "newest_schemas", "default_validator",
           "validate", "time_text", "to_json", "canonical_json", "readable_json", "compile_json_form",
           "derive_event_id", "event_key"]

#: The event types: the one list (queries, exports, schema loading and tests read it from here).
#: A new type is added here, with its schema under ledger/wire/schemas/<Type>/ and its topic.
EVENT_TYPES = (
    "DataAccessed",
    "DataShared",
    "LegalDisclosure",
    "NotificationStatusChanged",
    "SubjectNotified",
    "ConsentChanged",
    "PolicyPublished",
)
#: Event types that concern no customer: no ``subject_ids``, no side-table rows, keyed by
#: :data:`ROUTING_KEY_FIELD` instead (docs/producing.md, "Events without subjects").
SUBJECTLESS_TYPES = ("PolicyPublished",)
ROUTING_KEY_FIELD = {"PolicyPublished": "policy_name"}
#: Namespace of :func:`derive_event_id` (UUIDv5). Never change it: ids derived
#: from the same line must stay the same across releases.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c1b9e-3c57-4d0a-9a55-2f4b0c8e7d31")

_VERSION_FILE = re.compile(r"v([1-9][0-9]*)\.avsc")


# --- where the schemas live --------------------------------------------------

#: The schemas shipped in the package; the checkout's top-level ``schemas/`` links here.
PACKAGED_SCHEMAS = Path(__file__).resolve().parent.parent / "wire" / "schemas"


def schemas_dir(directory: str | Path | None = None) -> Path:
    """``directory``, else the setting ``schemas_dir`` (env ``LEDGER_SCHEMAS_DIR``), else the packaged schemas."""
    if directory is None:
        from ..config import Settings

        directory = Settings.load().schemas_dir or PACKAGED_SCHEMAS
    return Path(directory)


def schema_files(directory: str | Path | None = None) -> dict[str, list[tuple[int, Path]]]:
    """Each event type's ``(version, path)`` pairs, oldest first; refuses stray names."""
    root = schemas_dir(directory)
    if not root.is_dir():
        raise SchemaError(f"schema directory {root} does not exist (set LEDGER_SCHEMAS_DIR?)")
    found: dict[str, list[tuple[int, Path]]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if sub.name not in EVENT_TYPES:
            raise SchemaError(f"{sub}: not an event type; expected one of {', '.join(EVENT_TYPES)}")
        files = []
        for path in sub.glob("*.avsc"):
            match = _VERSION_FILE.fullmatch(path.name)
            if not match:
                raise SchemaError(f"{path}: schema files must be named v1.avsc, v2.avsc, ...")
            files.append((int(match.group(1)), path))
        found[sub.name] = sorted(files)
    missing = [t for t in EVENT_TYPES if not found.get(t)]
    if missing:
        raise SchemaError(f"{root}: no schema version for {', '.join(missing)}")
    return {t: found[t] for t in EVENT_TYPES}


def read_schema_file(path: Path) -> dict:
    """The JSON of one ``.avsc`` file; malformed JSON raises SchemaError naming the file."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SchemaError(f"{path}: cannot read schema: {err}") from err
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise SchemaError(f"{path}: top level must be an Avro record")
    return schema


# --- module-level API ---------------------------------------------------------------

def newest_schemas(directory: str | Path | None = None) -> dict[str, dict]:
    """The JSON of the newest version of each event type in ``directory``."""
    return {t: read_schema_file(files[-1][1]) for t, files in schema_files(directory).items()}


@functools.cache
def default_validator() -> Validator:
    """The validator for the default schema directory, compiled on first use."""
    return Validator(newest_schemas())


def validate(obj: Mapping) -> dict:
    """Normalize ``obj`` against the newest schema of its ``"type"``; see the module docstring."""
    return default_validator().validate(obj)




def _json_value(v):
    if isinstance(v, datetime):
        return time_text(v)
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def to_json(event: Mapping) -> dict:
    """JSON-ready copy: datetimes as ``2026-01-02T03:04:05.123456Z``, the rest as-is."""
    return {k: _json_value(v) for k, v in event.items()}


def canonical_json(obj: Mapping) -> str:
    """Sorted keys, no whitespace, UTF-8 text: equal content gives equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- the readable JSON form, fast -------------------------------------------------
# readable_json(e) == canonical_json(to_json(e)) byte for byte (ledgers store it
# and verify recomputes it). The generic way is one pass of the C encoder with
# datetimes handed to time_text; per event type a generated function is ~2x
# faster: keys pre-sorted, strings through the C string escaper, times
# formatted directly. Anything not shaped as its schema says goes the generic way.

def _time_default(value):
    """``default=`` of the JSON encoder: the only non-JSON values in an event are datetimes."""
    if isinstance(value, datetime):
        return time_text(value)
    raise TypeError(f"{type(value).__name__} is not part of a normalized event")


if c_make_encoder is not None:  # markers=None: no cycle check, an event holds no cycles
    _C_ENCODER = c_make_encoder(None, _time_default, encode_basestring, None, ":", ",", True, False, True)

    def _generic_json(obj) -> str:
        return "".join(_C_ENCODER(obj, 0))
else:  # pragma: no cover - CPython always has the C encoder
    _generic_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                     default=_time_default).encode


def _int_text(v) -> str:
    if type(v) is int:
        return int.__repr__(v)
    raise TypeError("not an int")


def _bool_text(v) -> str:
    if v is True or v is False:
        return "true" if v else "false"
    raise TypeError("not a bool")


def _float_text(v) -> str:
    if type(v) is not float:
        raise TypeError("not a float")
    return json.dumps(v)


class _JsonFormCompiler:
    """Builds one expression per value: the JSON text of it, or _generic_json(it) when its shape differs."""

    def __init__(self):
        self.scope: dict = {"S": encode_basestring, "T": time_text, "C": _generic_json, "I": _int_text,
                            "B": _bool_text, "F": _float_text, "join": "".join}
        self.named: dict[str, dict] = {}
        self.count = 0

    def bind(self, src: str) -> tuple[str, str]:
        """(first use, later uses) of the value of ``src``: a walrus unless it is already a name."""
        if src.isidentifier():
            return src, src
        self.count += 1
        name = f"x{self.count}"
        return f"({name} := {src})", name

    def value(self, t, ns: str, src: str) -> str:
        if isinstance(t, list):  # ["null", T], as the validator allows
            first, later = self.bind(src)
            return f'("null" if {first} is None else {self.value(t[1 - t.index("null")], ns, later)})'
        if isinstance(t, str) and t not in _JSON_SIMPLE:
            full = t if "." in t else f"{ns}.{t}"
            t, ns = self.named[full], full.rpartition(".")[0]
        kind = t if isinstance(t, str) else t["type"]
        logical = t.get("logicalType") if isinstance(t, dict) else None
        if logical == "timestamp-micros":
            return f"""('"' + T({src}) + '"')"""
        if kind in _JSON_SIMPLE:
            return f"{_JSON_SIMPLE[kind]}({src})" if _JSON_SIMPLE[kind] else f"C({src})"
        if kind in ("enum", "record"):
            full = t["name"] if "." in t["name"] else f"{t.get('namespace', ns)}.{t['name']}"
            self.named[full] = t
        if kind == "enum":
            table = f"E{len(self.scope)}"
            self.scope[table] = {symbol: encode_basestring(symbol) for symbol in t["symbols"]}
            return f"{table}[{src}]"
        if kind == "array" and t["items"] == "string":
            first, later = self.bind(src)
            return f'("[" + ",".join(map(S, {later})) + "]" if type({first}) is list else C({later}))'
        if kind == "map":
            first, later = self.bind(src)
            return f'("{{}}" if {first} == {{}} else C({later}))'
        if kind == "record":
            first, later = self.bind(src)
            return f"({self.record(t, full.rpartition('.')[0], later)} if type({first}) is dict " \
                   f"and len({later}) == {len(t['fields'])} else C({later}))"
        return f"C({src})"  # arrays of other items, bytes...: the generic encoder decides

    def record(self, t: dict, ns: str, src: str, event_type: str | None = None) -> str:
        """``join((...))`` of the record in ``src`` with its keys sorted (plus "type" for an event)."""
        fields = {f["name"]: f["type"] for f in t["fields"]}
        parts, literal = [], ""
        for i, name in enumerate(sorted([*fields, "type"] if event_type else fields)):
            literal += ("{" if i == 0 else ",") + encode_basestring(name) + ":"
            if event_type and name == "type":
                literal += encode_basestring(event_type)
                continue
            parts += [repr(literal), self.value(fields[name], ns, f"{src}[{name!r}]")]
            literal = ""
        parts.append(repr(literal + "}"))
        return f"join(({', '.join(parts)}))"


_JSON_SIMPLE = {"string": "S", "long": "I", "int": "I", "boolean": "B", "float": "F", "double": "F",
                "bytes": None, "null": None}


def compile_json_form(schema: Mapping, event_type: str):
    """A function ``event -> canonical_json(to_json(event))`` specialised to events of ``schema``."""
    compiler = _JsonFormCompiler()
    body = compiler.record(schema, schema.get("namespace", NAMESPACE), "r", event_type)
    text = (f"def json_form(r):\n    try:\n        if type(r) is dict and len(r) == {len(schema['fields']) + 1}:\n"
            f"            return {body}\n    except Exception:\n        pass  # not this shape: the generic way\n"
            "    return C(r)\n")
    exec(compile(text, f"<json form {event_type}>", "exec"), compiler.scope)  # noqa: S102 - generated above
    form = compiler.scope["json_form"]
    form.source = text  # for debugging
    return form


_json_forms: dict | None = None  # event type -> compiled form, for the default schemas; built on first use


def readable_json(event: Mapping) -> str:
    """``canonical_json(to_json(event))`` of a normalized event, computed about 2x faster."""
    global _json_forms
    if _json_forms is None:
        try:
            _json_forms = {t: compile_json_form(s, t) for t, s in default_validator().schemas.items()}
        except SchemaError:  # no usable schemas here: every event goes the generic way
            _json_forms = {}
    try:
        form = _json_forms[event["type"]]
    except (KeyError, TypeError):
        return _generic_json(event)
    return form(event)


def derive_event_id(obj: Mapping) -> str:
    """UUIDv5 of the normalized content without ``event_id``: stable across re-runs of a file.

    Equivalent spellings (a ``+01:00`` time and its ``Z`` form, a missing
    optional field and ``null``) give the same id. Raises ValidationError.
    """
    content = validate({k: v for k, v in obj.items() if k != "event_id"})
    doc = to_json(content)
    del doc["event_id"]
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, canonical_json(doc)))


def event_key(event: Mapping) -> bytes:
    """The Kafka key: the smallest subject id, UTF-8; for a subjectless type its ROUTING_KEY_FIELD."""
    field = ROUTING_KEY_FIELD.get(event["type"])
    if field is not None:
        return event[field].encode("utf-8")
    return min(event["subject_ids"]).encode("utf-8")
