"""The store owns its SQL: no module outside ledger/store/ writes SQL on the ledger's tables or
reaches for a ledger's connection (issue 13, item 4).

The scan reads every module's AST: string constants (and the literal parts of
f-strings) that look like SQL on one of the ledger's tables, and any ``.conn``
attribute or ``getattr(..., "conn")``. A second backend then implements
ledger/store/ (reads.py and the Ledger's methods) and nothing else.

Exceptions, each a module that owns a file that is not the ledger:
- ledger/produce/outbox.py, outbox_file.py, outbox_relay.py: the SDK's outbox file (its own tables
  ``outbox``, ``outbox_quarantine``);
- ledger/tlog/witness.py: a witness's state file (``checkpoints``, ``evidence``);
- ledger/tlog/follow.py: a witness follower's tables in that file (``follow_positions``, ``follow_cosigned``);
- ledger/audit/flat_export.py: the flat export's output file, built with sqlite-utils (``db.conn``
  is sqlite-utils' connection to that output; its views are SQL on the export's own tables, which
  happen to share names such as ``data_accessed``, never on the ledger file).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ledger.store.schema import APPEND_ONLY_TABLES

ROOT = Path(__file__).resolve().parents[2] / "ledger"
STORE = ROOT / "store"
EXCEPTIONS = {
    "produce/outbox.py": "owns the SDK's outbox file",
    "produce/outbox_file.py": "owns the SDK's outbox file (its tables and checks)",
    "produce/outbox_relay.py": "owns the SDK's outbox file (sends and deletes its rows)",
    "tlog/witness.py": "owns a witness's state file",
    "tlog/follow.py": "owns a witness follower's tables in the witness's state file",
    "audit/flat_export.py": "owns the flat export's output file (sqlite-utils)",
}
_TABLES = "|".join(sorted(APPEND_ONLY_TABLES))
#: SQL naming a ledger table, or a statement keyword opening a string and followed by more (an f-string's
#: table is a placeholder; a bare word such as the consent action "DELETE" is not SQL).
_SQL = re.compile(rf"\b(?:FROM|INTO|JOIN|UPDATE|TABLE)\s+(?:{_TABLES})\b|^\s*(?:SELECT|INSERT|UPDATE|DELETE|PRAGMA|"
                  r"WITH\s+RECURSIVE|CREATE)\s+\S")


def _literal_text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def offences(path: Path) -> list[str]:
    """``file:line: what`` for each SQL string and each connection access in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    inner = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []
    where = path.relative_to(ROOT.parent)
    for node in ast.walk(tree):
        if id(node) in docstrings or id(node) in inner:
            continue
        text = _literal_text(node)
        if text is not None and _SQL.search(text):
            found.append(f"{where}:{node.lineno}: SQL {text.strip()[:60]!r}")
        if isinstance(node, ast.Attribute) and node.attr == "conn":
            found.append(f"{where}:{node.lineno}: .conn (a ledger's connection belongs to the store)")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value == "conn"):
            found.append(f"{where}:{node.lineno}: getattr(..., 'conn')")
        if isinstance(node, ast.keyword) and node.arg == "where" and _literal_text(node.value) is not None:
            found.append(f"{where}:{node.value.lineno}: an SQL condition passed as where= (ask the store for a named selection)")
    return found


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py")
                  if STORE not in p.parents and p.relative_to(ROOT).as_posix() not in EXCEPTIONS)


def test_no_sql_or_connection_outside_the_store():
    """No module outside ledger/store/ (but the listed owners of other files) holds SQL or a ledger's conn."""
    found = [line for path in _modules() for line in offences(path)]
    assert not found, "SQL or connection access outside ledger/store/ (move it behind store/reads.py):\n" + "\n".join(found)


@pytest.mark.parametrize("module", sorted(EXCEPTIONS))
def test_the_exceptions_exist(module):
    """Each exception names a module that still exists (a stale exception would hide nothing but mislead)."""
    assert (ROOT / module).is_file()


@pytest.mark.parametrize("source, expected", [
    ('q = "SELECT count(*) FROM entries"\n', "SQL"),
    ('def f(t):\n    return f"SELECT seq FROM {t} WHERE x"\n', "SQL"),
    ('q = "SELECT 1 FROM earlier_copies LIMIT 1"\n', "SQL"),
    ("def f(ledger):\n    return ledger.conn\n", ".conn"),
    ('def f(s):\n    return getattr(s, "conn", s)\n', "getattr"),
    ('def f(s):\n    return iter_entries(s, where="status = \'rejected\'")\n', "where="),
])
def test_the_scan_catches_offences(tmp_path, monkeypatch, source, expected):
    """The scan names SQL strings, f-string SQL and connection access (it must fail when one is added)."""
    module = tmp_path / "ledger" / "audit" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text(source)
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path / "ledger")
    [line] = offences(module)
    assert line.startswith("ledger/audit/bad.py:") and expected in line


def test_prose_is_not_sql(tmp_path, monkeypatch):
    """Docstrings and messages that mention a table in words are not flagged."""
    module = tmp_path / "ledger" / "audit" / "ok.py"
    module.parent.mkdir(parents=True)
    module.write_text('"""Select entries from the ledger."""\nmsg = "event_ids has 3 rows for 2 entries"\n')
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path / "ledger")
    assert offences(module) == []
