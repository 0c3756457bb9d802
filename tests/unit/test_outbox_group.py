"""The outbox's group commit and its sharing between processes, on real SQLite files (no broker).

Concurrent ``put`` calls share one transaction; each returns only once the
transaction holding its row committed, or raises with none of the group's
rows stored. A process that shares the file without relaying it settles its
deliveries once the relaying process deleted the rows.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
import time

import pytest

from ledger.config import Settings
from ledger.dev.simulate import simulate
from ledger.errors import StoreError
from ledger.produce.outbox import Outbox, RelayedElsewhere
from ledger.produce.outbox_relay import quarantine
from ledger.produce.producer import wire_record
from ledger.wire.codec import default_codec

NOWHERE = Settings.load(env={}, bootstrap_servers="127.0.0.1:1")


def wires(n: int):
    codec = default_codec()
    return [wire_record(event, codec, "ledger.") for event in simulate(seed=5, events=n, subjects=10).events[:n]]


def put_all(box: Outbox, items) -> tuple[list, list]:
    """``box.put`` each item from its own thread, all released at once; (results, errors) in item order."""
    results, errors = [None] * len(items), [None] * len(items)
    start = threading.Barrier(len(items))

    def one(i):
        start.wait()
        try:
            results[i] = box.put(items[i])
        except StoreError as err:
            errors[i] = err

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, errors


def stored_ids(path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT event_id FROM outbox ORDER BY id")]
    finally:
        conn.close()


class WriteLockHeld:
    """Another connection holding the outbox's write lock for ``seconds`` (what a second process may do)."""

    def __init__(self, path, seconds: float):
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN IMMEDIATE")
        self.timer = threading.Timer(seconds, lambda: self.conn.execute("COMMIT"))

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.join()
        self.conn.close()


def test_concurrent_puts_share_commits_and_every_row_is_stored_once(tmp_path):
    """16 threads put while the file is busy: far fewer transactions than puts, every row stored, ids distinct."""
    path = tmp_path / "outbox.db"
    box = Outbox(path, NOWHERE, relay=False, write_timeout=10)
    items = wires(16)
    try:
        with WriteLockHeld(path, 0.5):  # the first put waits for the lock; the others queue behind it
            results, errors = put_all(box, items)
        assert errors == [None] * 16
        assert all(f is not None and not f.done() for f in results)  # not acknowledged: no broker
        assert sorted(stored_ids(path)) == sorted(w.event_id for w in items)
        assert box.group_commits <= 3
        assert box.pending() == 16
    finally:
        box.close()


def test_a_failed_group_commit_refuses_every_put_in_it_and_stores_none_of_them(tmp_path):
    """The write lock is held longer than the outbox waits: every put of the group raises; nothing is kept."""
    path = tmp_path / "outbox.db"
    box = Outbox(path, NOWHERE, relay=False, write_timeout=0.2)
    try:
        with WriteLockHeld(path, 1.5):
            results, errors = put_all(box, wires(8))
        assert results == [None] * 8
        assert all(e is not None and "could not store event" in str(e) and "locked" in str(e) for e in errors)
        assert stored_ids(path) == []
        later = wires(1)[0]
        box.put(later)  # the outbox works again once the lock is free
        assert stored_ids(path) == [later.event_id]
        assert box.pending() == 1
    finally:
        box.close()


def test_one_thread_alone_commits_its_own_row_in_order(tmp_path):
    """Sequential puts from one thread keep their order (each commits before the next starts)."""
    path = tmp_path / "outbox.db"
    items = wires(5)
    box = Outbox(path, NOWHERE, relay=False)
    try:
        for w in items:
            box.put(w)
        assert stored_ids(path) == [w.event_id for w in items]
        assert box.group_commits == 5
    finally:
        box.close()


def test_a_process_that_does_not_relay_settles_its_deliveries_when_the_relayer_deleted_the_rows(tmp_path):
    """Another holder of PATH.lock relays: our futures resolve (topic known, no offset) or fail if quarantined."""
    path = tmp_path / "outbox.db"
    Outbox(path, NOWHERE, relay=False).close()
    with open(f"{path}.lock", "a+") as other_relay:  # a separate open file: its flock excludes our relay
        fcntl.flock(other_relay, fcntl.LOCK_EX | fcntl.LOCK_NB)
        box = Outbox(path, NOWHERE, relay=True)
        try:
            items = wires(3)
            futures = [box.put(w) for w in items]
            time.sleep(1.5)
            assert not any(f.done() for f in futures)  # rows still in the file: not delivered yet
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("DELETE FROM outbox WHERE id = 1")  # what the relaying process does after an ack
            futures[0].result(timeout=5)
            assert not futures[1].done() and not futures[2].done()  # still in the file: still waiting
            conn.execute("DELETE FROM outbox WHERE id = 2")
            quarantine(conn, 3, "headers are not JSON")
            conn.close()
            box.flush(timeout=10)  # returns: nothing of ours is waiting any more
            assert futures[0].result(0) == RelayedElsewhere(items[0].topic)
            assert futures[1].result(0).offset is None
            with pytest.raises(StoreError, match="quarantined by the relaying process: headers are not JSON"):
                futures[2].result(0)
        finally:
            box.close()


def test_a_relay_that_dies_between_the_check_and_the_commit_still_settles_the_put(tmp_path):
    """_fail settles only the futures it knows; a put already past its check must settle its own."""
    from ledger.errors import OutboxRelayError

    box = Outbox(tmp_path / "outbox.db", NOWHERE, relay=False)
    try:
        real_commit = box._commit

        def relay_dies_first(batch):  # the relay fails after put() checked, before the rows are registered
            box._fail(RuntimeError("gone"))
            real_commit(batch)

        box._commit = relay_dies_first
        future = box.put(wires(1)[0])
        assert future.done(), "the delivery of a row committed after the relay died was never settled"
        with pytest.raises(OutboxRelayError, match="relay stopped"):
            future.result(timeout=0)
        assert len(stored_ids(box.path)) == 1, "the row must stay stored for `ledger outbox drain`"
        assert not box._futures
    finally:
        box._conn.close()
