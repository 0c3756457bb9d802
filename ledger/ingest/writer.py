"""The ledger writer: Kafka event topics → one ledger file, exactly once.

Run it as ``ledger consume``. Start reading at :meth:`LedgerWriter.run`.

* One writer owns one ledger file (an exclusive lock). It ``assign()``s every
  partition of the event topics — no consumer-group rebalances — and seeks each
  to the next offset stored in the ledger, or to the beginning of a new ledger.
* Each batch is decoded, chained and appended in one SQLite transaction that
  also stores the next offset of every partition, so a SIGKILL at any moment
  neither loses nor duplicates a record.
* Undecodable records are appended as rejected and copied to the dead-letter
  topic; the copies are flushed before the batch commits, so a crash can
  repeat a copy but never lose one (the DLQ is counted per source offset).
* On start it re-reads the record just before each stored offset and compares
  it with the ledger; a shorter log or a different record stops the writer.
* Offsets are also committed to Kafka under ``group_id``, after SQLite, only so
  that standard tools can show lag. The ledger's own offsets are authoritative.
* With a ``checkpointer`` (``--checkpoint-every``, ledger/ingest/checkpointing.py) the writer
  signs and publishes checkpoints of its committed trees when one is due, checked once per
  committed batch, and once more when it stops.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import signal
import sys
import time
from dataclasses import dataclass, field

from ledger.config import Settings
from ledger.errors import BrokerError, LedgerDivergedError, OffsetOutOfRangeError
from ledger.ingest.pipeline import CommitPipeline, Ingestor
from ledger.ingest.readahead import open_reader
from ledger.kafka import BEGINNING, Partition, event_partitions, open_consumer, open_producer
from ledger.kafka.reading import take_within
from ledger.kafka.topics import dlq_topic
from ledger.model.timecheck import TimeLimits
from ledger.store import Ledger
from ledger.tlog.chain import leaf_hash
from ledger.wire.record import Record

DEFAULT_GROUP_ID = "ledger-writer"
DLQ_HEADERS = ("source_topic", "source_partition", "source_offset", "reason")
# Below the 1 MiB default request and message limits, with room for headers.
DLQ_MAX_VALUE_BYTES = 900 * 1024


@dataclass
class WriterStats:
    records: int = 0
    batches: int = 0
    rejected: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class LedgerWriter:
    """Consumes the event topics into the ledger file named by ``settings.db``."""

    def __init__(
        self,
        settings: Settings,
        *,
        batch_size: int = 10_000,
        batch_seconds: float = 1.0,
        group_id: str | None = DEFAULT_GROUP_ID,
        progress: bool = False,
        progress_every: float = 2.0,
        batch_max_bytes: int | None = None,
        checkpointer=None,
    ):
        self.settings = settings
        self.batch_size = batch_size
        self.batch_max_bytes = batch_max_bytes or settings.batch_max_bytes
        self._carry: list[Record] = []  # fetched beyond the last batch's byte bound: the next batch's head
        self.batch_seconds = batch_seconds
        self.group_id = group_id
        self.progress = progress
        self.progress_every = progress_every
        self.stats = WriterStats()
        self.checkpointer = checkpointer  # has after_commit(entries, schedule) and finish(); None: no checkpoints
        self._pipeline = None
        self._stopping = False

    def stop(self, *_: object) -> None:
        """Ask the writer to finish its batch, commit and return (signal-safe)."""
        self._stopping = True

    def run(self, *, until_idle: bool = False, install_signals: bool = True) -> WriterStats:
        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        ledger = Ledger.open(self.settings.db, readonly=False, create=True, time_limits=TimeLimits.from_settings(self.settings))
        try:
            ledger.lock_for_writing()
            ingestor = Ingestor(ledger)
            consumer = self._consumer(ingestor)
            dlq = None
            try:
                partitions = event_partitions(consumer, self.settings.topic_prefix)
                positions = ledger.positions()
                check_continuity(self.settings, ledger, positions, partitions)
                consumer.assign({tp: positions.get((tp.topic, tp.partition), BEGINNING) for tp in partitions})
                started = time.monotonic()
                last_progress = started
                gc.freeze()  # the long-lived objects made so far need no more GC passes
                with CommitPipeline(ingestor) as pipeline:  # batch N commits while N+1 is fetched and prepared
                    self._pipeline = pipeline
                    while not self._stopping:
                        records = self._next_batch(consumer)
                        if records:
                            prepared = ingestor.prepare(records)
                            if prepared.rejected:  # copied and acknowledged before their batch commits
                                dlq = dlq or self._dlq_producer()
                                send_to_dlq(dlq, dlq_topic(self.settings.topic_prefix), prepared.rejected)
                            self._committed(pipeline.submit(prepared, len(records)), consumer)
                        now = time.monotonic()
                        self.stats.seconds = now - started
                        if self.progress and now - last_progress >= self.progress_every:
                            self._print_progress(consumer, partitions)
                            last_progress = now
                        if until_idle and not records and consumer.caught_up(partitions):
                            break
                    self._committed(pipeline.wait(), consumer)
                if self.checkpointer is not None:
                    self.checkpointer.finish()
                self.stats.seconds = time.monotonic() - started
                if self.progress:
                    self._print_progress(consumer, partitions, final=True)
            finally:
                if dlq is not None:
                    dlq.close(timeout=10)
                if self.checkpointer is not None:
                    self.checkpointer.close()
                consumer.close()
        finally:
            ledger.close()
        return self.stats

    # -- Kafka ---------------------------------------------------------------------
    def _consumer(self, ingestor):
        # Fetch sizes follow the batch bound (the seam caps them at settings.batch_max_bytes); fetched and
        # derived in a second process when the settings choose it (readahead.py).
        settings = dataclasses.replace(self.settings, batch_max_bytes=self.batch_max_bytes)
        return open_reader(settings, codec=ingestor.codec, limits=ingestor.time_limits, group_id=self.group_id,
                           max_poll_records=self.batch_size)

    def _next_batch(self, consumer) -> list[Record]:
        """Poll until ``batch_size`` records, ``batch_max_bytes`` or ``batch_seconds``; offset order per partition.

        A batch always takes at least one record; what a poll returned beyond the
        byte bound is carried to the next batch, in order.
        """
        batch: list[Record] = []
        size = 0
        if self._carry:
            batch, size = take_within(self._carry, self.batch_size, self.batch_max_bytes)
            self._carry = self._carry[len(batch):]
            if self._carry:
                return batch
        deadline = time.monotonic() + self.batch_seconds
        while len(batch) < self.batch_size and size < self.batch_max_bytes and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                records = consumer.poll(max_records=self.batch_size - len(batch), timeout=remaining)
            except OffsetOutOfRangeError as err:
                raise LedgerDivergedError(
                    f"Kafka reports the ledger's position as out of range ({err}); the topic was "
                    "truncated or recreated. The writer stops rather than skip or re-read records."
                ) from err
            if not records:
                break
            taken, taken_size = take_within(records, self.batch_size - len(batch), self.batch_max_bytes - size,
                                            at_least_one=not batch)
            batch.extend(taken)
            size += taken_size
            if len(taken) < len(records):
                self._carry = records[len(taken):]
                break
        return batch

    def _dlq_producer(self):
        return open_producer(self.settings)

    def _committed(self, done, consumer) -> None:
        """Count a batch whose SQLite commit finished (``(batch, records)`` or None) and tell Kafka."""
        if done is None:
            return
        prepared, n_records = done
        self._count(n_records, prepared)
        if self.checkpointer is not None:  # only now is this batch's tree committed
            self.checkpointer.after_commit(n_records, self._pipeline.between_commits)
        if self.group_id is None:
            return
        # For lag monitoring only (best effort); the ledger holds the authoritative positions.
        consumer.commit_for_monitoring({Partition(topic, partition): next_offset
                                        for topic, partition, next_offset, *_ in prepared.rows.offsets})

    def _count(self, n_records: int, prepared) -> None:
        self.stats.records += n_records
        self.stats.batches += 1
        self.stats.rejected += len(prepared.rejected)
        for status, n in prepared.counts.items():
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + n

    def _print_progress(self, consumer, partitions, final: bool = False) -> None:
        lag = consumer.lag(partitions)
        lag_text = "unknown" if lag is None else f"{lag:,}"
        word = "done" if final else "consuming"
        print(
            f"ledger consume: {word}: {self.stats.records:,} records, {self.stats.rate:,.0f}/s, "
            f"lag {lag_text}, rejected {self.stats.rejected:,}",
            file=sys.stderr,
            flush=True,
        )


def send_to_dlq(producer, topic: str, rejected) -> None:
    """Copy rejected records to the dead-letter topic and wait for every ack.

    A value too large for a Kafka request is replaced by its size and SHA-256
    in the headers: the ledger itself keeps the full raw bytes as evidence.
    """
    futures = []
    try:
        for record, reason in rejected:
            headers = [
                ("source_topic", record.topic.encode()),
                ("source_partition", str(record.partition).encode()),
                ("source_offset", str(record.offset).encode()),
                ("reason", reason.encode()),
            ]
            value = record.value
            if value is not None and len(value) > DLQ_MAX_VALUE_BYTES:
                headers += [
                    ("value_omitted_bytes", str(len(value)).encode()),
                    ("value_sha256", hashlib.sha256(value).hexdigest().encode()),
                ]
                value = b""  # not None: a record needs a key or a value, and the key may be null
            futures.append(producer.send(topic, key=record.key, value=value, headers=headers))
        producer.flush()
        for future in futures:
            future.result(60)
    except BrokerError as err:
        raise BrokerError(f"could not copy rejected records to {topic}: {err}") from err


def check_continuity(settings: Settings, ledger: Ledger, positions: dict, partitions, timeout: float = 30.0) -> None:
    """Re-read the record just before each stored position and compare it with the ledger.

    Raises LedgerDivergedError when the log is shorter than the stored position
    or the record there differs (topic recreated, broker lost data). Works on
    Apache Kafka (out-of-range error) and on brokers that answer a position
    past the log end with silence (detected through the high watermark).
    """
    wanted: dict[Partition, int] = {}
    for tp in partitions:
        next_offset = positions.get((tp.topic, tp.partition))
        if next_offset:
            wanted[Partition(tp.topic, tp.partition)] = next_offset - 1
    if not wanted:
        return
    consumer = open_consumer(settings, max_poll_records=1)
    try:
        consumer.assign(wanted)
        found: dict[Partition, Record] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(wanted):
            try:
                fetched = consumer.poll(max_records=1, timeout=0.5)
            except OffsetOutOfRangeError as err:
                raise LedgerDivergedError(f"a stored position is out of range on the broker: {err}") from err
            except BrokerError as err:
                raise BrokerError(f"cannot re-read the last recorded records: {err}") from err
            for record in fetched:
                tp = Partition(record.topic, record.partition)
                if tp in wanted and tp not in found:
                    found[tp] = record
                    consumer.pause(tp)
            for tp, offset in wanted.items():
                highwater = consumer.highwater(tp)
                if tp not in found and highwater is not None and highwater <= offset:
                    raise LedgerDivergedError(
                        f"{tp.topic}[{tp.partition}]: the broker's log ends at offset {highwater} but the "
                        f"ledger recorded offset {offset}; the topic was truncated or recreated, or the "
                        "broker lost data. Refusing to continue."
                    )
            if time.monotonic() > deadline:
                missing = ", ".join(f"{tp.topic}[{tp.partition}]@{o}" for tp, o in wanted.items() if tp not in found)
                raise BrokerError(f"timed out re-reading the last recorded records: {missing}")
    finally:
        consumer.close()
    for tp, record in found.items():
        offset = wanted[tp]
        stored = ledger.entry_at(tp.topic, tp.partition, offset)
        if record.offset != offset or stored is None or leaf_hash(record) != stored["leaf_hash"]:
            raise LedgerDivergedError(
                f"{tp.topic}[{tp.partition}] offset {offset}: the broker's record differs from the one in "
                f"the ledger (got offset {record.offset}); the topic was recreated or rewritten. "
                "Refusing to continue."
            )
