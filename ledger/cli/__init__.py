"""The ``ledger`` command: a thin layer over the library.

Each command group lives in its own module exposing ``register(subparsers,
common)``; ``common`` is a parent parser carrying ``--bootstrap-servers``,
``--topic-prefix`` and ``--db``. Commands return an exit code. Library errors
become one clean line on stderr. Modules import Kafka only inside the
functions that talk to Kafka, so read-only commands start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import LedgerError

# Order is the order shown in `ledger --help`.
COMMAND_MODULES = (
    "broker",
    "topics",
    "schemas",
    "emit",
    "outbox",
    "simulate",
    "consume",
    "ledgerfile",  # head, verify, export, reprocess
    "query",  # who-saw, disclosures, accesses, conflicts, obligations
    "report",
    "replay",  # replay, diff
    "keys",  # keys generate, verify-receipt
    "tlog",  # checkpoint, prove
    "witness",  # witness serve, follow, evidence
    "doctor",
    "policy",  # policy check, show, publish
    "findings",
    "serve",  # tokens, serve (the http extra)
)


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument("--bootstrap-servers", metavar="HOST:PORT",
                       help="Kafka bootstrap servers (env LEDGER_BOOTSTRAP_SERVERS, default 127.0.0.1:9092)")
    group.add_argument("--topic-prefix", metavar="PREFIX",
                       help="topic name prefix (env LEDGER_TOPIC_PREFIX, default 'ledger.')")
    group.add_argument("--db", metavar="PATH", help="ledger file (env LEDGER_DB, default ./ledger.db)")
    group.add_argument("--kafka-client", choices=("auto", "confluent", "kafka-python"),
                       help="Kafka client library (env LEDGER_KAFKA_CLIENT, default auto: confluent-kafka "
                            "when installed); `ledger doctor` says which is used and why")
    return common


def add_read_ahead(parser: argparse.ArgumentParser) -> None:
    """``--read-ahead`` for the commands that ingest (consume, replay)."""
    parser.add_argument("--read-ahead", choices=("auto", "process", "off"),
                        help="fetch and decode in a second process (env LEDGER_READ_AHEAD, default auto: on two "
                             "or more CPUs); `ledger doctor` says which and why")


def settings_from(args: argparse.Namespace):
    from ..config import Settings

    return Settings.load(
        bootstrap_servers=getattr(args, "bootstrap_servers", None),
        topic_prefix=getattr(args, "topic_prefix", None),
        db=getattr(args, "db", None),
        kafka_client=getattr(args, "kafka_client", None),
        read_ahead=getattr(args, "read_ahead", None),
    )


#: Which module registers a command, so a run of one command imports only its module (`ledger prove`
#: starts in ~0.1 s instead of importing all 17). A command missing here still works: the whole parser
#: is built (tests/unit/test_cli_lazy.py checks every entry names the module that registers it).
COMMAND_HOMES = {
    "prove": "tlog", "checkpoint": "tlog", "witness": "witness", "verify-receipt": "keys", "verify-report": "keys", "keys": "keys",
    "head": "ledgerfile", "verify": "ledgerfile", "export": "ledgerfile", "reprocess": "ledgerfile",
    "who-saw": "query", "disclosures": "query", "accesses": "query", "conflicts": "query",
    "obligations": "query", "report": "report", "replay": "replay", "diff": "replay",
}


def build_parser(only: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    """The ``ledger`` parser; ``only`` registers just those command modules (a one-command run)."""
    parser = argparse.ArgumentParser(
        prog="ledger",
        description="Audit and disclosure ledger: who saw which customer's data, when, and why.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_options()
    for name in COMMAND_MODULES if only is None else only:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(subparsers, common)
    return parser


def _parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """Only the command's own module when the first argument names a known command; else every module."""
    home = COMMAND_HOMES.get(argv[0]) if argv else None
    return build_parser(None if home is None else (home,))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser_for(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LedgerError as err:
        print(f"ledger {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
