"""The ledger writer: the long-running service that appends the event topics to the ledger.

    python -m consumers.ledger_writer          # the same as `ledger consume`

Everything it does lives in :mod:`ledger.ingest.writer` (assignment, batching,
signals, progress); this file is the deployable entry point, so that
``consumers/`` reads as "the services you run".
"""

from __future__ import annotations

import sys

from ledger.ingest.writer import LedgerWriter

__all__ = ["LedgerWriter", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run `ledger consume` with these arguments."""
    from ledger.cli import main as cli_main

    return cli_main(["consume", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
