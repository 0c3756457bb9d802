"""Read Kafka and derive each record's part in a second process, ahead of the writer.

    consumer = open_reader(settings, codec=ingestor.codec, limits=ingestor.time_limits)
    partitions = event_partitions(consumer, prefix)   # metadata: answered in this process, before assign
    consumer.assign(starts)                           # starts the read-ahead process
    records = consumer.poll(max_records, timeout)     # DerivedRecords, in offset order per partition

Why: ingest is CPU-bound Python, and one interpreter runs one thread of it at a
time. Most of a record's cost is what it says on its own (derive.py: decode and
validation, readable JSON, SHA-256; 20 to 30 µs of the writer's 60 to 110),
so a second process fetches the records and derives them while this one
chains, dedupes and commits: on two CPUs the writer's critical path loses that
share (BENCHMARKS.md, issue 17).

Exactly once is unchanged: the read-ahead process only reads. Positions come
from the ledger and are committed in the writer's own transaction; records the
reader had fetched but the writer had not committed are read again on restart.
The reader runs at most ``batch_max_bytes`` of encoded messages ahead (besides
the client's own bounded fetch queue).

Failures: an error in the reader (a fetch that fails, a position out of range)
is raised by :meth:`ReadAheadConsumer.poll` with its own type and message; a
reader that dies without a word raises :class:`ReadAheadError`. A writer that
dies closes its end of the pipes, and the reader exits when it sees that.

The reader is a fresh interpreter (``python -m ledger.ingest.readahead``, 0.2 s
to start), never a fork of the writer: the writer has threads (the commit
thread, librdkafka's), which a fork would copy mid-lock; and unlike
``multiprocessing``'s spawn and fork server it does not import the caller's
main module again. It runs in its own session, so a Ctrl-C meant for the
writer reaches the writer alone, which then stops its reader.
"""

from __future__ import annotations

import gc
import marshal
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterable, Mapping

from ledger.config import Settings
from ledger.errors import ConfigError, LedgerError, ReadAheadError
from ledger.kafka import Partition, open_consumer
from ledger.wire.codec import Codec

from .derive import JSON, REASON, DerivedRecord, derive
from .pipeline import no_cyclic_gc

CHUNK_RECORDS = 1_000  # records a message carries: the writer gets work early, per-message costs stay small
IDLE_POLL_SECONDS = 0.2  # how long the reader waits on an empty fetch before it looks at its control pipe
STOP_SECONDS = 5.0

_RECORDS, _ERROR = b"R", b"E"


def read_ahead_choice(settings: Settings, codec: Codec | None = None) -> tuple[bool, str]:
    """Whether ingest reads ahead in a second process, and why (``ledger doctor`` prints it)."""
    mode = settings.read_ahead
    if mode == "off":
        return False, "off (LEDGER_READ_AHEAD=off / --read-ahead off)"
    problem = _unusable(settings, codec)
    if problem is not None:
        if mode == "process":
            raise ConfigError(f"read_ahead=process cannot be honoured: {problem}")
        return False, f"off: {problem}"
    cpus = _cpus()
    if mode == "auto" and cpus < 2:
        return False, "off (auto: one CPU, a second process would only compete with the writer)"
    return True, "a second process" + (f" (auto: {cpus} CPUs)" if mode == "auto" else " (read_ahead=process)")


def _cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's cpuset, taskset), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _unusable(settings: Settings, codec: Codec | None) -> str | None:
    if os.name != "posix":
        return "reading ahead passes pipes to a child process the POSIX way"
    if codec is not None and codec.directory is None:
        return "the ingest codec was built in memory, not loaded from a schema directory"
    try:
        pickle.dumps(settings)
    except Exception as err:  # e.g. a token provider callable in the security settings
        return f"the settings cannot be passed to another process ({err})"
    return None


def open_reader(settings: Settings, *, codec: Codec, limits, max_poll_records: int = 10_000,
                group_id: str | None = None):
    """The consumer ingest reads through: read-ahead when chosen (read_ahead_choice), else a plain one.

    ``codec`` and ``limits`` (TimeLimits or None) must be the Ingestor's own: the reader derives
    every record with them (derive.py), and the Ingestor takes those parts as they come.
    """
    use, _ = read_ahead_choice(settings, codec)
    if not use:
        return open_consumer(settings, max_poll_records=max_poll_records, group_id=group_id)
    return ReadAheadConsumer(settings, codec=codec, limits=limits, max_poll_records=max_poll_records,
                             group_id=group_id)


