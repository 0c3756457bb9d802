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

This module is the :class:`Outbox` (puts, group commit, the relay thread); ``outbox_file.py`` holds
the file's tables and the checks above, ``outbox_relay.py`` the sending of a batch and ``drain``.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
from base64 import b64encode
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.config import Settings
from ledger.errors import BrokerError, OutboxRelayError, StoreError
from ledger.kafka import open_producer

from .outbox_file import connect_outbox, open_lock
from .outbox_relay import BATCH_ROWS, relay_batch

if TYPE_CHECKING:
    from .producer import WireRecord

#: Pause of the relay after a batch smaller than BATCH_ROWS, so that events put one by one are sent in
#: batches: Kafka gets them at most this much later, and nobody's call waits for it.
RELAY_LINGER_SECONDS = 0.05
RETRY_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0)
#: Default wait of ``put`` for another process's write lock on the outbox file.
WRITE_TIMEOUT_SECONDS = 30.0


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
        self._conn = connect_outbox(self.path)
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
                if self._failure is not None:
                    # The relay died after put() checked: _fail has already settled the futures it
                    # knew of, so settle these here or their callers would wait forever. The rows
                    # stay stored for `ledger outbox drain`.
                    for item in batch:
                        item.future.set_exception(self._failure)
                    self._forget(ids)
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
        conn = connect_outbox(self.path)
        try:
            lock_file = open_lock(self.path)
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
