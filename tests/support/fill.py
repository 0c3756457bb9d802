"""Fill a real ledger file from a simulated workload, without Kafka.

    filled = fill_ledger(tmp_path / "ledger.db", workload.events)
    filled.recorded["<event_id>"]          # the Kafka timestamp (ms) each event got
    filled.positions["<event_id>"]         # (timestamp, topic, partition, offset): what the oracle orders by

Each event becomes the Record the writer would have consumed: topic from
``topic_for``, partition ``crc32(key) % 3``, offsets sequential per
partition, header ``event_type``, value ``codec.encode(event)``. The recorded
time is when the event was emitted: the latest ``occurred_at`` seen so far in
emission order plus a couple of seconds, so back-dated entries and
disclosures typed in after their notice are recorded later than they occurred.
Records go through the real :class:`~ledger.ingest.Ingestor` in batches.

:func:`cached_ledger` builds one file per workload per test session.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import pytest

from ledger.ingest.pipeline import Ingestor
from ledger.kafka.topics import topic_for
from ledger.model.events import event_key
from ledger.model.times import to_micros
from ledger.store import Ledger
from ledger.wire.record import Record, event_type_header

PARTITIONS = 3
PREFIX = "ledger."
LAG_MS = 2_000  # emission to broker: the recorded time trails the latest event seen


@dataclass
class Filled:
    path: Path
    recorded: dict[str, int]  # event_id -> Kafka timestamp (ms)
    counts: dict[str, int]  # ingest status counts
    positions: dict[str, tuple] = None  # event_id -> (timestamp_ms, topic, partition, offset)


def to_records(events: Iterable[dict], *, codec, prefix: str = PREFIX, partitions: int = PARTITIONS,
               recorded: dict[str, int] | None = None, positions: dict[str, tuple] | None = None) -> Iterator[Record]:
    """The records a writer would consume for ``events`` (emission order); fills ``recorded``."""
    offsets: dict[tuple[str, int], int] = {}
    latest_us = None
    for event in events:
        event = codec.validate(event)
        at = to_micros(event["occurred_at"])
        latest_us = at if latest_us is None else max(latest_us, at)
        timestamp = latest_us // 1000 + LAG_MS
        key = event_key(event)
        topic = topic_for(event["type"], prefix)
        partition = zlib.crc32(key) % partitions
        offset = offsets.get((topic, partition), 0)
        offsets[(topic, partition)] = offset + 1
        if recorded is not None:
            recorded[event["event_id"]] = timestamp
        if positions is not None:
            positions[event["event_id"]] = (timestamp, topic, partition, offset)
        yield Record(topic, partition, offset, timestamp, key, codec.encode(event),
                     (event_type_header(event["type"]),))


# Side-table buckets of 32 entries, so that every query test reads across many buckets.
TEST_BUCKET_BITS = 5


def fill_ledger(path: str | Path, events: Iterable[dict], *, batch: int = 10_000,
                prefix: str = PREFIX, by_partition: bool = False) -> Filled:
    """Write ``events`` into a new ledger file at ``path`` through the Ingestor.

    ``by_partition=True`` ingests one topic-partition after another, as a
    replay that reads partitions in turn would: same records, other seq order
    (and other bucket boundaries: buckets of 128 entries instead of 32).
    """
    from ledger.wire.codec import default_codec

    codec = default_codec()
    recorded: dict[str, int] = {}
    positions: dict[str, tuple] = {}
    records: Iterable[Record] = to_records(events, codec=codec, prefix=prefix, recorded=recorded, positions=positions)
    if by_partition:
        records = sorted(records, key=lambda r: (r.topic, r.partition, r.offset))
    bucket_bits = TEST_BUCKET_BITS + 2 if by_partition else TEST_BUCKET_BITS
    counts = ingest_records(path, records, batch=batch, codec=codec, bucket_bits=bucket_bits)
    return Filled(Path(path), recorded, counts, positions)


def ingest_records(path: str | Path, records: Iterable[Record], *, batch: int = 10_000, codec=None,
                   bucket_bits: int = TEST_BUCKET_BITS) -> dict[str, int]:
    """Append ``records`` to the ledger at ``path`` (created if missing); returns the status counts."""
    counts: dict[str, int] = {}
    ledger = Ledger.open(path, readonly=False, create=True, bucket_bits=bucket_bits)
    try:
        ingestor = Ingestor(ledger, codec=codec)
        chunk: list[Record] = []
        for record in records:
            chunk.append(record)
            if len(chunk) >= batch:
                _ingest(ingestor, chunk, counts)
                chunk = []
        if chunk:
            _ingest(ingestor, chunk, counts)
    finally:
        ledger.close()
    return counts


def _ingest(ingestor: Ingestor, records: list[Record], counts: dict[str, int]) -> None:
    result = ingestor.ingest(records)
    for status, n in result.counts.items():
        counts[status] = counts.get(status, 0) + n


_CACHE: dict[tuple, Filled] = {}
_DIR: list[Path] = []


def cached_ledger(workload, key: tuple, *, by_partition: bool = False) -> Filled:
    """One filled ledger per ``key`` for the whole test session (removed at exit)."""
    key = (*key, "by_partition" if by_partition else "emission")
    found = _CACHE.get(key)
    if found is None:
        if not _DIR:
            _DIR.append(Path(tempfile.mkdtemp(prefix="ledger-fill-")))
            atexit.register(shutil.rmtree, _DIR[0], True)
        name = "-".join(str(k) for k in key) + ".db"
        found = _CACHE[key] = fill_ledger(_DIR[0] / name, workload.events, by_partition=by_partition)
    return found


def workload_for_tests():
    """The simulated workload the query, obligation and report tests share (every legal case occurs)."""
    from ledger.dev.simulate import simulate

    key = ("workload", 11, 6000, 150)
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = simulate(seed=11, events=6000, subjects=150)
    return found


def recorded_by(workload, filled: Filled, as_of_ms: int) -> list[dict]:
    """The workload's events the ledger had recorded by ``as_of_ms`` (what the oracle should see)."""
    return [e for e in workload.events if filled.recorded[e["event_id"]] <= as_of_ms]


# The fixtures the query, obligation and report tests share; a test module imports them by name.
@pytest.fixture(scope="module")
def workload():
    return workload_for_tests()


@pytest.fixture(scope="module")
def filled(workload):
    return cached_ledger(workload, ("query",))


@pytest.fixture(scope="module")
def ledger(filled):
    with Ledger.open(filled.path) as led:
        yield led
