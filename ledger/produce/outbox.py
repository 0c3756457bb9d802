"""Durable mode: the transactional-outbox pattern for the producer SDK.

``put`` commits the encoded event to a local SQLite file (``synchronous=FULL``)
before it returns, so an event whose call returned survives the process being
killed at once. Concurrent ``put`` calls share commits (group commit): the
first caller writes every row queued by then in one transaction, one fsync,
and each caller returns only once the transaction holding its own row has
committed, or raises if it failed; a server recording many reads at once
pays one fsync per group instead of one per read, and never waits for
more than the commit in progress and its own. A relay thread sends outbox
rows in id order and deletes each row once Kafka acknowledged it; ``ledger
outbox drain PATH`` delivers what a dead process left behind.

Delivery is at-least-once: a row whose ack was lost is sent again, and the
ledger removes the repeat by ``event_id``. Order: the relay sends a bounded
batch, waits for every ack, and only then deletes the acknowledged prefix; one
request in flight per connection keeps per-partition order within a batch.

One relay per outbox file at a time (an ``flock`` on ``PATH.lock``); other
processes sharing the file (``ledger serve --workers N``) only write to it,
take the relay over when its holder exits, and meanwhile settle their own
deliveries once they see the relaying process deleted the rows (their
``Delivered`` then has no partition or offset: another process got the ack).

Files are checked before anything is written to them: an outbox is marked with
``PRAGMA application_id`` (:data:`APPLICATION_ID`) when created; a file that is
neither empty nor marked (or, for outboxes made before the mark, exactly the
outbox table) is refused, so ``durable=`` or ``ledger outbox drain`` pointed
at a ledger or another database never switches its journal mode or adds a table.

Failures surface: a row the relay cannot read (headers not JSON...) is moved
to ``outbox_quarantine`` with its reason and the rest is delivered; anything
else that stops the relay thread is kept, and the next ``put``, ``flush`` and
``close`` raise :class:`~ledger.errors.OutboxRelayError` with it, as does
every delivery still waiting.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
from base64 import b64decode, b64encode
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.config import Settings
from ledger.errors import BrokerError, OutboxRelayError, StoreError
from ledger.kafka import open_producer

if TYPE_CHECKING:
    from .producer import WireRecord

BATCH_ROWS = 2000
#: Pause of the relay after a batch smaller than BATCH_ROWS, so that events put one by one are sent in
#: batches: Kafka gets them at most this much later, and nobody's call waits for it.
RELAY_LINGER_SECONDS = 0.05
RETRY_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0)
#: Default wait of ``put`` for another process's write lock on the outbox file.
WRITE_TIMEOUT_SECONDS = 30.0

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


def _connect(path: Path, *, must_exist: bool = False) -> sqlite3.Connection:
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


def _open_lock(path: Path):
    try:
        return open(f"{path}.lock", "a+")
    except OSError as err:
        raise StoreError(f"outbox {path}: cannot open its lock file {path}.lock: {err.strerror}") from err


@dataclass(frozen=True)
class RelayedElsewhere:
    """The ack of a row another process sharing the outbox relayed: the topic is known, not where it landed."""

    topic: str | None
    partition: int | None = None
    offset: int | None = None


_INSERT = "INSERT INTO outbox (event_id, topic, key, value, headers, created_at) VALUES (?,?,?,?,?,?)"


class _Put:
    """One ``put`` waiting for its group's commit."""

    __slots__ = ("done", "error", "future", "row")

    def __init__(self, row: tuple):
        self.row = row
        self.future: Future = Future()
        self.done = False
        self.error: BaseException | None = StoreError("not committed: the committing thread was interrupted")


