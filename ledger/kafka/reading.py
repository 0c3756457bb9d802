"""Byte-bounded batching, shared by the writer and replay, and the fetch caps both clients apply.

The consumers themselves are the seam's (``ledger.kafka.open_consumer``); this
module only keeps what bounds memory: a batch within ``batch_max_bytes``
(:func:`take_within`) and fetch sizes within the same bound
(:func:`fetch_limits`), which both implementations apply from
``Settings.batch_max_bytes`` so that fetched-but-unbatched data is bounded too;
and how far behind a consumer is, from its own positions and high watermarks
(:func:`caught_up`, :func:`lag`).
"""

from __future__ import annotations

from ledger.wire.record import Record


def fetch_limits(batch_max_bytes: int) -> dict:
    """Consumer fetch sizes within one batch's byte bound, so fetched-but-unbatched data is bounded too."""
    return {"fetch_max_bytes": min(64 * 1024 * 1024, batch_max_bytes),
            "max_partition_fetch_bytes": min(8 * 1024 * 1024, batch_max_bytes)}


def confluent_fetch_limits(batch_max_bytes: int, max_poll_records: int) -> dict:
    """:func:`fetch_limits` in librdkafka's names (``batch_max_bytes`` is at least 2 MiB, so at or above
    librdkafka's ``message.max.bytes``, which it requires ``fetch.max.bytes`` not to go below), and
    its prefetch queue within the same bound.

    librdkafka fetches ahead in background threads until its queue holds ``queued.min.messages``
    per partition (default 100,000) or ``queued.max.messages.kbytes`` (default 64 MiB): all of a
    200k-event reference run's topics, four of the default batch bounds. Held to one fetch and one poll's records, the writer's
    fetched-but-unbatched data stays bounded as with kafka-python, and the broker works less
    (measured from /proc over 100k-event writer runs: the local broker's CPU 6.6 → 1.9 µs an event on
    the simulated mix, 2.0–3.6 → 1.3–1.5 on the reference mix; BENCHMARKS.md, s6-writer).
    """
    limits = fetch_limits(batch_max_bytes)
    return {"fetch.max.bytes": limits["fetch_max_bytes"],
            "max.partition.fetch.bytes": limits["max_partition_fetch_bytes"],
            "queued.max.messages.kbytes": limits["fetch_max_bytes"] // 1024,
            "queued.min.messages": max(1, max_poll_records),
            # A partition whose queue is full waits this long before its next fetch (default 1 s): with
            # the smaller queue a fast reader then starved (measured, the seam's poll alone over 50k
            # reference events: 42.5 µs wall an event at 1 s, 4.9 at 10 ms, 6.2 with the old defaults).
            "fetch.queue.backoff.ms": 10}


def take_within(records: list[Record], max_records: int, max_bytes: int, *, at_least_one: bool = True):
    """The longest prefix of ``records`` within both bounds (the first record even if it alone is bigger)."""
    size = 0
    for i, record in enumerate(records[:max_records]):
        n = record.size  # a property: computed once
        if size + n > max_bytes and (i or not at_least_one):
            return records[:i], size
        size += n
    taken = records[:max_records]
    return taken, size


def caught_up(consumer, partitions) -> bool:
    """Every partition's position at its high watermark (an unknown watermark: not caught up).

    In terms of the consumer's own ``position`` and ``highwater``, for a consumer that keeps both
    locally (kafka-python's, the read-ahead consumer's).
    """
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or consumer.position(tp) < highwater:
            return False
    return True


def lag(consumer, partitions) -> int | None:
    """Records between each partition's position and its high watermark, summed; None if one is unknown."""
    total = 0
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None:
            return None
        total += max(0, highwater - consumer.position(tp))
    return total
