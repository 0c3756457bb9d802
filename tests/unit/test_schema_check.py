"""The schema files themselves and `schema_check`: backward-transitive compatibility, no removed fields, no collisions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ledger.errors import IncompatibleSchemaError
from ledger.model import events
from ledger.wire import schema_check
from ledger.wire.codec import load_versions

SCHEMAS = Path(events.__file__).resolve().parent.parent.parent / "schemas"
COMMON = ["event_id", "occurred_at", "source_service", "actor", "subject_ids", "correlation_id",
          "trace_id", "recorded_by", "attributes"]
PROCESSING = ["data_categories", "purpose", "legal_basis", "justification"]


# --- the released files -----------------------------------------------------------------

def test_the_real_schemas_pass():
    """The repository's schemas/ has no incompatibility, removed field or collision."""
    assert schema_check.check() == []


def _named_definitions(t, out: dict) -> dict:
    if isinstance(t, list):
        for branch in t:
            _named_definitions(branch, out)
    elif isinstance(t, dict):
        if t.get("type") in ("record", "enum"):
            out.setdefault(t["name"], []).append(t)
        for f in t.get("fields", ()):
            _named_definitions(f["type"], out)
        for key in ("items", "values"):
            if key in t:
                _named_definitions(t[key], out)
    return out


def test_shared_named_types_are_identical_across_events():
    """Actor, Recipient, Justification and the enums are defined the same in every newest file."""
    by_name: dict[str, list] = {}
    for event_type, versions in load_versions().items():
        for name, definitions in _named_definitions(versions[-1].source, {}).items():
            if name != event_type:
                by_name.setdefault(name, []).extend(definitions)
    assert {"Actor", "ActorType", "Recipient", "RecipientKind", "Justification", "LegalBasis",
            "NotificationStatus"} <= set(by_name)
    for name, definitions in by_name.items():
        assert all(d == definitions[0] for d in definitions), f"{name} differs between schema files"
        assert definitions[0]["namespace"] == "ledger.events"


@pytest.mark.parametrize("event_type", events.EVENT_TYPES)
def test_field_order_docs_and_nullable_shape(event_type):
    """Common fields come first in the documented order; every field has a doc; nullables are ["null", T] = null."""
    source = load_versions()[event_type][-1].source
    names = [f["name"] for f in source["fields"]]
    common = [n for n in COMMON if n != "subject_ids"] if event_type in events.SUBJECTLESS_TYPES else COMMON
    assert names[:len(common)] == common
    if event_type in ("DataAccessed", "DataShared", "LegalDisclosure"):
        assert names[len(COMMON):len(COMMON) + len(PROCESSING)] == PROCESSING
    stack = list(source["fields"])
    while stack:
        f = stack.pop()
        assert f.get("doc"), f"{event_type}.{f['name']} has no doc"
        if isinstance(f["type"], list):
            assert f["type"][0] == "null" and f["default"] is None
        for t in (f["type"] if isinstance(f["type"], list) else [f["type"]]):
            if isinstance(t, dict) and t.get("type") == "record":
                stack.extend(t["fields"])


# --- deliberately broken versions in a temporary copy ---------------------------------

@pytest.fixture
def root(tmp_path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, target)
    return target