class Outbox:
    """A local SQLite outbox with a background relay to Kafka."""

    def __init__(self, path: str | Path, settings: Settings, *, relay: bool = True,
                 write_timeout: float = WRITE_TIMEOUT_SECONDS):
        self.path = Path(path)
        self.settings = settings
        self._conn = _connect(self.path)
        # How long ``put`` waits for another writer of the file before it fails (this connection only
        # writes puts; the relay has its own). A server that must answer within a request timeout
        # passes less than that, so a locked outbox refuses the request instead of stalling it.
        self._conn.execute(f"PRAGMA busy_timeout = {int(write_timeout * 1000)}")
        self._group = threading.Condition()  # guards _queue and _committing (group commit, see put)
        self._queue: list[_Put] = []
        self._committing = False
        #: Transactions put has committed (each holds one or more rows); the group-commit tests read it.
        self.group_commits = 0
        self._futures: dict[int, Future] = {}
        self._topics: dict[int, str] = {}  # row id -> topic, for deliveries another process relayed
        self._futures_lock = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failure: OutboxRelayError | None = None  # why the relay thread stopped, once it did
        self._relay: threading.Thread | None = None
        if relay:
            self._relay = threading.Thread(target=self._relay_loop, name="ledger-outbox-relay", daemon=True)
            self._relay.start()

    def put(self, wire: WireRecord) -> Future:
        """Commit one encoded event; the returned future resolves when Kafka acknowledges it.

        Returns once the row is committed (possibly in one transaction with other threads' rows);
        raises StoreError, with nothing of this row stored, when that transaction failed.
        """
        self._raise_if_failed()
        headers = json.dumps([[name, b64encode(value).decode()] for name, value in wire.headers])
        item = _Put((wire.event_id, wire.topic, wire.key, wire.value, headers, time.time()))
        with self._group:
            self._queue.append(item)
            while not item.done:
                if self._committing:  # a commit is in progress: ours goes in the next group
                    self._group.wait()
                    continue
                batch, self._queue = self._queue, []
                self._committing = True
                self._group.release()
                try:
                    self._commit(batch)
                finally:
                    self._group.acquire()
                    self._committing = False
                    self._group.notify_all()
        if item.error is not None:
            raise StoreError(f"outbox {self.path}: could not store event {wire.event_id}: {item.error}") \
                from item.error
        self._wake.set()
        return item.future

    def _commit(self, batch: list[_Put]) -> None:
        """Write ``batch`` in one transaction; marks each item done, with its error if the commit failed."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            ids = [self._conn.execute(_INSERT, item.row).lastrowid for item in batch]
            # Registered and committed under one hold of the lock: the relay cannot acknowledge a row
            # before its future is known, and _settle_relayed_elsewhere never sees an uncommitted id.
            with self._futures_lock:
                for item, row_id in zip(batch, ids):
                    self._futures[row_id] = item.future
                    self._topics[row_id] = item.row[1]
                try:
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._forget(ids)
                    raise
            self.group_commits += 1
            for item in batch:
                item.error = None
        except sqlite3.Error as err:
            self._rollback()
            for item in batch:
                item.error = err
        except BaseException:
            self._rollback()
            raise
        finally:
            for item in batch:  # an item left with the initial error was not committed: its put raises
                item.done = True

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection rolled back already

    def _forget(self, row_ids: list[int]) -> None:
        """Drop the futures of rows whose commit failed (the caller holds ``_futures_lock``)."""
        for row_id in row_ids:
            self._futures.pop(row_id, None)
            self._topics.pop(row_id, None)

    def pending(self) -> int:
        return self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every event this process put has been acknowledged."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._futures_lock:
            while self._futures:
                self._raise_if_failed()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise BrokerError(f"{len(self._futures)} event(s) still in outbox {self.path} after {timeout}s")
                self._futures_lock.wait(min(remaining, 1.0) if remaining is not None else 1.0)
        self._raise_if_failed()

    def close(self) -> None:
        """Stop the relay (waiting at most a few seconds) and close; raises if the relay had failed."""
        self._stop.set()
        self._wake.set()
        if self._relay is not None:
            self._relay.join(timeout=5)
        self._conn.close()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _fail(self, err: BaseException) -> None:
        """Keep why the relay stopped, and fail every delivery still waiting with it."""
        self._failure = OutboxRelayError(
            f"outbox {self.path}: the relay stopped ({type(err).__name__}: {err}); events already stored "
            f"stay in the file: deliver them with `ledger outbox drain {self.path}`")
        self._failure.__cause__ = err
        with self._futures_lock:
            for future in self._futures.values():
                future.set_exception(self._failure)
            self._futures.clear()
            self._topics.clear()
            self._futures_lock.notify_all()

    # -- relay ----------------------------------------------------------------------
    def _relay_loop(self) -> None:
        try:
            self._relay_until_stopped()
        except BaseException as err:  # noqa: BLE001 - anything that ends the thread must reach the caller
            self._fail(err)

    def _relay_until_stopped(self) -> None:
        conn = _connect(self.path)
        try:
            lock_file = _open_lock(self.path)
        except StoreError:
            conn.close()
            raise
        producer = None
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # another process relays this outbox
                    self._settle_relayed_elsewhere(conn)
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                try:
                    if producer is None:
                        producer = open_producer(self.settings, bootstrap_timeout=5.0)
                    sent = relay_batch(conn, producer, on_quarantine=self._quarantined)
                    failures = 0
                    self._resolve(sent)
                    if not sent:
                        self._wake.wait(0.5)
                        self._wake.clear()
                    elif len(sent) < BATCH_ROWS:
                        # Let the next batch gather what is put meanwhile: one send round and one delete
                        # commit per batch, not per event, when events trickle in (a server's reads).
                        self._stop.wait(RELAY_LINGER_SECONDS)
                except BrokerError:
                    if producer is not None:
                        producer.close(timeout=0)
                        producer = None
                    self._stop.wait(RETRY_BACKOFF_SECONDS[min(failures, len(RETRY_BACKOFF_SECONDS) - 1)])
                    failures += 1
        finally:
            if producer is not None:
                producer.close(timeout=5)
            fcntl.flock(lock_file, fcntl.LOCK_UN)
            lock_file.close()
            conn.close()

    def _settle_relayed_elsewhere(self, conn: sqlite3.Connection) -> None:
        """Settle the futures of our rows that the relaying process delivered (or quarantined) and deleted.

        Without this, a process sharing the outbox would keep a future per row for ever (a server's
        memory would grow with every recorded read) and its ``flush`` would never return. The relay
        sends rows in id order and deletes what was acknowledged, so every row below the oldest one
        left is gone: one probe however long the backlog (a row deleted out of turn, quarantined in the
        middle of a batch, is settled once the rows before it are gone).
        """
        with self._futures_lock:
            if not self._futures:
                return
        oldest_left = conn.execute("SELECT min(id) FROM outbox").fetchone()[0]
        with self._futures_lock:
            gone = [i for i in self._futures if oldest_left is None or i < oldest_left]
        if not gone:
            return
        quarantined = {}
        for start in range(0, len(gone), 500):
            chunk = gone[start:start + 500]
            quarantined.update(conn.execute(f"SELECT id, reason FROM outbox_quarantine WHERE id IN "
                                            f"({', '.join('?' * len(chunk))})", chunk))
        with self._futures_lock:
            for row_id in gone:
                future, topic = self._futures.pop(row_id, None), self._topics.pop(row_id, None)
                if future is None:
                    continue
                if row_id in quarantined:
                    future.set_exception(StoreError(f"outbox {self.path}: row {row_id} quarantined by the "
                                                    f"relaying process: {quarantined[row_id]}"))
                else:
                    future.set_result(RelayedElsewhere(topic))
            self._futures_lock.notify_all()

    def _quarantined(self, row_id: int, reason: str) -> None:
        with self._futures_lock:
            future = self._futures.pop(row_id, None)
            self._topics.pop(row_id, None)
            if future is not None:
                future.set_exception(StoreError(f"outbox {self.path}: row {row_id} quarantined: {reason}"))
            self._futures_lock.notify_all()

    def _resolve(self, sent: list[tuple[int, object]]) -> None:
        if not sent:
            return
        with self._futures_lock:
            for row_id, meta in sent:
                future = self._futures.pop(row_id, None)
                self._topics.pop(row_id, None)
                if future is not None:
                    future.set_result(meta)
            self._futures_lock.notify_all()


def _unreadable(topic, key, value, headers) -> tuple[str | None, list | None]:
    """``(reason, None)`` when a row cannot be sent as stored, else ``(None, headers)``."""
    if not isinstance(topic, str) or not topic:
        return f"topic is {topic!r}, not a topic name", None
    if not isinstance(value, bytes) or (key is not None and not isinstance(key, bytes)):
        return "key or value is not bytes", None
    try:
        decoded = json.loads(headers)
        return None, [(name, b64decode(v, validate=True)) for name, v in decoded]
    except (TypeError, ValueError) as err:  # JSONDecodeError, binascii.Error, bad unpacking
        return f"headers are not the JSON list of [name, base64] pairs the relay writes ({err})", None


def quarantine(conn: sqlite3.Connection, row_id: int, reason: str) -> None:
    """Move one unreadable row out of the way, with its reason, so the rows after it are delivered."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO outbox_quarantine (id, event_id, topic, key, value, headers, created_at, reason, "
                 "quarantined_at) SELECT id, event_id, topic, key, value, headers, created_at, ?, ? FROM outbox "
                 "WHERE id = ?", (reason, time.time(), row_id))
    conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
    conn.execute("COMMIT")


