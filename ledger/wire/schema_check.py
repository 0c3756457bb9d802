"""Proves every schema version can read what every earlier version wrote.

For each event type and each pair (older writer, newer reader) this applies
the Avro specification's schema-resolution rules structurally, then writes a
few generated records with the writer and reads them back with the reader.
It also refuses what resolution would allow but the project forbids: a field
removed or renamed in a later version, and two versions with the same
fingerprint (the Parsing Canonical Form drops defaults, docs and logical
types, so such versions are indistinguishable on the wire).

    problems = find_problems("schemas")   # [] when everything is compatible
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from fastavro import schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from ledger.errors import IncompatibleSchemaError, SchemaError

from .codec import SchemaVersion, collision_message, fingerprint_collisions, load_versions

SAMPLES = 5
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# writer type -> reader types that can read it (Avro spec, "Schema Resolution")
PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "double": {"double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
    "boolean": {"boolean"},
    "null": {"null"},
}


def find_problems(directory: str | Path | None = None) -> list[SchemaError]:
    """Every incompatibility, removed field and fingerprint collision; [] when all is well."""
    versions = load_versions(directory)
    problems: list[SchemaError] = [SchemaError(collision_message(a, b)) for a, b in fingerprint_collisions(versions)]
    for version_list in versions.values():
        for i, reader in enumerate(version_list):
            for writer in version_list[:i]:
                problems.extend(pair_problems(writer, reader))
    return problems


def check(directory: str | Path | None = None) -> list[str]:
    """The findings of :func:`find_problems` as messages; [] means compatible."""
    return [str(p) for p in find_problems(directory)]


def pair_problems(writer: SchemaVersion, reader: SchemaVersion) -> list[IncompatibleSchemaError]:
    """Why ``reader`` cannot read data written with ``writer`` (empty when it can)."""
    found: list[tuple[str, str]] = []
    _Resolver(writer.source, reader.source, found).resolve(writer.source, reader.source, "")
    _removed_fields(writer.source, reader.source, found)
    if not found:
        found.extend(_sample_problems(writer, reader))
    return [IncompatibleSchemaError(writer.event_type, reader.label, writer.label, field or "(record)", reason)
            for field, reason in found]


def _sample_problems(writer: SchemaVersion, reader: SchemaVersion) -> list[tuple[str, str]]:
    """Write generated records with ``writer`` and read them back with ``reader``."""
    try:
        for record in generate_many(writer.parsed, SAMPLES):
            buf = BytesIO()
            schemaless_writer(buf, writer.parsed, record)
            buf.seek(0)
            schemaless_reader(buf, writer.parsed, reader.parsed)
    except Exception as err:  # any failure here is a finding, whatever fastavro raises
        return [("(sample)", f"a generated {writer.label} record could not be read: {type(err).__name__}: {err}")]
    return []


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(t) -> str:
    if isinstance(t, list):
        return "union"
    if isinstance(t, dict):
        return t["type"] if isinstance(t["type"], str) and t["type"] in PRIMITIVES | {
            "record", "enum", "array", "map", "fixed"} else _kind(t["type"])
    return t if t in PRIMITIVES else "named"


class _Resolver:
    """Walks a writer and a reader type side by side, collecting ``(field, reason)`` pairs."""

    def __init__(self, writer_root: dict, reader_root: dict, found: list):
        self.writer_names = _named_types(writer_root)
        self.reader_names = _named_types(reader_root)
        self.found = found
        self.seen: set[tuple[str, str]] = set()

    def fail(self, path: str, reason: str) -> None:
        self.found.append((path, reason))

    def resolve(self, w, r, path: str) -> bool:
        """Record any problem; return whether ``r`` can read ``w`` (without recording for unions)."""
        w, r = self._deref(w, self.writer_names), self._deref(r, self.reader_names)
        wk, rk = _kind(w), _kind(r)
        if wk == "union":
            ok = True
            for branch in w:  # every writer branch must be readable
                ok &= self.resolve(branch, r, path)
            return ok
        if rk == "union":
            branch = self._pick(w, r)
            if branch is not None:
                return self.resolve(w, branch, path)
            self.fail(path, f"writer type {_describe(w)} matches no branch of reader union {_describe(r)}")
            return False
        if wk in PROMOTIONS:
            if rk not in PROMOTIONS[wk]:
                self.fail(path, f"writer type {wk} cannot be read as {_describe(r)}")
                return False
            return self._logical(w, r, path)
        if wk != rk:
            self.fail(path, f"writer type {_describe(w)} cannot be read as {_describe(r)}")
            return False
        if wk in ("record", "enum", "fixed") and _full(w) != _full(r):
            self.fail(path, f"named type {_full(w)} cannot be read as {_full(r)} (full names must match)")
            return False
        if wk == "record":
            return self._record(w, r, path)
        if wk == "enum":
            missing = [s for s in w["symbols"] if s not in r["symbols"]]
            if missing and "default" not in r:
                self.fail(path, f"enum {_full(r)} lacks writer symbol(s) {', '.join(missing)} and has no default")
                return False
            return True
        if wk == "fixed":
            if w["size"] != r["size"]:
                self.fail(path, f"fixed size {w['size']} cannot be read as size {r['size']}")
                return False
            return True
        if wk == "array":
            return self.resolve(w["items"], r["items"], f"{path}[]")
        if wk == "map":
            return self.resolve(w["values"], r["values"], f"{path}{{}}")
        return True

    def _record(self, w: dict, r: dict, path: str) -> bool:
        key = (_full(w), _full(r))
        if key in self.seen:  # a named record used twice is checked once (and recursion ends)
            return True
        self.seen.add(key)
        ok = True
        writer_fields = {f["name"]: f for f in w["fields"]}
        for f in r["fields"]:
            where = _join(path, f["name"])
            if f["name"] in writer_fields:
                ok &= self.resolve(writer_fields[f["name"]]["type"], f["type"], where)
            elif "default" not in f:
                self.fail(where, f"field added in the reader without a default; the writer {_full(w)} lacks it")
                ok = False
            elif not _default_fits(f["default"], self._deref(f["type"], self.reader_names), self.reader_names):
                self.fail(where, f"default {f['default']!r} does not match the field type {_describe(f['type'])} "
                                 "(for a union, its first branch)")
                ok = False
        return ok

    def _logical(self, w, r, path: str) -> bool:
        wl = w.get("logicalType") if isinstance(w, dict) else None
        rl = r.get("logicalType") if isinstance(r, dict) else None
        if wl != rl:
            self.fail(path, f"logical type changed from {wl or 'none'} to {rl or 'none'}: same bits, different meaning")
            return False
        return True

    def _pick(self, w, union: list):
        """The reader branch used for ``w``: the first of the same type, else the first it promotes to."""
        w = self._deref(w, self.writer_names)
        wk = _kind(w)
        branches = [(b, self._deref(b, self.reader_names)) for b in union]
        for b, d in branches:
            if _kind(d) == wk and (wk not in ("record", "enum", "fixed") or _full(d) == _full(w)):
                return b
        for b, d in branches:
            if _kind(d) in PROMOTIONS.get(wk, ()):
                return b
        return None

    @staticmethod
    def _deref(t, names: dict):
        if isinstance(t, str) and t not in PRIMITIVES:
            return names.get(t if "." in t else f"ledger.events.{t}", t)
        if isinstance(t, dict) and isinstance(t.get("type"), (dict, list)):
            return t["type"]
        return t


def _default_fits(value, t, names: dict) -> bool:
    """Whether a JSON ``default`` is a value of Avro type ``t`` (a union's default matches its first branch)."""
    t = _Resolver._deref(t, names)
    if isinstance(t, list):
        return _default_fits(value, t[0], names)
    kind = _kind(t)
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("int", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("float", "double"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in ("string", "bytes", "fixed"):
        return isinstance(value, str)
    if kind == "enum":
        return value in t["symbols"]
    if kind == "array":
        return isinstance(value, list) and all(_default_fits(x, t["items"], names) for x in value)
    if kind == "map":
        return isinstance(value, dict) and all(_default_fits(x, t["values"], names) for x in value.values())
    if kind == "record":
        return isinstance(value, dict) and all(
            _default_fits(value[f["name"]], f["type"], names) if f["name"] in value else "default" in f
            for f in t["fields"])
    return True


def _full(t: dict) -> str:
    name = t["name"]
    return name if "." in name else f"{t.get('namespace', 'ledger.events')}.{name}"


def _describe(t) -> str:
    if isinstance(t, list):
        return "[" + ", ".join(_describe(b) for b in t) + "]"
    if isinstance(t, dict):
        if t["type"] in ("record", "enum", "fixed"):
            return _full(t)
        if t["type"] == "array":
            return f"array<{_describe(t['items'])}>"
        if t["type"] == "map":
            return f"map<{_describe(t['values'])}>"
        return t["type"] + (f" ({t['logicalType']})" if "logicalType" in t else "")
    return str(t)


def _named_types(schema, ns: str = "ledger.events", out: dict | None = None) -> dict:
    """Full name -> definition for every named type defined inline in ``schema``."""
    out = {} if out is None else out
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, ns, out)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed"):
            full = _full({**schema, "namespace": schema.get("namespace", ns)})
            out[full] = schema
            ns = full.rpartition(".")[0]
        for f in schema.get("fields", ()):
            _named_types(f["type"], ns, out)
        for key in ("items", "values"):
            if key in schema:
                _named_types(schema[key], ns, out)
        if isinstance(kind, (dict, list)):
            _named_types(kind, ns, out)
    return out


def _removed_fields(older: dict, newer: dict, found: list) -> None:
    """"Never rename or remove a field": every field of ``older`` must still be in ``newer``."""
    old_names, new_names = _named_types(older), _named_types(newer)
    seen: set[str] = set()

    def branches(t, names: dict) -> list:
        return [_Resolver._deref(b, names) for b in (t if isinstance(t, list) else [t])]

    def same(o, n) -> bool:
        if _kind(o) != _kind(n):
            return False
        return _kind(o) not in ("record", "enum", "fixed") or _full(o) == _full(n)

    def walk(old, new, path: str) -> None:
        for o in branches(old, old_names):
            for n in (n for n in branches(new, new_names) if same(o, n)):
                kind = _kind(o)
                if kind == "record" and _full(o) not in seen:
                    seen.add(_full(o))
                    new_fields = {f["name"]: f for f in n["fields"]}
                    for f in o["fields"]:
                        where = _join(path, f["name"])
                        if f["name"] in new_fields:
                            walk(f["type"], new_fields[f["name"]]["type"], where)
                        else:
                            found.append((where, "field removed or renamed (never rename or remove a field; "
                                                 "add a new field with a default instead)"))
                elif kind == "array":
                    walk(o["items"], n["items"], f"{path}[]")
                elif kind == "map":
                    walk(o["values"], n["values"], f"{path}{{}}")

    walk(older, newer, "")
