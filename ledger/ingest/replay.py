"""Rebuild a ledger from Kafka, the source of record, for investigations.

    result = replay(settings, "replayed.db", from_ms=..., to_ms=...)

Reads every record whose Kafka timestamp (recorded time) lies in
``[from_ms, to_ms)`` — or all of them — up to the end of each partition as it
stood when the replay started, through the writer's own decoding, hashing
and indexing code (``Ingestor``) into a fresh ledger. The side tables that
serve queries are built once at the end, in key order (``bulk``). It never writes to
Kafka: no dead-letter copies, no offset commits, no consumer group.

Exact on any broker: offsets-for-times is not used to skip ahead, because
Kafka record timestamps need not grow with offsets and the local test broker
answers it from storage time; every partition is scanned from its beginning
and records are filtered by their own timestamp. The end of each partition is
its high watermark as first reported by a fetch (``end_offsets`` is wrong on
the test broker).

A replay of everything reproduces the live ledger's chain heads exactly. A
window starts mid-chain: each partition's chain begins at the window's first
record, so it is compared with the live ledger through leaf hashes
(``ledger diff --common-range``); the ledger records what it covers.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ledger.config import Settings
from ledger.errors import BrokerError, LedgerDivergedError, OffsetOutOfRangeError, StoreError
from ledger.kafka import BEGINNING, Partition, event_partitions
from ledger.kafka.reading import take_within
from ledger.model.timecheck import TimeLimits
from ledger.store import Ledger
from ledger.store.coverage import COVERAGE_KEY, Coverage
from ledger.wire.record import Record

from .pipeline import CommitPipeline, Ingestor, default_codec
from .readahead import open_reader


@dataclass
class ReplayResult:
    scanned: int = 0  # records read from Kafka
    replayed: int = 0  # records inside the window, now in the ledger
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    coverage: Coverage = field(default_factory=Coverage)


class Progress:
    """A one-line progress bar on stderr: records, rate and time left."""

    def __init__(self, stream=sys.stderr, every: float = 0.5):
        self.stream, self.every = stream, every
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int | None, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        if total:
            left = (total - done) / rate if rate else 0
            share = min(done / total, 1.0)
            bar = "#" * int(share * 30)
            text = f"\rreplay [{bar:<30}] {done:,}/{total:,} records  {rate:,.0f}/s  {left:,.0f}s left "
        else:
            text = f"\rreplay {done:,} records  {rate:,.0f}/s "
        self.stream.write(text + ("\n" if final else ""))
        self.stream.flush()


def replay(
    settings: Settings,
    into: str | Path,
    *,
    from_ms: int | None = None,
    to_ms: int | None = None,
    topics: Iterable[str] | None = None,
    batch_size: int = 10_000,
    progress: Callable[[int, int | None, bool], None] | None = None,
    timeout: float = 60.0,
    bulk: bool = True,
) -> ReplayResult:
    """Replay Kafka into the fresh ledger ``into``; see the module docstring."""
    into = Path(into)
    if into.exists():
        raise StoreError(f"{into} exists; replay writes a fresh ledger, give a new path")
    windowed = from_ms is not None or to_ms is not None
    result = ReplayResult(coverage=Coverage(from_ms, to_ms))
    started = time.monotonic()
    codec, limits = default_codec(), TimeLimits.from_settings(settings)  # the new ledger's
    consumer = open_reader(settings, codec=codec, limits=limits, max_poll_records=batch_size)  # readahead.py
    try:
        ledger = Ledger.open(into, readonly=False, create=True, time_limits=limits)
    except BaseException:
        consumer.close()
        raise
    try:
        ingestor = Ingestor(ledger, codec=codec, start_mid_chain=windowed)
        if bulk:
            ledger.begin_bulk()
        partitions = event_partitions(consumer, settings.topic_prefix, topics)
        # Before assign: once fetches run, librdkafka queues each offsets query behind a fetch's
        # long poll on the broker connection (measured: 13 s for 30 partitions, 0.5 s before).
        total = consumer.estimate(partitions)
        consumer.assign({tp: BEGINNING for tp in partitions})
        end: dict[Partition, int] = {}  # each partition's high watermark when first seen: the end as it stood
        idle_since = time.monotonic()
        # Indexing as it loads, batch N commits while N+1 is fetched and prepared; a bulk load commits in line.
        with CommitPipeline(ingestor, background=not bulk) as pipeline:
            while len(end) < len(partitions) or any(consumer.position(tp) < end[tp] for tp in partitions):
                fetched = _poll(consumer, batch_size)
                batch: list[Record] = []
                for tp in partitions:
                    if tp not in end and consumer.highwater(tp) is not None:
                        end[tp] = consumer.highwater(tp)
                for m in fetched:  # in offset order per partition
                    tp = Partition(m.topic, m.partition)
                    stop = end.get(tp, consumer.highwater(tp))
                    if stop is not None and m.offset >= stop:
                        continue  # beyond the end as it stood when the replay first saw it
                    result.scanned += 1
                    if (from_ms is None or m.timestamp >= from_ms) and (to_ms is None or m.timestamp < to_ms):
                        batch.append(m)
                for tp in partitions:
                    if tp in end and consumer.position(tp) >= end[tp] and tp not in consumer.paused():
                        consumer.pause(tp)
                while batch:  # in pieces within batch_max_bytes, as the writer does: memory stays bounded
                    piece, _ = take_within(batch, len(batch), settings.batch_max_bytes)
                    batch = batch[len(piece):]
                    _count(result, pipeline.submit(ingestor.prepare(piece), len(piece)))
                if fetched:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > timeout:
                    raise BrokerError(
                        f"replay: no records for {timeout:.0f}s before reaching the end of every partition")
                if progress:
                    progress(result.scanned, total, False)
            _count(result, pipeline.wait())
        if bulk:
            ledger.finish_bulk()
        for tp in partitions:  # every partition is scanned from its beginning
            result.coverage.partitions[(tp.topic, tp.partition)] = (0, end[tp])
        ledger.set_meta(COVERAGE_KEY, result.coverage.to_json())
        ledger.set_meta("replayed_from", f"{settings.bootstrap_servers} {settings.topic_prefix}")
    finally:
        consumer.close()
        ledger.close()
    result.seconds = time.monotonic() - started
    if progress:
        progress(result.scanned, total, True)
    return result


def _count(result: ReplayResult, done) -> None:
    """Add a committed batch's counts (``done`` from CommitPipeline: (batch, records) or None)."""
    if done is None:
        return
    prepared, records = done
    result.replayed += records
    for status, n in prepared.counts.items():
        result.counts[status] = result.counts.get(status, 0) + n


def _poll(consumer, batch_size: int) -> list[Record]:
    try:
        return consumer.poll(max_records=batch_size, timeout=0.5)
    except OffsetOutOfRangeError as err:
        raise LedgerDivergedError(f"replay: the log changed under the replay: {err}") from err
    except BrokerError as err:
        raise BrokerError(f"replay: fetch failed: {err}") from err
