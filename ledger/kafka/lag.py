"""End offsets of the event partitions, for how far behind Kafka the writer is (end minus next offset).

    ends = end_offsets(settings, ledger.positions(), timeout=2.0)   # {Partition: end offset}
    behind = {p: end - ledger.positions().get(p, 0) for p, end in ends.items()}

End offsets are read as the high watermark a fetch reports, not with ListOffsets (wrong on the
local test broker, shared/BROKERS.md): an assign-only consumer (no group) is placed at the
ledger's next offset of every event partition, polled once for one record, and asked for each
partition's high watermark. A partition the ledger has not seen yet counts from offset 0 (an
over-estimate when retention removed its start). BrokerError when the broker does not answer
within ``timeout`` seconds or a topic is missing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..config import Settings
from ..errors import BrokerError
from . import Partition, event_partitions, open_consumer


def end_offsets(settings: Settings, positions: Mapping[tuple[str, int], int], *,
                timeout: float = 2.0) -> dict[Partition, int]:
    """The end offset (high watermark) of every event partition, fetched from ``positions``."""
    deadline = time.monotonic() + timeout
    consumer = open_consumer(settings, max_poll_records=1, bootstrap_timeout=timeout)
    try:
        parts = event_partitions(consumer, settings.topic_prefix)
        starts = {p: positions.get((p.topic, p.partition), 0) for p in parts}
        consumer.assign(starts)
        while True:
            consumer.poll(max_records=1, timeout=min(0.2, max(0.01, deadline - time.monotonic())))
            known = {p: consumer.highwater(p) for p in parts}
            if all(v is not None for v in known.values()):
                return known
            if time.monotonic() > deadline:
                missing = [f"{p.topic}[{p.partition}]" for p, v in known.items() if v is None]
                raise BrokerError(f"no end offset from the broker within {timeout:g} s for "
                                  f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
    finally:
        consumer.close()
