"""Fault-injection scenarios: the whole path from producer SDK to ledger, under failure.

``make test`` runs the short version; ``make faults`` (``LEDGER_FAULTS=long``)
the long one. Each scenario drives a simulated workload through the real
broker and the real writer, injects its faults, then hands the ledger to the
independent checker (``faultcheck.py``) and adds one row to the table printed
at the end of the session and written to ``build/faults/table-<mode>.md``.
"""

from __future__ import annotations

from uuid import uuid4

import pytest
from faultkit import MODE, ROWS, TABLE_PATH, table_text

from ledger.config import Settings
from ledger.kafka.topics import create_topics


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/faults/" in item.nodeid:
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def s3_settings(durable_broker, tmp_path) -> Settings:
    """Settings on the S3-backed broker (survives kill/restart), topics created, 3 partitions."""
    settings = Settings.load(env={}, bootstrap_servers=durable_broker.bootstrap,
                             topic_prefix=f"f{uuid4().hex[:8]}.", db=str(tmp_path / "ledger.db"), partitions=3)
    create_topics(settings)
    return settings


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not ROWS:
        return
    text = table_text()
    TABLE_PATH.parent.mkdir(parents=True, exist_ok=True)
    TABLE_PATH.write_text(text + "\n")
    terminalreporter.section(f"fault suite ({MODE} version)")
    terminalreporter.write_line(text)
    terminalreporter.write_line(f"(also written to {TABLE_PATH})")
