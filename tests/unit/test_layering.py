"""The tree shows the data flow: a package imports only the stages before it.

Stages, in import order (docs/architecture.md draws the same picture):

    model → wire → tlog → kafka → store → produce | ingest → audit → http → cli, dev

A stage may import any earlier stage, never a later one; ``produce`` and
``ingest`` sit side by side and import neither each other. ``cli`` and
``dev`` (the local broker, the demo, the simulator) may import anything. The
loose modules of ``ledger/`` (errors, config) come before every stage. This
test reads every module's imports (including the ones inside functions) and
names each import that points the wrong way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ledger"

#: Stage -> rank; equal ranks are siblings and may not import each other.
STAGES = {
    "model": 0, "wire": 1, "tlog": 2, "kafka": 3, "store": 4,
    "produce": 5, "ingest": 5, "audit": 6, "http": 7,
}
ANYTHING_GOES = {"cli", "dev", "__main__", "__init__"}
BASE = {"errors", "config"}  # loose modules every stage may use


def stage_of(module: str) -> str | None:
    """``ledger.audit.query`` -> ``audit``; ``ledger.errors`` -> ``errors``; outside ledger -> None."""
    parts = module.split(".")
    if parts[0] != "ledger":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, relative ones resolved."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    package = parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if node.module is None:  # from . import a, b: each name is a module
                found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def violations(path: Path, root: Path = ROOT) -> list[str]:
    """Each import of a later stage (or a sibling) from the module at ``path``."""
    where = path.relative_to(root)
    here = stage_of(".".join(where.with_suffix("").parts))
    if here in ANYTHING_GOES:
        return []
    out = []
    for line, module in imported_modules(path, root):
        there = stage_of(module)
        if there is None or there == here or there in BASE:
            continue
        if here in BASE:
            out.append(f"{where}:{line}: {here} imports {module} (errors/config import no stage)")
        elif there in ANYTHING_GOES - {"__init__"}:
            out.append(f"{where}:{line}: {here} imports {module} ({there} is a front end)")
        elif there == "__init__":
            out.append(f"{where}:{line}: {here} imports the public surface `ledger`; import the stage module")
        elif there not in STAGES:
            out.append(f"{where}:{line}: {module} belongs to no stage; add it to STAGES")
        elif STAGES[there] >= STAGES[here]:
            order = "a sibling" if STAGES[there] == STAGES[here] else "a later stage"
            out.append(f"{where}:{line}: {here} imports {module}, {order}")
    return out


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_stage():
    """A new top-level package must be placed in the order before it can be used."""
    for path in all_modules():
        stage = stage_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
        assert stage in STAGES or stage in ANYTHING_GOES or stage in BASE, f"{path}: no stage"


def test_no_module_imports_a_later_stage():
    """Imports point one way: from a stage to the stages before it."""
    found = [v for path in all_modules() for v in violations(path)]
    assert not found, "imports against the data flow:\n" + "\n".join(found)


@pytest.mark.parametrize("source, expected", [
    ("import json\nfrom ledger.audit.query import who_saw\n", "ledger/store/bad.py:2: store imports ledger.audit.query, a later stage"),
    ("def f():\n    from ..ingest import pipeline\n", "ledger/store/bad.py:2: store imports ledger.ingest, a later stage"),
    ("from ledger.store import Ledger\n", None),
])
def test_the_check_names_a_wrong_import(tmp_path, source, expected):
    """The test can fail: a store module importing a later stage is named with its line, even inside a function."""
    store = tmp_path / "ledger" / "store"
    store.mkdir(parents=True)
    (store / "bad.py").write_text(source)
    assert violations(store / "bad.py", tmp_path) == ([expected] if expected else [])


def test_stages_named_in_the_docs():
    """docs/architecture.md draws the same order as STAGES."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert "model → wire → tlog → kafka → store → produce | ingest → audit → http → cli, dev" in doc
