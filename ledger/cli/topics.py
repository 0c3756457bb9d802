"""`ledger topics create|list`: the ledger's topics under the configured prefix."""

from __future__ import annotations

import argparse
import sys

from . import settings_from

EPILOG = """\
Topics (prefix from --topic-prefix / LEDGER_TOPIC_PREFIX, default 'ledger.'):
  access, sharing, disclosure, consent (events) and dlq (undecodable records).
`create` is idempotent: infinite retention (retention.ms=-1), replication 3
with min.insync.replicas=2 on clusters of 3+ brokers. An existing topic is
never changed; a different partition count is reported as a warning.

example:
  ledger topics create --partitions 12
  ledger topics list --bootstrap-servers kafka:9092
"""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(subparsers, common) -> None:
    p = subparsers.add_parser("topics", help="create or list the ledger's Kafka topics",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", parents=[common], help="create the topics if missing (idempotent)",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    create.add_argument("--partitions", type=positive_int, metavar="N",
                        help="partitions per new topic (env LEDGER_PARTITIONS, default 6); "
                             "existing topics keep theirs")
    create.set_defaults(func=run_create)
    listing = actions.add_parser("list", parents=[common], help="show the topics and their partition counts",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    listing.set_defaults(func=run_list)


def run_create(args) -> int:
    from ledger.kafka.topics import create_topics

    settings = settings_from(args)
    statuses = create_topics(settings, partitions=args.partitions)
    width = max(len(s.name) for s in statuses)
    for status in statuses:
        state = "created" if status.created else "exists"
        print(f"{state:8} {status.name:{width}}  {status.partitions} partitions")
    for status in statuses:
        for warning in status.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def run_list(args) -> int:
    from ledger.kafka.topics import all_topics, list_topics

    settings = settings_from(args)
    found = list_topics(settings)
    names = list(dict.fromkeys([*all_topics(settings.topic_prefix), *found]))
    width = max(len(n) for n in names)
    for name in names:
        count = found.get(name)
        print(f"{name:{width}}  {count if count is not None else 'missing (run `ledger topics create`)'}")
    return 0
