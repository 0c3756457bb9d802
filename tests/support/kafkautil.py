"""Reading topics back in tests through the seam: every record, up to the high watermark (right on any broker)."""

from __future__ import annotations

import time

from ledger.config import Settings
from ledger.kafka import BEGINNING, event_partitions, open_consumer


def read_topics(settings: Settings, topics=None, timeout: float = 30.0) -> list:
    """Every record (``Record``) on the given topics (default: the event topics), in topic, partition, offset order."""
    consumer = open_consumer(settings)
    try:
        tps = event_partitions(consumer, settings.topic_prefix, topics)
        consumer.assign({tp: BEGINNING for tp in tps})
        found = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = consumer.poll(max_records=10_000, timeout=0.5)
            found.extend(batch)
            if not batch and consumer.caught_up(tps):
                break
    finally:
        consumer.close()
    return sorted(found, key=lambda m: (m.topic, m.partition, m.offset))
