"""The writer's batches are bounded by bytes as well as records, so large records cannot grow its memory.

Before issue 12 a batch was 10,000 records whatever their size: 300 garbage
records of 1 MB each took the writer to 1.04 GB. A fake consumer stands in
for Kafka here (the broker path is measured by bench/bench_writer_memory.py).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ledger.config import Settings
from ledger.errors import ConfigError
from ledger.ingest.writer import LedgerWriter
from ledger.kafka.reading import confluent_fetch_limits, fetch_limits
from ledger.wire.record import Record


class FakeConsumer:
    """The seam's poll: the queued records in polls of at most ``max_records``."""

    def __init__(self, sizes: list[int]):
        self.queue = [Record("ledger.access", 0, i, 0, b"k", b"v" * n) for i, n in enumerate(sizes)]

    def poll(self, max_records: int, timeout: float):
        taken, self.queue = self.queue[:max_records], self.queue[max_records:]
        return taken


def batches(writer: LedgerWriter, consumer: FakeConsumer) -> list[list]:
    out = []
    while True:
        batch = writer._next_batch(consumer)
        if not batch:
            return out
        out.append(batch)


MiB = 1024 * 1024


def test_300_records_of_1_mb_come_in_batches_within_the_byte_bound():
    """300 garbage records of 1 MB: no batch holds more than batch_max_bytes; every record comes once, in order."""
    writer = LedgerWriter(Settings.load(env={}), batch_size=10_000, batch_max_bytes=16 * MiB)
    got = batches(writer, FakeConsumer([1_000_000] * 300))
    assert [r.offset for b in got for r in b] == list(range(300))
    assert all(sum(r.size for r in b) <= 16 * MiB for b in got)
    assert len(got) == 19 and len(got[0]) == 16  # 16 records of 1,000,001 bytes fit 16 MiB


def test_a_record_bigger_than_the_bound_is_a_batch_of_its_own():
    """A batch always takes one record, so an oversized record cannot stall the writer."""
    writer = LedgerWriter(Settings.load(env={}), batch_max_bytes=2 * MiB)
    got = batches(writer, FakeConsumer([100, 3 * MiB, 100, 100]))
    assert [[r.offset for r in b] for b in got] == [[0], [1], [2, 3]]


@hsettings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(0, 3 * MiB), max_size=40), batch_size=st.integers(1, 12),
       bound=st.integers(2 * MiB, 8 * MiB))
def test_batches_keep_every_record_in_order_within_both_bounds(sizes, batch_size, bound):
    """Any sizes: each record once, in order; a batch exceeds neither bound unless it is one record."""
    writer = LedgerWriter(Settings.load(env={}), batch_size=batch_size, batch_max_bytes=bound)
    got = batches(writer, FakeConsumer(sizes))
    assert [r.offset for b in got for r in b] == list(range(len(sizes)))
    for b in got:
        assert len(b) <= batch_size
        assert len(b) == 1 or sum(r.size for r in b) <= bound


def test_the_bound_is_a_setting_with_a_default_and_caps_the_fetches():
    """LEDGER_BATCH_MAX_BYTES sets it (default 16 MiB); fetch sizes never exceed it; nonsense is refused."""
    assert Settings.load(env={}).batch_max_bytes == 16 * MiB
    assert Settings.load(env={"LEDGER_BATCH_MAX_BYTES": str(4 * MiB)}).batch_max_bytes == 4 * MiB
    assert fetch_limits(4 * MiB) == {"fetch_max_bytes": 4 * MiB, "max_partition_fetch_bytes": 4 * MiB}
    for bad in ("lots", "1000"):
        with pytest.raises(ConfigError, match="batch_max_bytes"):
            Settings.load(env={"LEDGER_BATCH_MAX_BYTES": bad})


def test_confluent_kafka_prefetches_no_more_than_one_fetch_and_one_poll():
    """librdkafka's read-ahead queue is held to the batch bound and one poll's records, not its 64 MiB default."""
    assert confluent_fetch_limits(4 * MiB, 10_000) == {
        "fetch.max.bytes": 4 * MiB, "max.partition.fetch.bytes": 4 * MiB,
        "queued.max.messages.kbytes": 4096, "queued.min.messages": 10_000, "fetch.queue.backoff.ms": 10}
    assert confluent_fetch_limits(256 * MiB, 1)["queued.max.messages.kbytes"] == 64 * 1024  # the fetch cap


def test_librdkafka_accepts_the_consumer_settings():
    """The consumer's settings, fetch caps included, are ones librdkafka takes (it refuses bad ones at once)."""
    confluent = pytest.importorskip("confluent_kafka")
    from ledger.kafka.confluent import ASSIGN_ONLY_GROUP, CONSUMER_CONFIG

    for bound in (2 * MiB, 16 * MiB, 256 * MiB):
        consumer = confluent.Consumer({**CONSUMER_CONFIG, **confluent_fetch_limits(bound, 10_000),
                                       "bootstrap.servers": "127.0.0.1:9", "group.id": ASSIGN_ONLY_GROUP})
        consumer.close()
