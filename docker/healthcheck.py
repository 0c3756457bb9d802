"""Healthy while a ledger writer holds the writer lock on the ledger file.

    python docker/healthcheck.py [/data/ledger.db]    # exit 0 healthy, 1 not

`ledger consume` keeps an exclusive flock on the ledger file itself (its
inode, whatever path it was opened by) for as long as it runs. This reads /proc/locks instead of trying the lock itself, so the check
can never take the lock from under a writer that is just starting.
"""

from __future__ import annotations

import os
import sys


def writer_holds_lock(db: str, proc_locks: str = "/proc/locks") -> bool:
    try:
        inode = os.stat(db).st_ino
        with open(proc_locks) as fh:
            lines = fh.read().splitlines()
    except OSError:
        return False
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF": major:minor:inode in field 6
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE":
            if fields[5].rsplit(":", 1)[-1] == str(inode):
                return True
    return False


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LEDGER_DB", "/data/ledger.db")
    healthy = writer_holds_lock(path)
    print("writer holds the ledger lock" if healthy else f"no writer holds the lock on {path}")
    sys.exit(0 if healthy else 1)
