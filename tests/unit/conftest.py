"""The unit tier needs nothing but Python and SQLite: a test here that asks for a broker is misfiled."""

from __future__ import annotations

import pytest

BROKER_FIXTURES = {"kafka", "settings", "durable_broker", "client_settings", "kafka_client"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "unit" in item.path.parts and BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(f"{item.nodeid} uses a broker fixture: it belongs in tests/integration")
