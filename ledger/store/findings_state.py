"""The live findings service's own state file (SQLite, beside the ledger, never inside it).

    state = FindingsState.open("ledger.db.findings-state", identity={"ledger": ..., "topic": ..., "policy": ...})
    state.published()                    # {finding_id: finding as JSON}: what the topic says stands
    state.commit(position, judged_at, added={id: json}, removed={ids})   # one transaction
    read_meta("ledger.db.findings-state")   # read-only, for `ledger findings --health`

The service commits only after the producer's flush succeeded (at-least-once:
a crash between the two republishes with the same ids). ``identity`` is
written when the file is created; opening it later for another ledger, topic
or policy mode is refused, since its findings would be another service's.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ..errors import StoreError

STATE_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS published (finding_id TEXT PRIMARY KEY, finding TEXT NOT NULL);
"""


class FindingsState:
    """Position and published (open) findings of one live findings service."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn

    @classmethod
    def open(cls, path: str | Path, identity: dict[str, str]) -> FindingsState:
        path = Path(path)
        try:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(_SCHEMA)
            meta = dict(conn.execute("SELECT key, value FROM meta"))
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the findings state file {path}: {err}") from err
        if not meta:
            rows = [("state_version", STATE_VERSION), *sorted(identity.items())]
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", rows)
        else:
            if meta.get("state_version") != STATE_VERSION:
                conn.close()
                raise StoreError(f"{path}: state version {meta.get('state_version')!r}, this service writes "
                                 f"{STATE_VERSION!r}; move the file away to start afresh (the topic then gets "
                                 f"each standing finding again, with the same ids)")
            for key, value in identity.items():
                if meta.get(key) != value:
                    conn.close()
                    raise StoreError(f"{path} belongs to another findings service: its {key} is "
                                     f"{meta.get(key)!r}, this one's {value!r}; give --state another file")
        return cls(path, conn)

    def published(self) -> dict[str, dict]:
        return {fid: json.loads(text) for fid, text in self.conn.execute("SELECT finding_id, finding FROM published")}

    def get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        (value,) = row
        return value

    def commit(self, *, position: str, judged_at: str, added: dict[str, dict], removed, late: int = 0,
               committed_at: str = "", counters: dict[str, int] | None = None) -> None:
        """Record a published step: its position and instant, the findings added and those retracted, how
        many entries arrived behind the position and wait for the next rewind (``late``), and the wall
        clock of the commit (``committed_at``: the service's heartbeat, what ``--health`` checks), and
        ``counters`` of the service's work (rebuilds, rewinds) for whoever watches it."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("DELETE FROM published WHERE finding_id = ?", [(i,) for i in removed])
            self.conn.executemany("INSERT OR REPLACE INTO published (finding_id, finding) VALUES (?, ?)",
                                  [(i, json.dumps(f, sort_keys=True)) for i, f in added.items()])
            self.conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                  [("position", position), ("judged_at", judged_at),
                                   ("late_pending", str(late)), ("committed_at", committed_at),
                                   *((k, str(v)) for k, v in (counters or {}).items())])
            self.conn.execute("COMMIT")
        except sqlite3.Error as err:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise StoreError(f"cannot write the findings state file {self.path}: {err}") from err

    def close(self) -> None:
        self.conn.close()


def read_meta(path: str | Path) -> dict[str, str]:
    """The state file's meta (position, judged_at, committed_at, …), read-only: never creates the file."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no findings state at {path} (has `ledger findings --follow` run with this --state?)")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return dict(conn.execute("SELECT key, value FROM meta"))
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the findings state file {path}: {err}") from err


__all__ = ["STATE_VERSION", "FindingsState", "read_meta"]
