"""Test helpers that walk the event schemas: every enum and union, full samples, bytes with a chosen index.

    sites(schema)                      -> [Site("enum"|"union", "actor.type", size)], every one in the schema
    full_sample(event_type, schema)    -> a valid event whose every optional field is set (every site is written)
    encode_with_index(schema, event, path, index) -> Avro body with ``index`` written at ``path``
    newer_schemas(tmp_path)            -> a schemas dir where every event type has a v2 adding a defaulted field

The encoder here is written independently of ledger.avro_binary (a plain walk of
the schema JSON), so a test can put any varint where an enum or union index goes.
"""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ledger.model import events

SCHEMAS = events.schemas_dir()
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Site:
    kind: str  # "enum" | "union"
    path: str  # dotted, "[]" for array items: the name the decoder's error must carry
    size: int  # symbols or branches


def _walk(t, path: str, named: dict, visit) -> None:
    if isinstance(t, list):
        visit(Site("union", path, len(t)))
        for branch in t:
            if branch != "null":
                _walk(branch, path, named, visit)
        return
    if isinstance(t, str):
        return  # primitives; named references are not used by the event schemas (each file is inline)
    kind = t["type"]
    if kind == "record":
        named[t["name"]] = t
        for f in t["fields"]:
            _walk(f["type"], f"{path}.{f['name']}" if path else f["name"], named, visit)
    elif kind == "enum":
        visit(Site("enum", path, len(t["symbols"])))
    elif kind == "array":
        _walk(t["items"], path + "[]", named, visit)
    elif kind == "map":
        _walk(t["values"], path + "[]", named, visit)


def sites(schema: dict) -> list[Site]:
    found: list[Site] = []
    _walk(schema, "", {}, found.append)
    return found


def every_site() -> list[tuple[str, Site]]:
    """(event type, site) for every enum and union of every newest schema."""
    schemas = events.newest_schemas()
    return [(t, s) for t in events.EVENT_TYPES for s in sites(schemas[t])]


# --- a sample with every optional field set --------------------------------------------

_SPECIAL = {
    "event_id": "0b7c0d1e-2f3a-4b5c-8d6e-7f8091a2b3c4", "disclosure_event_id": "1b7c0d1e-2f3a-4b5c-8d6e-7f8091a2b3c4",
    "consent_ref": "2b7c0d1e-2f3a-4b5c-8d6e-7f8091a2b3c4", "purpose": "essential.billing",
    "country": "DE", "document_sha256": "ab" * 32, "record_count": 3, "status": "DELAYED_BY_ORDER",
    # PolicyPublished: the digest must be the text's (event_rules)
    "policy_toml": "[policy]", "policy_sha256": __import__("hashlib").sha256(b"[policy]").hexdigest(),
}


def _sample(t, name: str):
    if isinstance(t, list):
        return _sample(next(b for b in t if b != "null"), name)
    if name in _SPECIAL:
        return _SPECIAL[name]
    if isinstance(t, str):
        return {"string": f"{name or 'x'}-1", "long": 7, "int": 7, "boolean": True,
                "double": 1.5, "float": 1.5, "bytes": b"b"}[t]
    if t.get("logicalType") == "timestamp-micros":
        return datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    kind = t["type"]
    if kind == "record":
        return {f["name"]: _sample(f["type"], f["name"]) for f in t["fields"]}
    if kind == "enum":
        return t["symbols"][-1]
    if kind == "array":
        if name.endswith("categories"):
            return ["user.contact.email"]
        return [_sample(t["items"], "")]
    if kind == "map":
        return {"k": "v"}
    return _sample(kind, name)


def full_sample(event_type: str, schema: dict) -> dict:
    """A valid event of ``schema`` in which every union holds its non-null branch."""
    return events.Validator({event_type: schema}).validate({"type": event_type, **_sample(schema, "")})


# --- an independent encoder that can write any index ------------------------------------

def zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _encode(t, v, path: str, target: str, index: int, out: bytearray) -> None:
    """``target``: "enum:<path>" or "union:<path>" (an enum inside ["null", E] shares the union's path)."""
    if isinstance(t, list):
        if "union:" + path == target:
            out += zigzag(index)
            # what follows is the non-null branch's value, as a garbled index would leave it
            branch = next(b for b in t if b != "null")
            if v is not None:
                _encode(branch, v, path + "#", target, index, out)
            return
        if v is None:
            out += zigzag(t.index("null"))
            return
        i = next(i for i, b in enumerate(t) if b != "null")
        out += zigzag(i)
        _encode(t[i], v, path, target, index, out)
        return
    kind = t if isinstance(t, str) else t["type"]
    if isinstance(t, dict) and t.get("logicalType") == "timestamp-micros":
        d = v - EPOCH
        out += zigzag((d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds)
    elif kind == "record":
        for f in t["fields"]:
            _encode(f["type"], v[f["name"]], f"{path}.{f['name']}" if path else f["name"], target, index, out)
    elif kind == "enum":
        out += zigzag(index if "enum:" + path == target else t["symbols"].index(v))
    elif kind in ("array", "map"):
        items = list(v) if kind == "array" else list(v.items())
        if items:
            out += zigzag(len(items))
            for x in items:
                if kind == "map":
                    _encode("string", x[0], path, target, index, out)
                    x = x[1]
                _encode(t["items"] if kind == "array" else t["values"], x, path + "[]", target, index, out)
        out += b"\x00"
    elif kind == "string":
        raw = v.encode()
        out += zigzag(len(raw)) + raw
    elif kind == "bytes":
        out += zigzag(len(v)) + v
    elif kind in ("long", "int"):
        out += zigzag(v)
    elif kind == "boolean":
        out.append(1 if v else 0)
    elif kind == "double":
        out += struct.pack("<d", v)
    elif kind == "float":
        out += struct.pack("<f", v)
    elif kind != "null":
        raise AssertionError(f"no test encoder for {kind!r}")


def encode_with_index(schema: dict, event: dict, site: Site | None = None, index: int = 0) -> bytes:
    """The Avro body of ``event`` (without the single-object header) with ``index`` written at ``site``."""
    out = bytearray()
    target = "" if site is None else f"{site.kind}:{site.path}"
    _encode(schema, {k: v for k, v in event.items() if k != "type"}, "", target, index, out)
    return bytes(out)


# --- a newer version of every schema --------------------------------------------------------

NEW_FIELD = {"name": "review_note", "type": ["null", "string"], "default": None, "doc": "Added in v2."}


def newer_schemas(tmp_path: Path) -> Path:
    """A copy of schemas/ in which every event type has a next version that adds ``NEW_FIELD``."""
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    for event_type in events.EVENT_TYPES:
        files = sorted(root.joinpath(event_type).glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
        schema = json.loads(files[-1].read_text())
        schema["fields"].append(NEW_FIELD)
        (root / event_type / f"v{len(files) + 1}.avsc").write_text(json.dumps(schema, indent=2))
    return root
