"""`ledger consume`: run the ledger writer."""

from __future__ import annotations

import argparse

from . import settings_from

EPILOG = """\
One writer owns one ledger file. It resumes from the offsets stored in the
ledger, so it can be stopped (Ctrl-C, SIGTERM) or killed and restarted at
any time without losing or repeating a record.

example:
  ledger consume --db /var/lib/ledger/ledger.db
  ledger consume --until-idle          # catch up, then exit (scripts, tests)
"""


def register(subparsers, common) -> None:
    p = subparsers.add_parser("consume", parents=[common], help="write the event topics into the ledger",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--until-idle", action="store_true", help="exit once every partition is caught up")
    p.add_argument("--batch-size", type=int, default=10_000, help="records per transaction (default 10000)")
    p.add_argument("--group-id", default="ledger-writer",
                   help="consumer group for lag monitoring only (default ledger-writer)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def run(args) -> int:
    from ledger.ingest.writer import LedgerWriter

    writer = LedgerWriter(settings_from(args), batch_size=args.batch_size, group_id=args.group_id,
                          progress=not args.quiet)
    stats = writer.run(until_idle=args.until_idle)
    counts = ", ".join(f"{status} {n:,}" for status, n in sorted(stats.by_status.items())) or "nothing new"
    print(f"consumed {stats.records:,} record(s): {counts}")
    return 0
