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
from typing import Iterator, NamedTuple

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


class _Compared(NamedTuple):
    """One record as diff compares it."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    event_id: str | None
    leaf: bytes | None  # the recomputed leaf hash, or None if the stored one does not match the row's evidence
    json: str | None

    @property
    def position(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)


def _rows(conn) -> Iterator[_Compared]:
    for r in reads.raw_record_rows(conn):
        record = Record(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, headers_from_json(r.headers))
        leaf = leaf_hash(record)
        yield _Compared(r.topic, r.partition, r.offset, r.timestamp, r.event_id, leaf if leaf == r.leaf_hash else None,
                        r.json)


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
            key_a = ra.position if ra is not None else None
            key_b = rb.position if rb is not None else None
            if rb is None or (ra is not None and key_a < key_b):
                if keep(ra):
                    result.differences.append(Difference("only_in_a", *ra.position, ra.event_id, None))
                ra = next(rows_a, None)
            elif ra is None or key_b < key_a:
                if keep(rb):
                    result.differences.append(Difference("only_in_b", *rb.position, None, rb.event_id))
                rb = next(rows_b, None)
            else:
                if keep(ra) or keep(rb):
                    result.compared += 1
                    if ra.leaf is None or ra.leaf != rb.leaf:
                        result.differences.append(Difference("leaf_differs", *ra.position, ra.event_id, rb.event_id))
                    elif ra.json != rb.json:
                        result.differences.append(Difference("json_differs", *ra.position, ra.event_id, rb.event_id))
                ra, rb = next(rows_a, None), next(rows_b, None)
        return result
    finally:
        conn_a.close()
        conn_b.close()


def _common_filter(cov_a: Coverage, cov_b: Coverage):
    """A predicate: does this record lie in both coverages?"""

    def keep(row: _Compared) -> bool:
        where = (row.topic, row.partition, row.offset, row.timestamp)
        return cov_a.covers(*where) and cov_b.covers(*where)

    return keep
