"""How far the live judge may feed: a recorded time (ms) below which no entry can still arrive.

    mark = Watermark(idle_after_s=10.0, allowance_ms=1000, clock=time.monotonic)
    mark.saw(topic, partition, ms)                 # each record read from the ledger
    mark.ends(ends, read_at_ms)                    # Kafka's end offsets (high watermarks), read at read_at_ms
    bound = mark.bound(now_ms, stored)             # stored: the ledger's next offset per partition

The writer appends partition batch by partition batch, so a later batch of one
partition may hold records older than what another already delivered. Each
partition holds the mark back:

* **caught up** (Kafka's end offset, read at T, is at or below the ledger's
  stored next offset): every record it still delivers was appended to Kafka
  after T, so it holds the mark at ``T - allowance_ms`` (the allowance covers
  producer clocks when topics keep CreateTime) or just below its latest record,
  whichever is later;
* **still delivering** (the ledger is behind Kafka's end): its next record is
  recorded no earlier than its latest (timestamps grow along a partition with
  LogAppendTime), so it holds the mark just below that latest (``ms - 1``: the
  next record may share the millisecond). One the ledger has not seen at all
  holds the mark at the start of time until it delivers. It holds however long
  it waits its turn while the writer delivers other partitions (a backlog);
  once every partition was silent for ``idle_after_s`` (the writer is down) it
  stops holding, so time rules go on;
* **no answer from Kafka** for it (no broker given, the broker down): it holds
  the mark below its latest while it delivered within ``idle_after_s``; a silent
  one does not (the policy topic, a writer that stopped).

What a partition that stopped holding delivers later arrives behind the mark
("late") and the judge rewinds for it (live.py). The mark is
never later than ``now_ms``, the instant the step judges at.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

#: Before every recorded time: a partition that holds the mark here lets nothing be fed.
NEVER = -(2**62)


@dataclass
class _Partition:
    latest: int | None = None  # latest recorded time (ms) the ledger holds, None before its first record
    seen: float = 0.0  # clock when it last delivered (or was first known)
    end: int | None = None  # Kafka's end offset at end_at (None: not known)
    end_at: int = NEVER  # recorded-time clock (ms) when ``end`` was read


class Watermark:
    """The feed bound of the live judge; see the module docstring."""

    def __init__(self, *, idle_after_s: float = 10.0, allowance_ms: int = 1000, clock=time.monotonic):
        self.idle_after_s = idle_after_s
        self.allowance_ms = allowance_ms
        self.clock = clock
        self.partitions: dict[tuple[str, int], _Partition] = {}
        self.newest: int | None = None  # the newest recorded time seen on any partition
        #: The last bound was set by a caught-up partition's end read: asking Kafka again can move it.
        self.held_by_caught_up = True

    def start(self, latest: list[tuple[tuple[str, int], int]]) -> None:
        """The partitions the ledger held at start with their latest recorded time. One Kafka says is
        still delivering counts as just delivered; without Kafka's word one counts as silent, so the
        first step judges everything recorded (a restart then withdraws nothing it published)."""
        silent = self.clock() - self.idle_after_s
        for (topic, part), ms in latest:
            p = self.partitions.get((topic, part))
            self.saw(topic, part, ms, silent if p is None or p.end is None else None)

    def saw(self, topic: str, partition: int, ms: int, wall: float | None = None) -> None:
        """A record of ``(topic, partition)`` recorded at ``ms`` was read from the ledger."""
        p = self.partitions.get((topic, partition))
        wall = self.clock() if wall is None else wall
        if p is None:
            self.partitions[(topic, partition)] = _Partition(ms, wall)
        else:
            p.latest = ms if p.latest is None else max(p.latest, ms)
            p.seen = wall
        if self.newest is None or ms > self.newest:
            self.newest = ms

    def ends(self, ends: dict[tuple[str, int], int], read_at_ms: int) -> None:
        """Kafka's end offset of each partition, read at ``read_at_ms`` (taken before asking)."""
        wall = self.clock()
        for tp, end in ends.items():
            p = self.partitions.get(tp)
            if p is None:
                p = self.partitions[tp] = _Partition(None, wall)
            p.end, p.end_at = end, read_at_ms

    def forget_ends(self) -> None:
        """Kafka stopped answering: back to the idle rule for every partition."""
        for p in self.partitions.values():
            p.end, p.end_at = None, NEVER

    def bound(self, now_ms: int, stored: dict[tuple[str, int], int]) -> int:
        """Every entry recorded at or before the returned ms can be fed; later ones may still be overtaken."""
        wall = self.clock()
        bound, self.held_by_caught_up = now_ms, False
        # The writer is alive while some partition delivered within idle_after_s: then a partition Kafka
        # says is behind will deliver, however long it waits its turn, and keeps holding the mark.
        writer_alive = any(wall - p.seen < self.idle_after_s for p in self.partitions.values())
        for tp, p in self.partitions.items():
            below_latest = NEVER if p.latest is None else p.latest - 1
            caught_up = p.end is not None and stored.get(tp, 0) >= p.end
            if caught_up:
                hold = max(p.end_at - self.allowance_ms, below_latest)
            elif wall - p.seen >= self.idle_after_s and (p.end is None or not writer_alive):
                continue
            else:
                hold = below_latest
            if hold < bound:
                bound, self.held_by_caught_up = hold, caught_up
        return bound


__all__ = ["NEVER", "Watermark"]
