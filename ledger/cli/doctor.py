"""`ledger doctor`: which Kafka client the ledger uses and why, and (with --connect) whether Kafka answers."""

from __future__ import annotations

import argparse

from . import settings_from

EPILOG = """\
Prints the Kafka client in use (LEDGER_KAFKA_CLIENT / --kafka-client; auto
takes confluent-kafka when it is installed), the reason, the installed client
versions, the names (never the values) of the security settings given, and
whether consume and replay read ahead in a second process (LEDGER_READ_AHEAD
/ --read-ahead). Nothing is contacted unless --connect is given.

example:
  ledger doctor
  ledger doctor --kafka-client kafka-python --connect --bootstrap-servers kafka:9092
"""


def register(subparsers, common) -> None:
    p = subparsers.add_parser("doctor", parents=[common], help="show the Kafka client in use and why",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connect", action="store_true", help="also list the topics on the cluster, through that client")
    p.set_defaults(func=run)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def run(args) -> int:
    from ..kafka import admin, choose
    from ..kafka.security import MAPPING, kafka_python_options, librdkafka_options

    settings = settings_from(args)
    choice = choose(settings)
    print(f"kafka client: {choice.name}")
    print(f"why: {choice.why}")
    print(f"installed: kafka-python {_version('kafka-python')}, confluent-kafka {_version('confluent-kafka')}")
    # Mapping them here refuses, by name, a setting the chosen client could not honour.
    (librdkafka_options if choice.name == "confluent" else kafka_python_options)(settings)
    column = 1 if choice.name == "confluent" else 0
    mapped = [f"{key} -> {MAPPING[key][column]}" for key in sorted(settings.security)]
    print(f"security settings: {', '.join(mapped) or 'none (PLAINTEXT)'}")
    from ..ingest.readahead import read_ahead_choice

    print(f"read-ahead (consume, replay): {read_ahead_choice(settings)[1]}")
    if args.connect:
        with admin(settings, timeout=10.0) as cluster:
            topics = cluster.topic_partitions()
            brokers = cluster.broker_count()
        ours = sum(1 for name in topics if name.startswith(settings.topic_prefix))
        print(f"connected: {settings.bootstrap_servers}, {brokers} broker(s), {len(topics)} topic(s), "
              f"{ours} under {settings.topic_prefix!r}")
    return 0
