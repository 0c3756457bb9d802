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
"""

from __future__ import annotations

import gc
import hashlib
import signal
import sys
import time
from dataclasses import dataclass, field

from ledger.config import Settings
from ledger.errors import BrokerError, LedgerDivergedError
from ledger.ingest.pipeline import CommitPipeline, Ingestor
from ledger.kafka.reading import caught_up, event_partitions, fetch_limits, new_consumer, take_within, total_lag
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
            consumer = self._consumer()
            dlq = None
            try:
                partitions = self._assign(consumer)
                positions = ledger.positions()
                check_continuity(self.settings, ledger, positions, partitions)
                for tp in partitions:
                    next_offset = positions.get((tp.topic, tp.partition))
                    if next_offset is None:
                        consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek(tp, next_offset)
                started = time.monotonic()
                last_progress = started
                gc.freeze()  # the long-lived objects made so far need no more GC passes
                with CommitPipeline(ingestor) as pipeline:  # batch N commits while N+1 is fetched and prepared
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
                        if until_idle and not records and caught_up(consumer, partitions):
                            break
                    self._committed(pipeline.wait(), consumer)
                self.stats.seconds = time.monotonic() - started
                if self.progress:
                    self._print_progress(consumer, partitions, final=True)
            finally:
                if dlq is not None:
                    dlq.close(timeout=10)
                consumer.close(autocommit=False)
        finally:
            ledger.close()
        return self.stats

    # -- Kafka ---------------------------------------------------------------------
    def _consumer(self):
        return new_consumer(self.settings, group_id=self.group_id, max_poll_records=self.batch_size,
                            **fetch_limits(self.batch_max_bytes))

    def _assign(self, consumer) -> list:
        partitions = event_partitions(consumer, self.settings.topic_prefix)
        consumer.assign(partitions)
        return partitions

    def _next_batch(self, consumer) -> list[Record]:
        """Poll until ``batch_size`` records, ``batch_max_bytes`` or ``batch_seconds``; offset order per partition.

        A batch always takes at least one record; what a poll returned beyond the
        byte bound is carried to the next batch, in order.
        """
        from kafka.errors import KafkaError, OffsetOutOfRangeError

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
                fetched = consumer.poll(timeout_ms=int(remaining * 1000), max_records=self.batch_size - len(batch))
            except OffsetOutOfRangeError as err:
                raise LedgerDivergedError(
                    f"Kafka reports the ledger's position as out of range ({err}); the topic was "
                    "truncated or recreated. The writer stops rather than skip or re-read records."
                ) from err
            except KafkaError as err:
                raise BrokerError(f"fetch failed: {err}") from err
            if not fetched:
                break
            records = [Record.from_kafka(m) for messages in fetched.values() for m in messages]
            taken, taken_size = take_within(records, self.batch_size - len(batch), self.batch_max_bytes - size,
                                            at_least_one=not batch)
            batch.extend(taken)
            size += taken_size
            if len(taken) < len(records):
                self._carry = records[len(taken):]
                break
        return batch

    def _dlq_producer(self):
        from ledger.kafka import open_producer

        return open_producer(self.settings)

    def _committed(self, done, consumer) -> None:
        """Count a batch whose SQLite commit finished (``(batch, records)`` or None) and tell Kafka."""
        if done is None:
            return
        prepared, n_records = done
        self._count(n_records, prepared)
        if self.group_id is None:
            return
        from kafka import OffsetAndMetadata, TopicPartition
        from kafka.errors import KafkaError

        offsets = {TopicPartition(topic, partition): OffsetAndMetadata(next_offset, "", -1)
                   for topic, partition, next_offset, *_ in prepared.rows.offsets}
        try:  # for lag monitoring only; the ledger holds the authoritative positions
            consumer.commit_async(offsets=offsets)
        except KafkaError:
            pass

    def _count(self, n_records: int, prepared) -> None:
        self.stats.records += n_records
        self.stats.batches += 1
        self.stats.rejected += len(prepared.rejected)
        for status, n in prepared.counts.items():
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + n

    def _print_progress(self, consumer, partitions, final: bool = False) -> None:
        lag = total_lag(consumer, partitions)
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
    from kafka import TopicPartition
    from kafka.errors import KafkaError, OffsetOutOfRangeError

    wanted = {}
    for tp in partitions:
        next_offset = positions.get((tp.topic, tp.partition))
        if next_offset:
            wanted[TopicPartition(tp.topic, tp.partition)] = next_offset - 1
    if not wanted:
        return
    consumer = new_consumer(settings, max_poll_records=1)
    try:
        consumer.assign(list(wanted))
        for tp, offset in wanted.items():
            consumer.seek(tp, offset)
        found: dict = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(wanted):
            try:
                fetched = consumer.poll(timeout_ms=500)
            except OffsetOutOfRangeError as err:
                raise LedgerDivergedError(f"a stored position is out of range on the broker: {err}") from err
            except KafkaError as err:
                raise BrokerError(f"cannot re-read the last recorded records: {err}") from err
            for tp, messages in fetched.items():
                if tp in wanted and tp not in found and messages:
                    found[tp] = messages[0]
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
        consumer.close(autocommit=False)
    for tp, message in found.items():
        offset = wanted[tp]
        stored = ledger.entry_at(tp.topic, tp.partition, offset)
        record = Record.from_kafka(message)
        if message.offset != offset or stored is None or leaf_hash(record) != stored["leaf_hash"]:
            raise LedgerDivergedError(
                f"{tp.topic}[{tp.partition}] offset {offset}: the broker's record differs from the one in "
                f"the ledger (got offset {message.offset}); the topic was recreated or rewritten. "
                "Refusing to continue."
            )