def relay_batch(conn: sqlite3.Connection, producer, limit: int = BATCH_ROWS, *,
                on_quarantine=None) -> list[tuple[int, object]]:
    """Send the oldest unsent rows, wait for their acks, delete them; returns ``(id, metadata)`` pairs.

    Raises BrokerError if any send failed; the rows acknowledged before the
    first failure are deleted, the rest stay for the next attempt. A row that
    cannot be read is quarantined (``on_quarantine(id, reason)`` is told) and
    sending goes on with the next.
    """
    rows = conn.execute(
        "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT ?", (limit,)
    ).fetchall()
    if not rows:
        return []
    futures = []
    for row_id, topic, key, value, headers in rows:
        reason, header_list = _unreadable(topic, key, value, headers)
        if reason is not None:
            quarantine(conn, row_id, reason)
            if on_quarantine is not None:
                on_quarantine(row_id, reason)
            continue
        try:
            futures.append((row_id, producer.send(topic, value=value, key=key, headers=header_list)))
        except BrokerError as err:
            futures.append((row_id, err))
            break
    acked: list[tuple[int, object]] = []
    failure: Exception | None = None
    for row_id, future in futures:
        if isinstance(future, Exception):
            failure = future
            break
        try:
            acked.append((row_id, future.result(PRODUCER_ACK_TIMEOUT)))
        except BrokerError as err:
            failure = err
            break
    if acked:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("DELETE FROM outbox WHERE id = ?", [(row_id,) for row_id, _ in acked])
        conn.execute("COMMIT")
    if failure is not None:
        raise BrokerError(f"outbox relay: send failed, will retry: {failure}") from failure
    return acked


