"""The read-ahead process: fetch, derive, send to the writer (started by readahead.py).

    python -m ledger.ingest.reader DATA_FD CONTROL_FD

The writer sends a pickled :class:`Job` down the control pipe, then control
messages (``pause``, ``commit``, ``stop``); the reader sends messages down the
data pipe: ``R`` + marshal of ``(rows, parts, state)`` (records as field
tuples, their derive.py parts, and after a poll's last message the positions
and high watermarks of every assigned partition, else None), or ``E`` + a
pickled exception. It exits when told to stop or when either pipe closes.
"""

from __future__ import annotations

import gc
import marshal
import os
import pickle
import signal
import sys
import threading
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection

from ledger.config import Settings
from ledger.errors import LedgerError
from ledger.kafka import Partition, open_consumer
from ledger.wire.codec import Codec

from .derive import JSON, REASON, derive
from .pipeline import no_cyclic_gc

CHUNK_RECORDS = 1_000  # records a poll takes: the writer gets work early, per-message costs stay small
IDLE_POLL_SECONDS = 0.2  # how long the reader waits on an empty fetch before it looks at its control pipe
RECORDS, ERROR = b"R", b"E"  # the first byte of a data message
#: Added to the writer's nice value. The reader runs ahead of the commit, the writer's chained and
#: one-at-a-time part: when the two want the same core, the commit should get it (simulated mix,
#: 200k events, 2 CPUs: 12,483 / 12,521 events/s at the writer's priority, 13,304 / 13,368 at +5).
READER_NICE = 5


@dataclass(frozen=True)
class Job:
    """What the read-ahead process needs: picklable, sent once at start."""

    settings: Settings
    starts: tuple[tuple[str, int, int], ...]
    max_poll_records: int
    group_id: str | None
    schemas_dir: str
    max_record_bytes: int
    limits: object  # TimeLimits | None
    max_ahead_bytes: int



def _main(data_fd: int, control_fd: int) -> None:
    out, control = Connection(data_fd, readable=False), Connection(control_fd, writable=False)
    try:
        job = pickle.loads(control.recv_bytes())
    except (EOFError, OSError):
        return  # the writer went before it sent the job
    _read_ahead(job, out, control)


def _read_ahead(job: Job, out, control) -> None:
    """Fetch, derive, send; until told to stop or either pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the writer stops us itself
    os.nice(READER_NICE)
    sender = _Sender(out, job.max_ahead_bytes)
    consumer = None
    try:
        codec = Codec.load(job.schemas_dir, max_record_bytes=job.max_record_bytes)
        consumer = open_consumer(job.settings, max_poll_records=job.max_poll_records, group_id=job.group_id)
        partitions = [Partition(topic, partition) for topic, partition, _ in job.starts]
        consumer.assign({Partition(topic, partition): offset for topic, partition, offset in job.starts})
        gc.freeze()  # what exists now lives as long as the process: no more collector passes over it
        limits = job.limits
        message_bytes = max(1 << 20, job.max_ahead_bytes // 8)
        last_state = None
        while sender.alive:
            if not _obey(control, consumer):
                break
            records = consumer.poll(CHUNK_RECORDS, IDLE_POLL_SECONDS)
            with no_cyclic_gc():
                state = tuple((consumer.position(tp), consumer.highwater(tp)) for tp in partitions)
                if not records and state == last_state:
                    continue
                last_state = state
                _send_derived(sender, records, codec, limits, state, message_bytes)
    except BaseException as err:  # noqa: BLE001 - every error goes to the writer, which raises it
        sender.put(ERROR + _portable(err))
    finally:
        sender.finish()
        if consumer is not None:
            consumer.close()


def _send_derived(sender: "_Sender", records, codec, limits, state, message_bytes: int) -> None:
    """Derive ``records`` and send them in messages of about ``message_bytes`` (a larger record alone).

    Bounded by size, not only by count: derived, a 1 MB record of control characters is 7 MB, and a
    poll's worth of them in one message held twice over in each process doubled the writer's peak
    memory (BENCHMARKS.md, "Read-ahead (s7)"). Only the poll's last message carries the positions
    after it (``state``); before it, the writer keeps the older, lower ones, which never claim a
    record it has not received.
    """
    rows, parts, size = [], [], 0
    last = len(records) - 1
    for i, record in enumerate(records):
        part = derive(record, codec, limits)
        rows.append((record.topic, record.partition, record.offset, record.timestamp, record.key, record.value,
                     record.headers))
        parts.append(part)
        size += record.size + (len(part[JSON]) if part[REASON] is None else 0)
        if size >= message_bytes and i < last:
            sender.put(RECORDS + marshal.dumps((rows, parts, None)))
            rows, parts, size = [], [], 0
    sender.put(RECORDS + marshal.dumps((rows, parts, state)))


def _obey(control, consumer) -> bool:
    """Carry out the writer's messages; False when it says stop or has gone."""
    try:
        while control.poll():
            message = control.recv()
            if message[0] == "stop":
                return False
            if message[0] == "pause":
                consumer.pause(*(Partition(*tp) for tp in message[1]))
            elif message[0] == "commit":
                consumer.commit_for_monitoring({Partition(t, p): o for t, p, o in message[1]})
    except (EOFError, OSError):
        return False
    return True


def _portable(err: BaseException) -> bytes:
    """``err`` pickled so the writer raises the same type and message; a LedgerError naming it otherwise."""
    try:
        payload = pickle.dumps(err)
        pickle.loads(payload)
        return payload
    except Exception:  # an exception type that does not survive pickling
        return pickle.dumps(LedgerError(f"the read-ahead process failed: {type(err).__name__}: {err}"))


class _Sender:
    """Writes messages to the pipe on its own thread (a write releases the GIL), at most ``limit`` bytes queued."""

    def __init__(self, out, limit: int):
        self._out, self._limit = out, limit
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._done = False
        self.alive = True
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ledger-read-ahead-send", daemon=True)
        self._thread.start()

    def put(self, payload: bytes) -> None:
        """Queue ``payload``; waits while the queue is full, returns at once if the writer has gone."""
        with self._cond:
            while self.alive and self._queued and self._queued + len(payload) > self._limit:
                self._cond.wait(IDLE_POLL_SECONDS)
            if self.alive:
                self._queue.append(payload)
                self._queued += len(payload)
                self._cond.notify_all()

    def finish(self) -> None:
        """Send what is queued (unless the writer has gone), then end the thread."""
        with self._cond:
            self._done = True
            self._cond.notify_all()
        self._thread.join()
        try:
            self._out.close()
        except OSError:
            pass

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._done:
                    self._cond.wait()
                if not self._queue:
                    return
                payload = self._queue.popleft()
            try:
                self._out.send_bytes(payload)
            except (OSError, ValueError):  # the writer closed its end or died
                with self._cond:
                    self.alive = False
                    self._queue.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                self._queued -= len(payload)
                self._cond.notify_all()


if __name__ == "__main__":
    from ledger.ingest.reader import _main as main  # the module itself, not this __main__ copy: Job unpickles there

    main(int(sys.argv[1]), int(sys.argv[2]))
