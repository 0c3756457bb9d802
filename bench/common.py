"""Shared set-up for the benchmark scripts: a broker, fresh topics, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.config import Settings  # noqa: E402


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


@contextmanager
def bench_settings(partitions: int = 6, db: str | None = None, kafka_client: str = "auto"):
    """Settings on LEDGER_BENCH_BOOTSTRAP, or on a throw-away local broker; fresh topics."""
    from ledger.kafka.topics import create_topics

    bootstrap = os.environ.get("LEDGER_BENCH_BOOTSTRAP")
    broker = None
    if bootstrap is None:
        from ledger.dev.broker import LocalBroker

        broker = LocalBroker(port=0)
        broker.start()
        bootstrap = broker.bootstrap
    try:
        settings = Settings.load(env={}, bootstrap_servers=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
                                 partitions=partitions, db=db or "bench.db", kafka_client=kafka_client)
        create_topics(settings)
        yield settings
    finally:
        if broker is not None:
            broker.stop()


def median(values: list[float]) -> float:
    return statistics.median(values)


def add_kafka_client_arg(parser) -> None:
    """``--kafka-client auto|confluent|kafka-python``: the seam's implementation the run uses."""
    parser.add_argument("--kafka-client", choices=("auto", "confluent", "kafka-python"), default="auto",
                        help="Kafka client behind the seam (default: auto, confluent-kafka when installed)")


def describe_client(settings) -> str:
    """Which client the seam chose, why, and that implementation's producer and consumer settings."""
    from ledger.kafka import choose

    choice = choose(settings)
    if choice.name == "confluent":
        from ledger.kafka import confluent as impl
    else:
        from ledger.kafka import kafka_python as impl
    return (f"kafka client: {choice.name} ({choice.why})\n"
            f"  producer settings: {impl.PRODUCER_CONFIG}\n  consumer settings: {impl.CONSUMER_CONFIG}")