# Long enough for the client's own retries to ride out a short broker restart.
PRODUCER_ACK_TIMEOUT = 130.0


def drain(path: str | Path, settings: Settings, timeout: float = 300.0, *, on_quarantine=None) -> int:
    """Deliver everything left in an outbox file (e.g. by a killed process); returns how many.

    Unreadable rows are quarantined (``on_quarantine(id, reason)``) and the rest delivered.
    """
    path = Path(path)

    conn = _connect(path, must_exist=True)  # refuses what is not an outbox before writing to it
    try:
        lock_file = _open_lock(path)
    except StoreError:
        conn.close()
        raise
    with lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            conn.close()
            raise StoreError(f"outbox {path} is being relayed by a live process; nothing to drain") from err
        deadline = time.monotonic() + timeout
        delivered = 0
        producer = None
        try:
            while True:
                try:
                    producer = producer or open_producer(settings, bootstrap_timeout=5.0)
                    sent = relay_batch(conn, producer, on_quarantine=on_quarantine)
                except BrokerError:
                    if time.monotonic() > deadline:
                        raise
                    if producer is not None:
                        producer.close(timeout=0)
                        producer = None
                    time.sleep(1.0)
                    continue
                delivered += len(sent)
                if not sent and conn.execute("SELECT 1 FROM outbox LIMIT 1").fetchone() is None:
                    return delivered
        finally:
            if producer is not None:
                producer.close(timeout=5)
            conn.close()
