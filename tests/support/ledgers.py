"""The sample ledger of every status, and the two things tests do to a file: verify it, tamper with it.

``sample_records`` are the twelve entries tests/data/tamper/README.md numbers (seq 1..12);
``tamper`` runs SQL the way someone with file access would (triggers dropped first).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from builders import CODEC, make_event, make_record, open_writer

from ledger.audit.verify import verify_ledger
from ledger.store import Ledger


def sample_records() -> list:
    """Twelve entries covering every status: seq 1..12 as listed in tests/data/tamper/README.md."""
    e1, e2, e3 = make_event(1), make_event(2), make_event(3)
    reused = make_event(6, "LegalDisclosure", event_id=e2["event_id"])  # another event under e2's id
    return [
        make_record(e1, offset=0),                               # seq 1 entry
        make_record(e2, offset=1),                               # seq 2 entry
        make_record(e1, offset=2),                               # seq 3 duplicate of seq 1
        make_record(e2, partition=1, offset=0),                  # seq 4 conflict with seq 2
        make_record(b"junk", partition=1, offset=1),             # seq 5 rejected
        make_record(e3, partition=1, offset=5),                  # seq 6 gap 2..4, seq 7 entry
        make_record(make_event(4, "DataShared"), "ledger.sharing", 0, 0),       # seq 8 entry
        make_record(make_event(5, "LegalDisclosure"), "ledger.disclosure", 0, 0),  # seq 9 entry
        make_record(reused, "ledger.disclosure", 0, 1),          # seq 10 contradiction of seq 2
        make_record(make_event(7), "ledger.consent", 0, 0),      # seq 11 rejected: misrouted
        make_record(e3, partition=1, offset=6, timestamp=1_772_323_200_000),  # seq 12 duplicate of seq 7,
    ]                                                            # recorded before it (earlier_copies)


def sample_ledger(path: Path) -> Path:
    ledger, ingestor = open_writer(path)
    ingestor.ingest(sample_records())
    ledger.close()
    return path


def verify_file(path: Path, **kwargs):
    with Ledger.open(path) as ledger:
        return verify_ledger(ledger, codec=kwargs.pop("codec", CODEC), **kwargs)


def tamper(path: Path, statements: list[str]) -> None:
    """Run SQL on the file the way an attacker with file access would: triggers dropped first."""
    conn = sqlite3.connect(path, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    for sql in statements:
        conn.execute(sql)
    conn.close()
