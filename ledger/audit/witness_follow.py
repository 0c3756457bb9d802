"""``ledger witness follow``: read the checkpoints topic and witness every checkpoint on it.

The loop around :class:`ledger.tlog.follow.Follower`: an assign-only consumer of every partition
of ``<prefix>checkpoints`` (never a group), starting where this state file stopped (a new state
file, or ``from_beginning``: at each partition's first offset), each record handed to the
follower, the positions saved after every poll's records were taken (a crash repeats some
records, which the follower recognises as repeats).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ledger.config import Settings
from ledger.errors import BrokerError
from ledger.kafka import BEGINNING, Partition, event_partitions, open_consumer
from ledger.kafka.topics import checkpoints_topic
from ledger.tlog.follow import Follower, Outcome
from ledger.tlog.keyfile import safe_file_name
from ledger.wire.record import Record


@dataclass
class FollowStats:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.kind] = self.counts.get(outcome.kind, 0) + 1

    @property
    def alarms(self) -> int:
        return self.counts.get("alarm", 0)

    @property
    def refused(self) -> int:
        return self.counts.get("refused", 0)


def follow(settings: Settings, follower: Follower, *, from_beginning: bool = False, until_idle: bool = False,
           on_outcome: Callable[[Record, Outcome], None] = lambda r, o: None,
           stopping: Callable[[], bool] = lambda: False, cosigned_out: str | os.PathLike | None = None,
           poll_timeout: float = 0.5) -> FollowStats:
    """Witness the checkpoints topic's records until idle (``until_idle``) or ``stopping()``."""
    topic = checkpoints_topic(settings.topic_prefix)
    stats = FollowStats()
    consumer = open_consumer(settings, max_poll_records=500)
    try:
        partitions = event_partitions(consumer, settings.topic_prefix, [topic])
        stored = {} if from_beginning else follower.state.positions(topic)
        consumer.assign({tp: stored.get(tp.partition, BEGINNING) for tp in partitions})
        checked: set[Partition] = set()
        while not stopping():
            records = consumer.poll(max_records=500, timeout=poll_timeout)
            _check_not_beyond_end(consumer, partitions, stored, checked)
            for record in records:
                outcome = follower.take(record.key, record.value)
                stats.add(outcome)
                if cosigned_out is not None and outcome.kind in ("cosigned", "repeat"):
                    write_cosigned(follower, outcome.origin, cosigned_out)
                on_outcome(record, outcome)
            if records:
                touched = {record.partition for record in records}
                follower.state.save_positions(topic, {p: consumer.position(Partition(topic, p)) for p in touched})
            elif until_idle and consumer.caught_up(partitions):
                break
    finally:
        consumer.close()
    return stats


def _check_not_beyond_end(consumer, partitions, stored: dict[int, int], checked: set) -> None:
    """A stored position past a partition's end: the topic was recreated or truncated (brokers differ in
    whether they say so: some wait silently), so stop rather than wait for records that never come."""
    for tp in partitions:
        if tp in checked or tp.partition not in stored:
            continue
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        checked.add(tp)
        if stored[tp.partition] > highwater:
            raise BrokerError(f"{tp.topic}[{tp.partition}] ends at offset {highwater} but this follower's state "
                              f"says it read up to {stored[tp.partition]}: the topic was recreated or truncated. "
                              "Check with the log's operator; --from-beginning reads it again from its start")


def write_cosigned(follower: Follower, origin: str, out_dir: str | os.PathLike) -> Path:
    """The witness's latest cosigned checkpoint of ``origin`` to ``<out>/<safe origin>.checkpoint``, atomically."""
    response = follower.witness.checkpoint_for(hashlib.sha256(origin.encode("utf-8")).hexdigest())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{safe_file_name(origin)}.checkpoint"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(response.body)
    os.replace(tmp, path)
    return path

