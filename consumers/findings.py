"""The live findings service: the ledger judged as it grows, findings published to ``{prefix}findings``.

    python -m consumers.findings            # the same as `ledger findings --follow`

Everything it does lives in :mod:`ledger.audit.findings.live` (reading the
growing ledger, incremental judging, publishing, the state file); this file
is the deployable entry point, beside ``consumers/ledger_writer.py``.
"""

from __future__ import annotations

import sys

from ledger.audit.findings.live import FindingsService

__all__ = ["FindingsService", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run `ledger findings --follow` with these arguments."""
    from ledger.cli import main as cli_main

    return cli_main(["findings", "--follow", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
