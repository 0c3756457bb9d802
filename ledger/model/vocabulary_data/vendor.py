"""Regenerate fideslang-<version>.json from a fideslang wheel (run by hand, never imported).

    pip download --no-deps fideslang==3.1.4 && unzip fideslang-3.1.4-*.whl -d /tmp/fideslang
    python ledger/model/vocabulary_data/vendor.py /tmp/fideslang 3.1.4

Reads the default taxonomy's Python source with ``ast`` (no pydantic needed),
so the data is taken verbatim: key, name, description, parent, replaced_by.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

FILES = {"data_categories": "data_categories.py", "data_uses": "data_uses.py",
         "data_subjects": "data_subjects.py"}
FIELDS = ("fides_key", "name", "description", "parent_key", "replaced_by", "version_deprecated")


def terms(path: Path) -> list[dict]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and any(k.arg == "fides_key" for k in node.keywords):
            values = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg in FIELDS}
            found.append({"key": values["fides_key"], "name": values["name"],
                          "description": values.get("description"),
                          "parent": values.get("parent_key"),
                          "replaced_by": values.get("replaced_by"),
                          "deprecated": values.get("version_deprecated")})
    return found


def main(root: str, version: str) -> None:
    base = Path(root) / "fideslang" / "default_taxonomy"
    data = {"source": "fideslang", "version": version,
            **{name: terms(base / file) for name, file in FILES.items()}}
    out = Path(__file__).with_name(f"fideslang-{version}.json")
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(out, {k: len(v) for k, v in data.items() if isinstance(v, list)})


if __name__ == "__main__":
    main(*sys.argv[1:])
