"""`ledger outbox`: deliver what a durable-mode producer left behind."""

from __future__ import annotations

import argparse

from . import settings_from

EPILOG = """\
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
    from ..outbox import drain

    delivered = drain(args.path, settings_from(args), timeout=args.timeout)
    print(f"delivered {delivered} event(s) from {args.path}")
    return 0


def run_status(args) -> int:
    import sqlite3

    from ..errors import StoreError

    try:
        conn = sqlite3.connect(f"file:{args.path}?mode=ro", uri=True)
        pending = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    except sqlite3.Error as err:
        raise StoreError(f"cannot read outbox {args.path}: {err}") from err
    print(f"{pending} event(s) waiting in {args.path}")
    return 0
