"""`ledger replay` and `ledger diff`: rebuild from Kafka and prove the ledgers match."""

from __future__ import annotations

import argparse
import json

from . import add_read_ahead, settings_from

REPLAY_EPILOG = """\
Reads the records whose Kafka timestamp (recorded time) lies in [--from, --to)
up to the end of each partition as it stood when the replay started, through
the writer's own decoding and hashing, into a fresh ledger. Never writes to
Kafka. A replay of everything reproduces `ledger head` exactly.

example:
  ledger replay --into /tmp/replayed.db
  ledger replay --into /tmp/march.db --from 2026-03-01T00:00:00Z --to 2026-04-01T00:00:00Z
  ledger diff ledger.db /tmp/march.db --common-range
"""

DIFF_EPILOG = """\
Lists records present in one ledger and not the other, records whose
leaf hashes differ, and records with the same bytes whose readable form
(what the queries return) differs, by topic, partition, offset and event_id.
Exit 0 only when both hold the same records and read them the same way.

example:
  ledger diff ledger.db /tmp/replayed.db
  ledger diff ledger.db /tmp/march.db --common-range --format json
"""


def register(subparsers, common) -> None:
    p = subparsers.add_parser("replay", parents=[common], help="rebuild a fresh ledger from Kafka",
                              epilog=REPLAY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--into", required=True, metavar="NEW.db", help="the fresh ledger file to write")
    p.add_argument("--from", dest="from_", metavar="T", help="recorded time, inclusive (ISO-8601 with offset)")
    p.add_argument("--to", metavar="T", help="recorded time, exclusive (ISO-8601 with offset)")
    p.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these topics (default: the event topics)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_read_ahead(p)
    p.set_defaults(func=run_replay)

    d = subparsers.add_parser("diff", help="compare two ledgers record by record", epilog=DIFF_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("a", metavar="A.db")
    d.add_argument("b", metavar="B.db")
    d.add_argument("--common-range", action="store_true", help="compare only what both ledgers cover")
    d.add_argument("--format", choices=("text", "json"), default="text")
    d.set_defaults(func=run_diff)


def run_replay(args) -> int:
    from ledger.ingest.replay import Progress, replay
    from ledger.model.times import parse_time, to_millis

    from_ms = to_millis(parse_time(args.from_, option="--from")) if args.from_ else None
    to_ms = to_millis(parse_time(args.to, option="--to")) if args.to else None
    result = replay(settings_from(args), args.into, from_ms=from_ms, to_ms=to_ms, topics=args.topics,
                    progress=None if args.quiet else Progress())
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(result.counts.items()) if v)
    print(f"replayed {result.replayed:,} of {result.scanned:,} records scanned into {args.into} "
          f"in {result.seconds:.1f}s ({counts or 'nothing'})")
    for line in result.coverage.describe():
        print(f"  covers {line}")
    return 0


def run_diff(args) -> int:
    from ledger.audit.diff import diff_ledgers

    result = diff_ledgers(args.a, args.b, common_range=args.common_range)
    if args.format == "json":
        print(json.dumps({"compared": result.compared, "same": result.same,
                          "differences": [d.__dict__ for d in result.differences]}, indent=2))
    else:
        for d in result.differences:
            print(d.line())
        scope = " in the common range" if args.common_range else ""
        verdict = "same records" if result.same else f"{len(result.differences)} difference(s)"
        print(f"compared {result.compared:,} records{scope}: {verdict}")
    return 0 if result.same else 1
