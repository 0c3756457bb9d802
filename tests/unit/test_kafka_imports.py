"""Only the Kafka seam (ledger/kafka/) imports a Kafka client (issue 13 item 3, issue 17).

Reads the imports of every module (AST, so lazy imports inside functions count
too) of the library, the services in consumers/ and the shared test helpers,
and fails naming the module and line when one imports ``kafka`` or
``confluent_kafka`` outside ``ledger/kafka/``.

Exempt, and why:

* ``tests/faults/faultcheck.py``: the fault suite's independent checker. It
  must not read the broker through the code it checks, so it uses a client
  directly (the one the writer under test does not use).
* ``bench/``: the benchmarks measure the bare clients beside the ledger's
  pipelines, which needs the clients themselves.
* test modules that test a client or the broker itself, not the ledger
  (the seam's own tests; the broker's behaviour with a producer timestamp or
  an explicit partition, which the seam deliberately does not offer).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ("kafka", "confluent_kafka")

EXEMPT = {
    "tests/faults/faultcheck.py": "the independent checker reads with the other client, not through the seam",
    "tests/integration/test_kafka_seam.py": "tests the seam against the clients it wraps",
    "tests/integration/test_broker.py": "tests the local broker with a plain client",
    "tests/integration/test_topics.py": "measures what the broker does with a producer-set timestamp",
    "tests/integration/test_writer.py": "sends records to explicit partitions (not offered by the seam)",
    "tests/integration/test_transactions.py": "produces transactions, which the seam does not offer",
}


def checked_files() -> list[Path]:
    files = [*(ROOT / "ledger").rglob("*.py"), *(ROOT / "consumers").rglob("*.py"),
             *(ROOT / "tests").rglob("*.py")]
    return sorted(f for f in files if not f.relative_to(ROOT).as_posix().startswith("ledger/kafka/"))


def client_imports(source: str, path: str) -> list[str]:
    """``path:line: imports NAME`` for every import of a Kafka client in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in CLIENTS:
                found.append(f"{path}:{node.lineno}: imports {name}")
    return found


def test_no_module_outside_the_seam_imports_a_kafka_client():
    """Every module but the seam and the named exemptions reaches Kafka through ledger.kafka only."""
    offenders = []
    for path in checked_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in EXEMPT or rel == "tests/unit/test_kafka_imports.py":
            continue
        offenders += client_imports(path.read_text(), rel)
    assert not offenders, "Kafka clients imported outside ledger/kafka/:\n" + "\n".join(offenders)


def test_every_exemption_still_exists():
    """An exemption for a file that is gone would silently widen the rule."""
    assert [rel for rel in EXEMPT if not (ROOT / rel).exists()] == []


@pytest.mark.parametrize("source", [
    "import kafka\n",
    "from kafka.errors import KafkaError\n",
    "def f():\n    from confluent_kafka import Producer\n",
    "import confluent_kafka.admin as a\n",
])
def test_the_check_names_a_lazy_or_direct_import(source):
    """The check sees imports at any depth (inside functions too) and names the file and line."""
    (found,) = client_imports(source, "ledger/ingest/bad.py")
    assert found.startswith("ledger/ingest/bad.py:")


def test_the_check_ignores_relative_and_look_alike_imports():
    """``from .kafka import x`` (ledger's own package) and ``kafkaesque`` are not the client."""
    assert client_imports("from .kafka import topics\nimport kafkaesque\nfrom ledger.kafka import admin\n", "x.py") == []
