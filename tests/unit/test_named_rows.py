"""Rows have names: no module of ledger/ reads a stored row by position (issue 13, item 4).

The store hands out named rows (NamedTuples beside the SQL that reads them:
``reads.SideRow``, ``IndexRow``, ``StoredOccurrence``, ``Move``, ...), so a
reader says ``row.seq``, not ``row[1]``, and a column added to a SELECT cannot
silently shift what a caller reads. This test reads the AST of every module
and names each subscript of a row (a variable ``row`` or ``*_row``) by an
integer or an integer slice. A line may keep one if it says why in a
``# positional:`` comment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ledger"
JUSTIFIED = "# positional:"


def _is_row(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and (node.id == "row" or node.id.endswith("_row"))


def _is_position(index: ast.expr) -> bool:
    """``0``, ``-1``, ``1:``, ``:4``: an integer or a slice of integers."""
    if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub):
        index = index.operand
    if isinstance(index, ast.Constant):
        return type(index.value) is int
    if isinstance(index, ast.Slice):
        return any(part is not None for part in (index.lower, index.upper)) and all(
            part is None or _is_position(part) for part in (index.lower, index.upper, index.step))
    return False


def positional_reads(source: str, where: str) -> list[str]:
    """``where:line: row[1] reads a row by position; ...`` for each positional subscript of a row."""
    lines = source.splitlines()
    out = []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.Subscript) and _is_row(node.value) and _is_position(node.slice):
            if JUSTIFIED in lines[node.lineno - 1]:
                continue
            out.append(f"{where}:{node.lineno}: {ast.unparse(node)} reads a row by position; "
                       f"use a named row type from ledger/store (or say why in a '{JUSTIFIED}' comment)")
    return out


def test_no_module_reads_a_row_by_position():
    """Every module of ledger/ reads stored rows by field name."""
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 40  # the walk found the package
    problems = []
    for path in files:
        problems += positional_reads(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    assert problems == [], "\n".join(problems)


HINT = "reads a row by position; use a named row type from ledger/store (or say why in a '# positional:' comment)"


@pytest.mark.parametrize(("snippet", "messages"), [
    ("x = row[0]\n", [f"ledger/x.py:1: row[0] {HINT}"]),
    ("def f(rows):\n    return [r for r in rows if entry_row[6] == 'entry']\n",
     [f"ledger/x.py:2: entry_row[6] {HINT}"]),
    ("found = row[1:]\n", [f"ledger/x.py:1: row[1:] {HINT}"]),
    ("last = row[-1]\n", [f"ledger/x.py:1: row[-1] {HINT}"]),
    ("x = row[0]  # positional: the one column of SELECT count(*)\n", []),
    ("x = row.seq\ny = row[column]\nz = rows[0]\nw = row[:]\n", []),
], ids=["index", "in-a-function", "slice", "negative", "justified", "named-or-not-a-row"])
def test_a_positional_row_read_is_named_with_file_and_line(snippet, messages):
    """Integer and slice subscripts of a row are caught with file and line; names, variables and comments pass."""
    assert positional_reads(snippet, "ledger/x.py") == messages
