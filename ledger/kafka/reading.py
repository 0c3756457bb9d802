"""Reading the event topics with kafka-python: shared by the writer and replay.

Positions are compared with ``consumer.highwater(tp)``, known after a fetch,
rather than ``end_offsets``: that is correct on Apache Kafka and also on the
local test broker, whose end-offset answers are wrong (shared/BROKERS.md).
"""

from __future__ import annotations

from typing import Any, Iterable

from ledger.config import Settings
from ledger.errors import BrokerError
from ledger.wire.record import Record

from .topics import event_topics


def new_consumer(settings: Settings, **overrides: Any):
    """A consumer that never resets a position silently and fetches in large batches."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    options = {
        "group_id": None,
        "enable_auto_commit": False,
        # Never "latest", never a silent reset: positions come from the ledger.
        "auto_offset_reset": "none",
        # Records of aborted transactions never happened: they must not become evidence. Their
        # offsets and the transaction markers' are skipped and become gap entries (ingest).
        "isolation_level": "read_committed",
        "max_poll_records": 10_000,
        "fetch_max_bytes": 64 * 1024 * 1024,
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
        **overrides,
    }
    try:
        return KafkaConsumer(**settings.kafka_options(), **options)
    except KafkaError as err:
        raise BrokerError(f"cannot reach Kafka at {settings.bootstrap_servers}: {err}") from err


def event_partitions(consumer, prefix: str, topics: Iterable[str] | None = None) -> list:
    """Every partition of the given topics (default: the four event topics); a missing topic is an error."""
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    wanted = list(topics) if topics is not None else event_topics(prefix)
    try:
        existing = consumer.topics()  # lists without auto-creating anything
        missing = [t for t in wanted if t not in existing]
        if missing:
            raise BrokerError(f"topics missing: {', '.join(missing)}; create them with `ledger topics create`")
        return [TopicPartition(topic, p) for topic in wanted
                for p in sorted(consumer.partitions_for_topic(topic) or ())]
    except KafkaError as err:
        raise BrokerError(f"cannot list the topics: {err}") from err


def caught_up(consumer, partitions) -> bool:
    """True when every partition's position has reached its high watermark (known after a fetch)."""
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or consumer.position(tp) < highwater:
            return False
    return True


def total_lag(consumer, partitions) -> int | None:
    """Records between the positions and the high watermarks; None until every partition was fetched."""
    lag = 0
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None:
            return None
        lag += max(0, highwater - consumer.position(tp))
    return lag


def fetch_limits(batch_max_bytes: int) -> dict:
    """Consumer fetch sizes within one batch's byte bound, so fetched-but-unbatched data is bounded too."""
    return {"fetch_max_bytes": min(64 * 1024 * 1024, batch_max_bytes),
            "max_partition_fetch_bytes": min(8 * 1024 * 1024, batch_max_bytes)}


def take_within(records: list[Record], max_records: int, max_bytes: int, *, at_least_one: bool = True):
    """The longest prefix of ``records`` within both bounds (the first record even if it alone is bigger)."""
    size = 0
    for i, record in enumerate(records[:max_records]):
        if size + record.size > max_bytes and (i or not at_least_one):
            return records[:i], size
        size += record.size
    taken = records[:max_records]
    return taken, size
