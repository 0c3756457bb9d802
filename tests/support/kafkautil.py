"""Reading topics back in tests: every record, found through the high watermark (right on any broker)."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition

from ledger.config import Settings
from ledger.kafka.topics import event_topics


def read_topics(settings: Settings, topics=None, timeout: float = 30.0) -> list:
    """Every record on the given topics (default: the event topics), in topic, partition, offset order."""
    consumer = KafkaConsumer(**settings.kafka_options(), enable_auto_commit=False)
    tps = [TopicPartition(t, p) for t in (topics or event_topics(settings.topic_prefix))
           for p in sorted(consumer.partitions_for_topic(t) or ())]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    found = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        for messages in batch.values():
            found.extend(messages)
        if not batch and all(consumer.highwater(tp) is not None and consumer.position(tp) >= consumer.highwater(tp)
                             for tp in tps):
            break
    consumer.close()
    return sorted(found, key=lambda m: (m.topic, m.partition, m.offset))
