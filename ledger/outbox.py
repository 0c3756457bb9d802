"""Durable mode: the transactional-outbox pattern for the producer SDK.

``put`` commits the encoded event to a local SQLite file (``synchronous=FULL``)
before it returns, so an event whose call returned survives the process being
killed at once. A relay thread sends outbox rows in id order and deletes each
row once Kafka acknowledged it; ``ledger outbox drain PATH`` delivers what a
dead process left behind.

Delivery is at-least-once: a row whose ack was lost is sent again, and the
ledger removes the repeat by ``event_id``. Order: the relay sends a bounded
batch, waits for every ack, and only then deletes the acknowledged prefix; one
request in flight per connection keeps per-partition order within a batch.

One relay per outbox file at a time (an ``flock`` on ``PATH.lock``); other
processes sharing the file only write to it.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
from base64 import b64decode, b64encode
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .errors import BrokerError, StoreError

if TYPE_CHECKING:
    from .producer import WireRecord

BATCH_ROWS = 2000
RETRY_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0)

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


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a returned call must survive power loss too
        conn.execute(_DDL)
    except sqlite3.Error as err:
        raise StoreError(f"cannot open outbox {path}: {err}") from err
    return conn


class Outbox:
    """A local SQLite outbox with a background relay to Kafka."""

    def __init__(self, path: str | Path, settings: Settings, *, relay: bool = True):
        self.path = Path(path)
        self.settings = settings
        self._conn = _connect(self.path)
        self._write_lock = threading.Lock()
        self._futures: dict[int, Future] = {}
        self._futures_lock = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._relay: threading.Thread | None = None
        if relay:
            self._relay = threading.Thread(target=self._relay_loop, name="ledger-outbox-relay", daemon=True)
            self._relay.start()

    def put(self, wire: "WireRecord") -> Future:
        """Commit one encoded event; the returned future resolves when Kafka acknowledges it."""
        headers = json.dumps([[name, b64encode(value).decode()] for name, value in wire.headers])
        future: Future = Future()
        with self._write_lock:
            try:
                cur = self._conn.execute(
                    "INSERT INTO outbox (event_id, topic, key, value, headers, created_at) VALUES (?,?,?,?,?,?)",
                    (wire.event_id, wire.topic, wire.key, wire.value, headers, time.time()),
                )
            except sqlite3.Error as err:
                raise StoreError(f"outbox {self.path}: could not store event {wire.event_id}: {err}") from err
        with self._futures_lock:
            self._futures[cur.lastrowid] = future
        self._wake.set()
        return future

    def pending(self) -> int:
        return self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every event this process put has been acknowledged."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._futures_lock:
            while self._futures:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise BrokerError(f"{len(self._futures)} event(s) still in outbox {self.path} after {timeout}s")
                self._futures_lock.wait(remaining if remaining is not None else 1.0)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._relay is not None:
            self._relay.join(timeout=10)
        self._conn.close()

    # -- relay ----------------------------------------------------------------------
    def _relay_loop(self) -> None:
        conn = _connect(self.path)
        lock_file = open(f"{self.path}.lock", "a+")
        producer = None
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # another process relays this outbox
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                try:
                    if producer is None:
                        from .producer import new_kafka_producer

                        producer = new_kafka_producer(self.settings, bootstrap_timeout_ms=5000)
                    sent = relay_batch(conn, producer)
                    failures = 0
                    self._resolve(sent)
                    if not sent:
                        self._wake.wait(0.5)
                        self._wake.clear()
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

    def _resolve(self, sent: list[tuple[int, object]]) -> None:
        if not sent:
            return
        with self._futures_lock:
            for row_id, meta in sent:
                future = self._futures.pop(row_id, None)
                if future is not None:
                    future.set_result(meta)
            self._futures_lock.notify_all()


def relay_batch(conn: sqlite3.Connection, producer, limit: int = BATCH_ROWS) -> list[tuple[int, object]]:
    """Send the oldest unsent rows, wait for their acks, delete them; returns ``(id, metadata)`` pairs.

    Raises BrokerError if any send failed; the rows acknowledged before the
    first failure are deleted, the rest stay for the next attempt.
    """
    from kafka.errors import KafkaError

    rows = conn.execute(
        "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT ?", (limit,)
    ).fetchall()
    if not rows:
        return []
    futures = []
    for row_id, topic, key, value, headers in rows:
        header_list = [(name, b64decode(v)) for name, v in json.loads(headers)]
        try:
            futures.append((row_id, producer.send(topic, value=value, key=key, headers=header_list)))
        except KafkaError as err:
            futures.append((row_id, err))
            break
    acked: list[tuple[int, object]] = []
    failure: Exception | None = None
    for row_id, future in futures:
        if isinstance(future, Exception):
            failure = future
            break
        try:
            acked.append((row_id, future.get(timeout=PRODUCER_ACK_TIMEOUT)))
        except KafkaError as err:
            failure = err
            break
    if acked:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("DELETE FROM outbox WHERE id = ?", [(row_id,) for row_id, _ in acked])
        conn.execute("COMMIT")
    if failure is not None:
        raise BrokerError(f"outbox relay: send failed, will retry: {failure}") from failure
    return acked


# Long enough for kafka-python's own retries to ride out a short broker restart.
PRODUCER_ACK_TIMEOUT = 130.0


def drain(path: str | Path, settings: Settings, timeout: float = 300.0) -> int:
    """Deliver everything left in an outbox file (e.g. by a killed process); returns how many."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no outbox at {path}")
    from .producer import new_kafka_producer

    conn = _connect(path)
    with open(f"{path}.lock", "a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise StoreError(f"outbox {path} is being relayed by a live process; nothing to drain") from err
        deadline = time.monotonic() + timeout
        delivered = 0
        producer = None
        try:
            while True:
                try:
                    producer = producer or new_kafka_producer(settings, bootstrap_timeout_ms=5000)
                    sent = relay_batch(conn, producer)
                except BrokerError:
                    if time.monotonic() > deadline:
                        raise
                    if producer is not None:
                        producer.close(timeout=0)
                        producer = None
                    time.sleep(1.0)
                    continue
                delivered += len(sent)
                if not sent:
                    return delivered
        finally:
            if producer is not None:
                producer.close(timeout=5)
            conn.close()