@dataclass(frozen=True)
class _Job:
    """What the read-ahead process needs: picklable, sent once at start."""

    settings: Settings
    starts: tuple[tuple[str, int, int], ...]
    max_poll_records: int
    group_id: str | None
    schemas_dir: str
    max_record_bytes: int
    limits: object  # TimeLimits | None
    max_ahead_bytes: int


class ReadAheadConsumer:
    """A :class:`ledger.kafka.Consumer` whose fetching and deriving run in a second process.

    Before :meth:`assign` it answers metadata (topics, partitions, estimates)
    through an ordinary consumer in this process; from then on the reader
    process owns the partitions. Positions and high watermarks are those the
    reader saw with the last message this side received, adjusted for records
    received but not yet handed out, so ``position``, ``caught_up`` and ``lag``
    mean what they mean on an ordinary consumer.
    """

    def __init__(self, settings: Settings, *, codec: Codec, limits, max_poll_records: int = 10_000,
                 group_id: str | None = None):
        self._settings = settings
        self._codec, self._limits = codec, limits
        self._max_poll_records, self._group_id = max_poll_records, group_id
        self._meta = open_consumer(settings, max_poll_records=1)  # fails here, as an ordinary consumer would
        self._process = None
        self._data = self._control = None
        self._partitions: list[Partition] = []
        self._state: dict[Partition, tuple[int, int | None]] = {}  # position, high watermark (None: unknown)
        self._buffer: deque[DerivedRecord] = deque()
        self._paused: set[Partition] = set()

    # -- before assign: metadata, in this process ----------------------------------
    def _metadata(self):
        if self._meta is None:
            raise LedgerError("the read-ahead consumer answers metadata before assign() only")
        return self._meta

    def topics(self) -> set[str]:
        return self._metadata().topics()

    def partitions_for(self, topic: str) -> list[int] | None:
        return self._metadata().partitions_for(topic)

    def estimate(self, partitions: Iterable[Partition]) -> int | None:
        return self._metadata().estimate(partitions)

    # -- reading ---------------------------------------------------------------------
    def assign(self, starts: Mapping[Partition, int]) -> None:
        if self._process is not None:
            raise LedgerError("the read-ahead consumer is assigned once")
        self._meta.close()
        self._meta = None
        self._partitions = [Partition(*tp) for tp in starts]
        self._state = {tp: (offset, None) for tp, offset in zip(self._partitions, starts.values())}
        job = _Job(self._settings, tuple((tp.topic, tp.partition, offset) for tp, offset in starts.items()),
                   self._max_poll_records, self._group_id, str(self._codec.directory), self._codec.max_record_bytes,
                   self._limits, self._settings.batch_max_bytes)
        self._process, self._data, self._control = _start(job)

    def poll(self, max_records: int, timeout: float) -> list[DerivedRecord]:
        """Up to ``max_records`` records, waiting up to ``timeout`` seconds for the first."""
        buffer = self._buffer
        if not buffer and not self._receive(timeout):
            return []
        if len(buffer) <= max_records:
            records = list(buffer)
            buffer.clear()
            return records
        return [buffer.popleft() for _ in range(max_records)]

    def _receive(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a message with records; True when some were buffered."""
        if self._process is None:
            raise LedgerError("poll() before assign()")
        data = self._data
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if not data.poll(max(remaining, 0)):
                    return False
                payload = data.recv_bytes()
            except (EOFError, OSError):
                raise self._died() from None
            if payload[:1] == _ERROR:
                raise pickle.loads(payload[1:])
            with no_cyclic_gc():
                rows, parts, state = marshal.loads(memoryview(payload)[1:])
                del payload
                for tp, position_high in zip(self._partitions, state or ()):  # None: more of the same poll follows
                    self._state[tp] = position_high
                self._buffer.extend(DerivedRecord(*row, part) for row, part in zip(rows, parts))
            if rows:
                return True
            if remaining <= 0:
                return False

    def _died(self) -> ReadAheadError:
        process = self._process
        try:
            code = process.wait(1.0)
        except subprocess.TimeoutExpired:
            code = None
        how = "is still running but closed its pipe" if code is None else (
            f"was killed by signal {-code}" if code < 0 else f"exited with code {code}")
        return ReadAheadError(
            f"the read-ahead process (pid {process.pid}) {how} without reporting an error; nothing is lost: "
            "what it had read but the writer had not committed is read again from the ledger's positions "
            "on restart")

    def position(self, tp: Partition) -> int:
        tp = Partition(*tp)
        for record in self._buffer:  # received, not handed out yet: the position is still before them
            if record.partition == tp.partition and record.topic == tp.topic:
                return record.offset
        return self._state[tp][0]

    def highwater(self, tp: Partition) -> int | None:
        return self._state[Partition(*tp)][1]

    def caught_up(self, partitions: Iterable[Partition]) -> bool:
        for tp in partitions:
            highwater = self.highwater(tp)
            if highwater is None or self.position(tp) < highwater:
                return False
        return True

    def lag(self, partitions: Iterable[Partition]) -> int | None:
        lag = 0
        for tp in partitions:
            highwater = self.highwater(tp)
            if highwater is None:
                return None
            lag += max(0, highwater - self.position(tp))
        return lag

    def pause(self, *partitions: Partition) -> None:
        """Stop fetching ``partitions``; records the reader already sent still arrive (callers filter by offset)."""
        self._tell(("pause", [tuple(tp) for tp in partitions]))
        self._paused.update(Partition(*tp) for tp in partitions)

    def paused(self) -> set[Partition]:
        return set(self._paused)

    def commit_for_monitoring(self, offsets: Mapping[Partition, int]) -> None:
        if self._group_id is not None and offsets:
            self._tell(("commit", [(tp[0], tp[1], offset) for tp, offset in offsets.items()]))

    def _tell(self, message) -> None:
        try:
            self._control.send(message)
        except (OSError, ValueError):
            raise self._died() from None

    def close(self) -> None:
        if self._meta is not None:
            self._meta.close()
            self._meta = None
        process, self._process = self._process, None
        if process is None:
            return
        try:
            self._control.send(("stop",))
        except (OSError, ValueError):
            pass
        self._control.close()
        self._data.close()  # a reader blocked sending sees its pipe break
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start(job: _Job) -> tuple[subprocess.Popen, Connection, Connection]:
    """Start the reader with its two pipes; the job goes down the control pipe first."""
    data_in, data_out = os.pipe()
    control_in, control_out = os.pipe()
    env = dict(os.environ)
    # The very package this process runs, whatever put it on sys.path (a checkout, PYTHONPATH, a bench script).
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    try:
        process = subprocess.Popen([sys.executable, "-m", "ledger.ingest.readahead", str(data_out), str(control_in)],
                                   pass_fds=(data_out, control_in), stdin=subprocess.DEVNULL, env=env,
                                   start_new_session=True)
    except BaseException:
        for fd in (data_in, data_out, control_in, control_out):
            os.close(fd)
        raise
    os.close(data_out)
    os.close(control_in)
    data, control = Connection(data_in, writable=False), Connection(control_out, readable=False)
    control.send_bytes(pickle.dumps(job))
    return process, data, control


# -- the read-ahead process ------------------------------------------------------------
def _main(data_fd: int, control_fd: int) -> None:
    out, control = Connection(data_fd, readable=False), Connection(control_fd, writable=False)
    try:
        job = pickle.loads(control.recv_bytes())
    except (EOFError, OSError):
        return  # the writer went before it sent the job
    _read_ahead(job, out, control)


def _read_ahead(job: _Job, out, control) -> None:
    """Fetch, derive, send; until told to stop or either pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the writer stops us itself
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
        sender.put(_ERROR + _portable(err))
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
            sender.put(_RECORDS + marshal.dumps((rows, parts, None)))
            rows, parts, size = [], [], 0
    sender.put(_RECORDS + marshal.dumps((rows, parts, state)))


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
    from ledger.ingest.readahead import _main as main  # the module itself, not this __main__ copy: _Job unpickles there

    main(int(sys.argv[1]), int(sys.argv[2]))
