"""Every CSV the ledger writes makes its cells inert the one way (ledger.audit.report.inert.csv_cell).

A second, private neutraliser drifts from the first (the HTTP download's copy
lacked the full-width ``＝ ＋ － ＠`` forms and wrote bare-CR cells unquoted),
so the rule is structural: a module that makes a ``csv.writer`` /
``csv.DictWriter`` imports ``csv_cell`` from the inert module, and no module
but that one spells out the formula-start characters.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ledger

ROOT = Path(ledger.__file__).resolve().parent
INERT = ROOT / "audit" / "report" / "inert.py"


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _writes_csv(tree: ast.AST) -> list[int]:
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "csv" and n.attr in ("writer", "DictWriter")]


def _imports_csv_cell(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.ImportFrom) and (n.module or "").endswith("inert")
               and any(a.name == "csv_cell" for a in n.names) for n in ast.walk(tree))


def test_every_csv_writer_uses_the_inert_module():
    """A module that writes CSV imports inert.csv_cell; the failure names the module and line."""
    offenders = [f"{path.relative_to(ROOT.parent)}:{line}: writes CSV without ledger.audit.report.inert.csv_cell"
                 for path, tree in _modules() for line in _writes_csv(tree) if not _imports_csv_cell(tree)]
    assert not offenders, "\n".join(offenders)


def test_no_second_formula_start_list():
    """Only inert.py lists the formula-start characters: a tuple holding "=", "+", "-" and "@" elsewhere is a copy."""
    copies = []
    for path, tree in _modules():
        if path == INERT:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if {"=", "+", "-", "@"} <= values:
                    copies.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    assert not copies, f"formula starts spelled out outside inert.py: {copies}"
