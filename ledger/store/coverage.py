"""What a ledger covers: which offsets of which partitions, and which recorded-time window.

A ledger written by the live writer covers, per partition, every offset from
its first entry to its last, at any time. A replayed window covers the offsets
its replay scanned and only records whose Kafka timestamp lies in
``[from_ms, to_ms)``; replay stores that in the ``meta`` table under
``coverage`` so that ``ledger diff --common-range`` compares like with like.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

COVERAGE_KEY = "coverage"


@dataclass
class Coverage:
    from_ms: int | None = None  # inclusive; None = from the beginning of time
    to_ms: int | None = None  # exclusive; None = no end
    partitions: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # [first, end)

    def covers(self, topic: str, partition: int, offset: int, timestamp: int | None) -> bool:
        span = self.partitions.get((topic, partition))
        if span is None or not span[0] <= offset < span[1]:
            return False
        if timestamp is None:
            return self.from_ms is None and self.to_ms is None
        return (self.from_ms is None or timestamp >= self.from_ms) and (self.to_ms is None or timestamp < self.to_ms)

    def to_json(self) -> str:
        return json.dumps({
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
            "partitions": [[t, p, first, end] for (t, p), (first, end) in sorted(self.partitions.items())],
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Coverage":
        data = json.loads(text)
        return cls(data["from_ms"], data["to_ms"],
                   {(t, p): (first, end) for t, p, first, end in data["partitions"]})

    def describe(self) -> list[str]:
        """Human-readable lines: the window and each partition's offsets."""
        from datetime import UTC, datetime

        def when(ms):
            return "open" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")

        lines = [f"recorded time window: [{when(self.from_ms)}, {when(self.to_ms)})"]
        lines += [f"{t}[{p}]: offsets {first}..{end - 1}" if end > first else f"{t}[{p}]: empty"
                  for (t, p), (first, end) in sorted(self.partitions.items())]
        return lines


def read_coverage(conn: sqlite3.Connection) -> Coverage:
    """The stored coverage of a replayed ledger, or the one a live ledger's entries imply."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (COVERAGE_KEY,)).fetchone()
    if row is not None:
        (text,) = row
        return Coverage.from_json(text)
    spans = conn.execute(
        "SELECT topic, partition, min(offset), max(offset) + 1 FROM entries GROUP BY topic, partition"
    ).fetchall()
    return Coverage(partitions={(t, p): (first, end) for t, p, first, end in spans})
