"""The outbox file: its tables, its mark, and the checks that keep durable mode off other files.

An outbox is marked with ``PRAGMA application_id`` (:data:`APPLICATION_ID`) when created; a file
that is neither empty nor marked (or, for outboxes made before the mark, exactly the outbox table)
is refused before anything is written to it, so ``durable=`` or ``ledger outbox drain`` pointed at
a ledger or another database never switches its journal mode or adds a table. ``PATH.lock`` is the
relay's lock file (one relay per outbox at a time, see outbox.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ledger.errors import StoreError

#: ``PRAGMA application_id`` of every outbox file ("LDOB").
APPLICATION_ID = 0x4C444F42
_OUTBOX_COLUMNS = ["id", "event_id", "topic", "key", "value", "headers", "created_at"]
_OUR_TABLES = {"outbox", "outbox_quarantine", "sqlite_sequence"}

_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    key BLOB,
    value BLOB NOT NULL,
    headers TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


_QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS outbox_quarantine (
    id INTEGER PRIMARY KEY,
    event_id TEXT,
    topic TEXT,
    key BLOB,
    value BLOB,
    headers TEXT,
    created_at REAL,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
)
"""


def pending_count(path: str | Path) -> int:
    """Events waiting in the outbox at ``path`` (checked first: refuses a file that is not an outbox)."""
    path = Path(path)
    check_outbox_file(path, must_exist=True)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise StoreError(f"cannot read outbox {path}: {err}") from err


def check_outbox_file(path: Path, *, must_exist: bool) -> bool:
    """Refuse (StoreError) a file that is not an outbox made by this package; True if it is one, False if new.

    Reads the file without writing to it, and only through SQLite (read-only):
    the application id and the tables. Nothing is created or switched here.

    Never ``open()``/``close()`` the file outside SQLite: closing any descriptor
    of a file drops every POSIX lock this process holds on it, including the
    shared lock a live WAL connection keeps on the database (the put
    connection, when the relay's connection is checked). Another process's
    last connection then checkpoints and deletes the WAL under us: writes go to
    an unlinked WAL (lost) and an exclusive lock elsewhere no longer blocks
    them (SQLite, "How To Corrupt Your Database Files", 2.2).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if must_exist:
            raise StoreError(f"no outbox at {path}") from None
        return False
    except OSError as err:
        raise StoreError(f"cannot read outbox {path}: {err.strerror}") from None
    if not size:
        if must_exist:
            raise StoreError(f"{path} is empty, not an outbox; nothing to drain")
        return False
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            columns = [r[1] for r in conn.execute("PRAGMA table_info(outbox)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        if "not a database" in str(err):
            raise StoreError(f"{path} is not an outbox (not an SQLite file); refusing to touch it") from None
        raise StoreError(f"cannot read outbox {path}: {err}") from err
    made_by_us = app_id == APPLICATION_ID or (app_id == 0 and tables <= _OUR_TABLES and "outbox" in tables)
    if not made_by_us or columns != _OUTBOX_COLUMNS:
        what = "a ledger file" if "entries" in tables and "meta" in tables else "an SQLite file"
        raise StoreError(f"{path} is {what}, not an outbox made by ledger (application_id {app_id:#x}, "
                         f"tables {', '.join(sorted(tables)) or 'none'}); refusing to touch it")
    return True


def connect_outbox(path: Path, *, must_exist: bool = False) -> sqlite3.Connection:
    """A connection to the outbox at ``path`` (checked first), in WAL with ``synchronous=FULL``, tables made."""
    check_outbox_file(path, must_exist=must_exist)
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a returned call must survive power loss too
        conn.execute(_DDL)
        conn.execute(_QUARANTINE_DDL)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    except sqlite3.Error as err:
        raise StoreError(f"cannot open outbox {path}: {err}") from err
    return conn


def open_lock(path: Path):
    """The relay's lock file ``PATH.lock``, opened (not locked): the caller takes the ``flock``."""
    try:
        return open(f"{path}.lock", "a+")
    except OSError as err:
        raise StoreError(f"outbox {path}: cannot open its lock file {path}.lock: {err.strerror}") from err