def add_version(root: Path, event_type: str, change) -> None:
    files = sorted((root / event_type).glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
    schema = json.loads(files[-1].read_text())
    change(schema)
    (root / event_type / f"v{len(files) + 1}.avsc").write_text(json.dumps(schema, indent=2))


def field(schema: dict, path: str) -> dict:
    """The field definition at a dotted path (through records and nullable unions)."""
    fields = schema["fields"]
    for part in path.split("."):
        f = next(f for f in fields if f["name"] == part)
        t = f["type"]
        t = next((b for b in t if b != "null"), t) if isinstance(t, list) else t
        fields = t.get("fields", []) if isinstance(t, dict) else []
    return f


def only(problems: list) -> IncompatibleSchemaError:
    incompatible = [p for p in problems if isinstance(p, IncompatibleSchemaError)]
    assert len(incompatible) == 1, [str(p) for p in problems]
    return incompatible[0]


@pytest.mark.parametrize(("event_type", "change", "path", "words"), [
    ("DataAccessed", lambda s: s["fields"].append({"name": "tenant", "type": "string", "doc": "t"}),
     "tenant", "without a default"),
    ("DataAccessed", lambda s: field(s, "actor.role").update(type=["null", "long"]),
     "actor.role", "matches no branch"),
    ("DataAccessed", lambda s: field(s, "access_type")["type"]["symbols"].remove("DELETE"),
     "access_type", "DELETE"),
    ("DataShared", lambda s: field(s, "recipient.kind")["type"]["symbols"].remove("OTHER"),
     "recipient.kind", "OTHER"),
    ("DataShared", lambda s: field(s, "retention_until")["type"][1].update(logicalType="timestamp-millis"),
     "retention_until", "logical type changed"),
    ("ConsentChanged", lambda s: field(s, "granted").update(type="string"),
     "granted", "cannot be read as"),
    ("SubjectNotified", lambda s: s["fields"].remove(field(s, "channel")),
     "channel", "removed or renamed"),
    ("LegalDisclosure", lambda s: field(s, "request.case_ref").update(name="case_reference"),
     "request.case_ref", "removed or renamed"),
    ("LegalDisclosure", lambda s: s["fields"].append(
        {"name": "priority", "type": ["null", "long"], "default": 0, "doc": "p"}),
     "priority", "does not match"),
])
def test_incompatible_version_is_named(root, event_type, change, path, words):
    """An incompatible v2 is reported with the event, reader v2, writer v1, the field path and why."""
    add_version(root, event_type, change)
    err = only(schema_check.find_problems(root))
    assert (err.event_type, err.reader, err.writer, err.field) == (event_type, "v2", "v1", path)
    assert words in err.reason
    messages = schema_check.check(root)
    assert any(m.startswith(f"{event_type}: v2 cannot read data written by v1: {path}: ") for m in messages)


def test_compatibility_is_transitive(root):
    """v3 must read v1 too: a field defaulted in v2 and required in v3 fails only against v1."""
    add_version(root, "DataAccessed", lambda s: s["fields"].append(
        {"name": "tenant", "type": "string", "default": "main", "doc": "t"}))
    add_version(root, "DataAccessed", lambda s: field(s, "tenant").pop("default"))
    err = only(schema_check.find_problems(root))
    assert (err.reader, err.writer, err.field) == ("v3", "v1", "tenant")


@pytest.mark.parametrize("change", [
    lambda s: field(s, "channel").update(default="email"),
    lambda s: field(s, "disclosure_event_id")["type"].pop("logicalType"),
    lambda s: field(s, "notified_at").update(doc="changed wording only"),
])
def test_fingerprint_collision_is_refused(root, change):
    """A v2 that differs from v1 only by a default, a logical type or a doc shares its fingerprint and fails."""
    add_version(root, "SubjectNotified", change)
    messages = schema_check.check(root)
    assert any("SubjectNotified v1" in m and "SubjectNotified v2" in m and "fingerprint" in m for m in messages)


@pytest.mark.parametrize("change", [
    lambda s: s["fields"].append({"name": "tenant", "type": ["null", "string"], "default": None, "doc": "t"}),
    lambda s: field(s, "access_type")["type"]["symbols"].append("PRINT"),
    lambda s: field(s, "record_count").update(type=["null", "double"]),
    lambda s: field(s, "actor.role").update(type=["null", "bytes"]),
    lambda s: field(s, "justification")["type"][1]["fields"].append(
        {"name": "approved_by", "type": {"type": "array", "items": "string"}, "default": [], "doc": "a"}),
])
def test_compatible_changes_pass(root, change):
    """Added defaulted fields, added enum symbols and Avro promotions are accepted."""
    add_version(root, "DataAccessed", change)
    assert schema_check.check(root) == []
