"""`ledger consume`: run the ledger writer."""

from __future__ import annotations

import argparse

from . import add_read_ahead, settings_from

EPILOG = """\
One writer owns one ledger file. It resumes from the offsets stored in the
ledger, so it can be stopped (Ctrl-C, SIGTERM) or killed and restarted at
any time without losing or repeating a record.

example:
  ledger consume --db /var/lib/ledger/ledger.db
  ledger consume --until-idle          # catch up, then exit (scripts, tests)
  ledger consume --checkpoint-every 60s --key keys/ledger.example.com_audit.key
                                       # sign and publish checkpoints every minute
"""


def register(subparsers, common) -> None:
    p = subparsers.add_parser("consume", parents=[common], help="write the event topics into the ledger",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--until-idle", action="store_true", help="exit once every partition is caught up")
    p.add_argument("--batch-size", type=int, default=10_000, help="records per transaction (default 10000)")
    p.add_argument("--group-id", default="ledger-writer",
                   help="consumer group for lag monitoring only (default ledger-writer)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--checkpoint-every", metavar="PERIOD|ENTRIES",
                   help="sign checkpoints of the committed trees (as `ledger checkpoint`) every PERIOD (60s, 5m, "
                        "1h) or every ENTRIES new entries (10000), after a committed batch, and when stopping; "
                        "needs --key")
    p.add_argument("--key", metavar="FILE", help="the log's signer key file for --checkpoint-every (mode 0600)")
    p.add_argument("--checkpoint-out", metavar="DIR",
                   help="also write the checkpoint files there (as `ledger checkpoint --out`)")
    p.add_argument("--no-publish", action="store_true",
                   help="with --checkpoint-every: store the checkpoints but do not publish them to the "
                        "checkpoints topic")
    p.add_argument("--log-origin", metavar="ORIGIN", help="log origin (env LEDGER_LOG_ORIGIN)")
    add_read_ahead(p)
    p.set_defaults(func=run)


def _checkpointer(args, settings):
    from ledger.errors import ConfigError

    if args.checkpoint_every is None:
        if args.key or args.checkpoint_out or args.no_publish:
            raise ConfigError("--key, --checkpoint-out and --no-publish only apply with --checkpoint-every")
        return None
    if not args.key:
        raise ConfigError("--checkpoint-every needs --key FILE, the log's signer key")
    from ledger.ingest.checkpointing import Checkpointer, Every

    return Checkpointer(settings, args.key, Every.parse(args.checkpoint_every), publish=not args.no_publish,
                        out_dir=args.checkpoint_out)


def run(args) -> int:
    from ledger.ingest.writer import LedgerWriter

    settings = settings_from(args)
    if args.log_origin:
        from ledger.config import _check_log_origin

        _check_log_origin(args.log_origin)
        settings = settings.with_(log_origin=args.log_origin)
    writer = LedgerWriter(settings, batch_size=args.batch_size, group_id=args.group_id,
                          progress=not args.quiet, checkpointer=_checkpointer(args, settings))
    stats = writer.run(until_idle=args.until_idle)
    counts = ", ".join(f"{status} {n:,}" for status, n in sorted(stats.by_status.items())) or "nothing new"
    print(f"consumed {stats.records:,} record(s): {counts}")
    return 0
