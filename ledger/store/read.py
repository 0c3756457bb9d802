"""Reading the ledger file row by row, in append order (for verify, reprocess, queries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple

from ledger.wire.record import Record

from .schema import ENTRY_COLUMNS, SIDE_TABLES, headers_from_json

_FETCH = 2000


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of ``entries``; see schema.py for the meaning of each column."""

    seq: int
    topic: str
    partition: int
    offset: int
    kind: str
    gap_end: int | None
    timestamp: int | None
    key: bytes | None
    headers: str | None
    value: bytes | None
    fingerprint: bytes | None
    status: str
    reason: str | None
    event_id: str | None
    type: str | None
    occurred_at: int | None
    json: str | None
    leaf_hash: bytes
    chain_hash: bytes

    def record(self) -> Record:
        """The Kafka record this entry holds (meaningless for a gap)."""
        return Record(
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            timestamp=self.timestamp,
            key=self.key,
            value=self.value,
            headers=headers_from_json(self.headers),
        )

    def where(self) -> str:
        """Human-readable position, e.g. ``ledger.access[2]@41 (seq 9, event_id ...)``."""
        event = f", event_id {self.event_id}" if self.event_id else ""
        return f"{self.topic}[{self.partition}]@{self.offset} (seq {self.seq}{event})"


def iter_entries(source, *, start_seq: int = 1, where: str = "", params: tuple = ()) -> Iterator[Entry]:
    """Entries with ``seq >= start_seq`` (and an optional SQL condition, for this package only), in seq order.

    ``source`` is a Ledger or an sqlite3 connection. Callers outside the store use the
    named selections (:func:`iter_rejected_records`) rather than ``where``.
    """
    cur = getattr(source, "conn", source).execute(
        f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries WHERE seq >= ? {'AND ' + where if where else ''} "
        "ORDER BY seq",
        (start_seq, *params),
    )
    while rows := cur.fetchmany(_FETCH):
        for row in rows:
            yield Entry(*row)


def iter_rejected_records(source) -> Iterator[Entry]:
    """Record entries of status ``rejected`` (what ``ledger reprocess`` retries), in seq order."""
    return iter_entries(source, where="status = 'rejected' AND kind = 'record'")


class IndexRow(NamedTuple):
    """One stored row of a side table (subjects, actors, recipients, categories).

    Read back as stored: a tampered file may hold any type in any column, which verify reports.
    """

    key: object  # the table's key column: subject_id, actor_id, recipient_id or category
    seq: object  # the entry's seq
    occurred_at: object  # µs
    type: object
    bucket: object  # seq >> bucket_bits when filed right (schema.py)

    def without_bucket(self) -> tuple:
        """``(key, seq, occurred_at, type)``: what ``index.side_rows`` derives from the entry (a plain tuple)."""
        return (self.key, self.seq, self.occurred_at, self.type)


def iter_side_rows(source, table: str) -> Iterator[IndexRow]:
    """Every row of a side table, ordered by bucket, seq, key.

    That is seq order for every row filed under its right bucket; SQLite only
    sorts within a bucket, so the memory this takes does not grow with the file.
    """
    key = dict(SIDE_TABLES)[table]
    cur = getattr(source, "conn", source).execute(
        f"SELECT {key}, seq, occurred_at, type, bucket FROM {table} ORDER BY bucket, seq, {key}")
    while rows := cur.fetchmany(_FETCH):
        yield from map(IndexRow._make, rows)
