"""Test modules never import each other: what two of them share lives in tests/support/.

A test module that imports another (``from test_ingest import make_event``)
runs that module's import-time code, ties the two files' fates together and
hides where a builder lives; pytest also warns against importing
``conftest``. This test reads the imports (AST, including those inside
functions and ``importlib.import_module("...")`` calls) of every Python file
under tests/ and names each file and line that imports a ``test_*`` module or
a ``conftest``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
HINT = "move what it shares into tests/support/"


def _forbidden(module: str) -> bool:
    """``test_ingest``, ``tests.unit.test_ingest``, ``conftest``: a test module or a conftest."""
    return any(part.startswith("test_") or part == "conftest" for part in module.split("."))


def _dynamic_import(node: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("x")`` / ``import_module("x")`` / ``__import__("x")``."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name in ("import_module", "__import__") and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def imported_names(source: str, filename: str) -> list[tuple[int, str]]:
    """(line, module) for every import in ``source``; ``from . import a`` yields ``a``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.module is None:  # from . import a, b: each name is a module
                found += [(node.lineno, alias.name) for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and (module := _dynamic_import(node)) is not None:
            found.append((node.lineno, module))
    return found


def cross_imports(source: str, where: str) -> list[str]:
    """``where:line: imports MODULE; move what it shares into tests/support/`` for each forbidden import."""
    return [f"{where}:{line}: imports {module}; {HINT}"
            for line, module in imported_names(source, where) if _forbidden(module)]


def test_no_test_module_imports_another():
    """Every .py file under tests/ imports builders from tests/support/, never from a test module or conftest."""
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 50  # the walk found the suite
    problems = []
    for path in files:
        problems += cross_imports(path.read_text(encoding="utf-8"), str(path.relative_to(TESTS.parent)))
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(("snippet", "messages"), [
    ("from test_ingest import make_event\n",
     ["tests/unit/test_x.py:1: imports test_ingest; move what it shares into tests/support/"]),
    ("import json\nimport test_codec as codec_tests\n",
     ["tests/unit/test_x.py:2: imports test_codec; move what it shares into tests/support/"]),
    ("def helper():\n    from tests.unit.test_verify import tamper\n",
     ["tests/unit/test_x.py:2: imports tests.unit.test_verify; move what it shares into tests/support/"]),
    ("from . import test_events, builders\n",
     ["tests/unit/test_x.py:1: imports test_events; move what it shares into tests/support/"]),
    ("from conftest import KafkaHandle\n",
     ["tests/unit/test_x.py:1: imports conftest; move what it shares into tests/support/"]),
    ("import importlib\nmod = importlib.import_module('test_store')\n",
     ["tests/unit/test_x.py:2: imports test_store; move what it shares into tests/support/"]),
    ("from builders import make_event\nfrom samples import sample\nimport testcontainers\nimport pytest_timeout\n",
     []),
], ids=["from", "import-as", "inside-a-function", "relative", "conftest", "import_module", "allowed"])
def test_a_cross_import_is_named_with_file_and_line(snippet, messages):
    """Each way of importing a test module (or conftest) is caught with its file and line; support modules pass."""
    assert cross_imports(snippet, "tests/unit/test_x.py") == messages


def same_basenames(paths) -> list[str]:
    """Test modules that share a file name: pytest's rootdir imports (no __init__.py) refuse the second one."""
    seen: dict[str, str] = {}
    problems = []
    for path in paths:
        name = Path(path).name
        if name in seen:
            problems.append(f"{path}: same file name as {seen[name]}; rename one (e.g. add _broker)")
        else:
            seen[name] = str(path)
    return problems


def test_no_two_test_modules_share_a_file_name():
    """Every test module's file name is unique across the tiers."""
    files = sorted(str(p.relative_to(TESTS.parent)) for p in TESTS.rglob("test_*.py"))
    assert same_basenames(files) == []


def test_a_shared_file_name_is_named():
    assert same_basenames(["tests/unit/test_a.py", "tests/integration/test_a.py"]) == [
        "tests/integration/test_a.py: same file name as tests/unit/test_a.py; rename one (e.g. add _broker)"]
