"""Compare two ledgers record by record: what one holds that the other does not.

    result = diff_ledgers("live.db", "replayed.db", common_range=True)
    for d in result.differences: print(d.line())

Records are matched by (topic, partition, offset) and compared by leaf hash,
which covers everything Kafka held for the record, and by their readable form
(the ``json`` column, what the queries return; None for a rejected record):
two ledgers can hold the same bytes and still answer differently. The leaf is recomputed
from each row's stored evidence, so a row whose bytes were changed without
its stored hash is caught as well as one whose hash was recomputed; a row
whose stored hash does not match its own bytes counts as different. Gap
entries are bookkeeping and not compared. A merge join over both files' offset order
streams, so ledgers of any size compare in constant memory.

``common_range`` compares only what both ledgers cover: per partition the
offsets both scanned, and records whose Kafka timestamp lies in both
ledgers' time windows (a replay of a window covers less than the live
ledger). A record is compared when it falls in the common range on either
side, so a tampered timestamp cannot move a row out of the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ledger.store import reads
from ledger.store.coverage import Coverage
from ledger.store.schema import headers_from_json
from ledger.tlog.chain import leaf_hash
from ledger.wire.record import Record

@dataclass(frozen=True)
class Difference:
    kind: str  # "only_in_a" | "only_in_b" | "leaf_differs" | "json_differs" (same leaf, other readable form)
    topic: str
    partition: int
    offset: int
    event_id_a: str | None
    event_id_b: str | None

    def line(self) -> str:
        event_id = self.event_id_a or self.event_id_b or "-"
        if self.kind in ("leaf_differs", "json_differs") and self.event_id_a != self.event_id_b:
            event_id = f"{self.event_id_a or '-'} vs {self.event_id_b or '-'}"
        what = {"only_in_a": "only in A", "only_in_b": "only in B", "leaf_differs": "leaf hash differs",
                "json_differs": "readable form (json) differs"}[self.kind]
        return f"{self.topic}[{self.partition}]@{self.offset}  {what}  event_id {event_id}"


@dataclass
class DiffResult:
    compared: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.differences


def _rows(conn) -> Iterator[tuple]:
    """(topic, partition, offset, timestamp, event_id, leaf, json) with leaf = the recomputed hash, or None if
    the stored hash does not match the row's own evidence."""
    for topic, partition, offset, timestamp, event_id, stored, key, headers, value, text in reads.raw_record_rows(conn):
        leaf = leaf_hash(Record(topic, partition, offset, timestamp, key, value, headers_from_json(headers)))
        yield topic, partition, offset, timestamp, event_id, leaf if leaf == stored else None, text


def diff_ledgers(a: str | Path, b: str | Path, *, common_range: bool = False) -> DiffResult:
    """Records in one ledger and not the other, and records whose leaf hashes or readable forms differ."""
    conn_a, conn_b = reads.open_raw(a), reads.open_raw(b)
    try:
        cov_a, cov_b = reads.read_coverage(conn_a), reads.read_coverage(conn_b)
        keep = _common_filter(cov_a, cov_b) if common_range else (lambda row: True)
        result = DiffResult()
        rows_a, rows_b = _rows(conn_a), _rows(conn_b)
        ra, rb = next(rows_a, None), next(rows_b, None)
        while ra is not None or rb is not None:
            key_a = ra[:3] if ra is not None else None
            key_b = rb[:3] if rb is not None else None
            if rb is None or (ra is not None and key_a < key_b):
                if keep(ra):
                    result.differences.append(Difference("only_in_a", *ra[:3], ra[4], None))
                ra = next(rows_a, None)
            elif ra is None or key_b < key_a:
                if keep(rb):
                    result.differences.append(Difference("only_in_b", *rb[:3], None, rb[4]))
                rb = next(rows_b, None)
            else:
                if keep(ra) or keep(rb):
                    result.compared += 1
                    if ra[5] is None or ra[5] != rb[5]:
                        result.differences.append(Difference("leaf_differs", *ra[:3], ra[4], rb[4]))
                    elif ra[6] != rb[6]:
                        result.differences.append(Difference("json_differs", *ra[:3], ra[4], rb[4]))
                ra, rb = next(rows_a, None), next(rows_b, None)
        return result
    finally:
        conn_a.close()
        conn_b.close()


def _common_filter(cov_a: Coverage, cov_b: Coverage):
    """A predicate: does this (topic, partition, offset, timestamp, ...) row lie in both coverages?"""

    def keep(row: tuple) -> bool:
        topic, partition, offset, timestamp = row[:4]
        return cov_a.covers(topic, partition, offset, timestamp) and cov_b.covers(topic, partition, offset, timestamp)

    return keep
