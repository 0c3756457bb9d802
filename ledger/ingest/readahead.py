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

The reader is a fresh interpreter (``python -m ledger.ingest.reader``, reader.py; 0.2 s
to start), never a fork of the writer: the writer has threads (the commit
thread, librdkafka's), which a fork would copy mid-lock; and unlike
``multiprocessing``'s spawn and fork server it does not import the caller's
main module again. It runs in its own process group, so a Ctrl-C meant for the
writer (a terminal signals its foreground group) reaches the writer alone, which
then stops its reader. It stays in the writer's session: Linux's scheduler
shares a core fairly between sessions (autogroups) before it looks at nice
values, and the reader runs at a lower priority than the commit (reader.py,
READER_NICE), which only counts within one session.
"""

from __future__ import annotations

import marshal
import os
import pickle
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterable, Mapping

from ledger.config import Settings
from ledger.errors import ConfigError, LedgerError, ReadAheadError
from ledger.kafka import Partition, open_consumer
from ledger.kafka.reading import caught_up, lag
from ledger.wire.codec import Codec

from .derive import DerivedRecord
from .pipeline import no_cyclic_gc
from .reader import ERROR, Job

STOP_SECONDS = 5.0


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
        job = Job(self._settings, tuple((tp.topic, tp.partition, offset) for tp, offset in starts.items()),
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
            if payload[:1] == ERROR:
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
        return caught_up(self, partitions)

    def lag(self, partitions: Iterable[Partition]) -> int | None:
        return lag(self, partitions)

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


def _start(job: Job) -> tuple[subprocess.Popen, Connection, Connection]:
    """Start the reader with its two pipes; the job goes down the control pipe first."""
    data_in, data_out = os.pipe()
    control_in, control_out = os.pipe()
    env = dict(os.environ)
    # The very package this process runs, whatever put it on sys.path (a checkout, PYTHONPATH, a bench script).
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    try:
        process = subprocess.Popen([sys.executable, "-m", "ledger.ingest.reader", str(data_out), str(control_in)],
                                   pass_fds=(data_out, control_in), stdin=subprocess.DEVNULL, env=env,
                                   process_group=0)
    except BaseException:
        for fd in (data_in, data_out, control_in, control_out):
            os.close(fd)
        raise
    os.close(data_out)
    os.close(control_in)
    data, control = Connection(data_in, writable=False), Connection(control_out, readable=False)
    control.send_bytes(pickle.dumps(job))
    return process, data, control
