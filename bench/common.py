"""Shared set-up for the benchmark scripts: a broker, fresh topics, machine facts, the produce loops."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.config import Settings


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


#: Both implementations behind the seam, in the order the benchmarks report them.
CLIENTS = ("confluent", "kafka-python")


def add_kafka_clients_arg(parser) -> None:
    """``--kafka-client both|confluent|kafka-python|auto``: the clients one run measures (default both)."""
    parser.add_argument("--kafka-client", choices=("both", "auto", *CLIENTS), default="both",
                        help="Kafka client(s) behind the seam, measured in the same run (default: both)")


def selected_clients(choice: str) -> list[str]:
    """The client names ``--kafka-client`` selects (``auto``: the one the seam would choose)."""
    if choice == "both":
        return list(CLIENTS)
    if choice == "auto":
        from ledger.kafka import client_name

        return [client_name(Settings.load(env={}, kafka_client="auto"))]
    return [choice]


def add_mix_arg(parser, default: str = "both") -> None:
    """``--mix both|simulated|reference`` (see bench_ingest.workload_chunk)."""
    parser.add_argument("--mix", choices=("both", "simulated", "reference"), default=default,
                        help=f"workload(s), measured in the same run (default: {default})")


def selected_mixes(choice: str) -> list[str]:
    return ["reference", "simulated"] if choice == "both" else [choice]


def describe_client(settings) -> str:
    """Which client the seam chose, why, and that implementation's producer and consumer settings."""
    from ledger.kafka import choose

    choice = choose(settings)
    if choice.name == "confluent":
        from ledger.kafka import confluent as impl
    else:
        from ledger.kafka import kafka_python as impl
    from ledger.ingest.readahead import read_ahead_choice

    return (f"kafka client: {choice.name} ({choice.why})\n"
            f"  producer settings: {impl.PRODUCER_CONFIG}\n  consumer settings: {impl.CONSUMER_CONFIG}\n"
            f"  read-ahead (writer, replay): {read_ahead_choice(settings)[1]}")


def add_read_ahead_arg(parser) -> None:
    parser.add_argument("--read-ahead", choices=("auto", "process", "off"), default="auto",
                        help="the writer's and replay's second process (default auto, as the product)")



def seam_send(producer, wires) -> list:
    """Send pre-encoded records (``WireRecord``) through the seam's producer; their futures, not waited on."""
    return [producer.send(w.topic, key=w.key, value=w.value, headers=w.headers) for w in wires]


def raw_confluent_producer(settings, first):
    """A bare confluent-kafka ``Producer`` with the seam's producer settings, connected by sending ``first``."""
    from confluent_kafka import Producer

    from ledger.kafka.confluent import PRODUCER_CONFIG

    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, **PRODUCER_CONFIG})
    producer.produce(first.topic, first.value, first.key, headers=first.headers)
    producer.flush()
    return producer


def raw_produce(producer, wires) -> None:
    """librdkafka's ``produce`` for each record, no delivery callback (the floor under the seam); no flush.

    A full local queue (BufferError) is waited out with ``poll``; callbacks are served every 1,000 records.
    """
    for i, w in enumerate(wires):
        try:
            producer.produce(w.topic, w.value, w.key, headers=w.headers)
        except BufferError:
            producer.poll(0.05)
            producer.produce(w.topic, w.value, w.key, headers=w.headers)
        if i % 1000 == 0:
            producer.poll(0)
