"""The released schema files stay self-contained: each carries its own copy of the shared ``Actor`` record.

That is what outside producers with other Avro libraries rely on (schemas/README.md);
the price is copies, and this test keeps them identical: a change to ``Actor`` in
one file and not the others fails here, naming the files that differ.
"""

from __future__ import annotations

import json

from ledger.model.events import schemas_dir

SHARED_RECORDS = ("Actor",)


def _named(node, name: str):
    """The first definition of the named type ``name`` in a parsed schema (depth first), else None."""
    if isinstance(node, dict):
        if node.get("name") == name and node.get("type") in ("record", "enum", "fixed"):
            return node
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _named(child, name)
        if found is not None:
            return found
    return None


def test_each_released_schema_carries_an_identical_copy_of_the_shared_records():
    """Every released .avsc defines Actor, and every copy is the same (same fields, docs, defaults)."""
    files = sorted(schemas_dir().glob("*/v*.avsc"))
    assert len(files) >= 6
    for name in SHARED_RECORDS:
        copies = {}
        for path in files:
            found = _named(json.loads(path.read_text(encoding="utf-8")), name)
            assert found is not None, f"{path.parent.name}/{path.name}: no {name} record (each file is self-contained)"
            copies[f"{path.parent.name}/{path.name}"] = json.dumps(found, sort_keys=True)
        forms = {}
        for where, text in copies.items():
            forms.setdefault(text, []).append(where)
        assert len(forms) == 1, f"the copies of {name} differ: " + " | ".join(
            ", ".join(group) for group in forms.values())
