"""Sending outbox rows to Kafka: one bounded batch at a time, in id order, deleted once acknowledged.

Used by the relay thread of :class:`~.outbox.Outbox` and by ``ledger outbox drain`` (:func:`drain`),
which delivers what a dead process left behind. A row that cannot be sent as stored is moved to
``outbox_quarantine`` with its reason, and the rows after it are delivered.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import time
from base64 import b64decode
from pathlib import Path

from ledger.config import Settings
from ledger.errors import BrokerError, StoreError
from ledger.kafka import open_producer

from .outbox_file import connect_outbox, open_lock

#: Rows sent per batch, all acknowledged before any is deleted.
BATCH_ROWS = 2000
# Long enough for the client's own retries to ride out a short broker restart.
PRODUCER_ACK_TIMEOUT = 130.0


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



def drain(path: str | Path, settings: Settings, timeout: float = 300.0, *, on_quarantine=None) -> int:
    """Deliver everything left in an outbox file (e.g. by a killed process); returns how many.

    Unreadable rows are quarantined (``on_quarantine(id, reason)``) and the rest delivered.
    """
    path = Path(path)

    conn = connect_outbox(path, must_exist=True)  # refuses what is not an outbox before writing to it
    try:
        lock_file = open_lock(path)
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
