"""`ledger outbox`: deliver what a durable-mode producer left behind."""

from __future__ import annotations

import argparse

from . import settings_from

EPILOG = """\
A file that is not an outbox made by ledger is refused before anything is
written to it. drain moves a row it cannot read to the table
outbox_quarantine, with its reason, and delivers the others (exit 1 then).

example:
  ledger outbox drain /var/lib/billing/audit-outbox.db
  ledger outbox status /var/lib/billing/audit-outbox.db
"""


def register(subparsers, common) -> None:
    p = subparsers.add_parser("outbox", help="durable-mode outbox files", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    drain = sub.add_parser("drain", parents=[common], help="send every event left in an outbox file",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    drain.add_argument("path", help="the outbox file")
    drain.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds (default 300)")
    drain.set_defaults(func=run_drain)
    status = sub.add_parser("status", parents=[common], help="how many events wait in an outbox file")
    status.add_argument("path", help="the outbox file")
    status.set_defaults(func=run_status)


def run_drain(args) -> int:
    import sys

    from ledger.produce.outbox_relay import drain

    quarantined = []

    def report(row_id: int, reason: str) -> None:
        quarantined.append(row_id)
        print(f"row {row_id}: quarantined: {reason}", file=sys.stderr)

    delivered = drain(args.path, settings_from(args), timeout=args.timeout, on_quarantine=report)
    print(f"delivered {delivered} event(s) from {args.path}"
          + (f", quarantined {len(quarantined)} unreadable row(s) (table outbox_quarantine)" if quarantined else ""))
    return 1 if quarantined else 0


def run_status(args) -> int:
    from ledger.produce.outbox_file import pending_count

    pending = pending_count(args.path)
    print(f"{pending} event(s) waiting in {args.path}")
    return 0
