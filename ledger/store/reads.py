"""The store's read interface: every query the audit stage asks of the ledger's tables.

The auditors' queries (audit/query.py), obligations, reports, verify and diff
ask the store for rows through these functions and never write SQL or touch a
connection themselves, so a second backend (PostgreSQL) implements this module
and the Ledger's methods and passes tests/unit/test_store_contract.py.

Each function takes a :class:`~ledger.store.Ledger` (``source``; a bare
sqlite3 connection is accepted too, for the diff of two raw files), returns
plain values or named rows, and turns driver errors into ``StoreError``.
Times are the store's own units: ``occurred_at`` in µs, Kafka timestamps in
ms; parsing the user's time options is the caller's job.

    side_rows(ledger, "subjects", "cust-1", types, since_us=..., as_of_ms=...)   # who saw, disclosures, accesses
    contradiction_pairs(ledger, as_of_ms)        # contradicting records with their entries
    notice_entries(ledger, types, as_of_ms)      # obligations' notice cases
    time_flagged(ledger, event_ids)              # report anomalies
    reprocess_log / earlier_copies / conflict_rows / table_count / reprocess_mismatches / offsets_rows  (verify)
    (iter_side_rows in read.py and Ledger.first_details / mark_reprocessed give and take named rows too)
    open_raw / raw_record_rows / read_coverage   (diff)
    newest_timestamp(ledger)                     (readiness)
    snapshot(ledger)                             one read transaction over several of the above
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from ..errors import StoreError
from .coverage import read_coverage as _read_coverage
from .schema import SIDE_TABLES

_FETCH = 500
_IN_MAX = 5000  # variables per IN (...); SQLite allows 32766
_KEY_COLUMNS = dict(SIDE_TABLES)


def _conn(source) -> sqlite3.Connection:
    """The sqlite3 connection of a Ledger (or the connection itself): the one place that reaches for it."""
    return getattr(source, "conn", source)


class Ref(NamedTuple):
    """Another record of the same event_id (a contradiction or the entry it contradicts)."""

    seq: int
    topic: str
    partition: int
    offset: int
    type: str | None
    timestamp: int | None  # Kafka ms
    reason: str | None  # the contradiction's reason: what it changes


class SideRow(NamedTuple):
    """One indexed entry under a side-table key, as the queries read it."""

    seq: int
    json: str
    recorded_ms: int | None  # earliest Kafka timestamp of the event's same-content copies
    type: str
    occurred_at: int  # µs
    event_id: str
    status: str  # entry | contradiction
    marks: dict | None  # None, {"contradicted_by": [Ref, ...]} or {"contradicts": Ref}


class PairSide(NamedTuple):
    """One record of a contradiction pair."""

    seq: int
    topic: str
    partition: int
    offset: int
    type: str | None
    occurred_at: int | None
    timestamp: int | None


class ContradictionPair(NamedTuple):
    event_id: str
    reason: str | None
    entry: PairSide
    contradiction: PairSide


class NoticeEntry(NamedTuple):
    """A notice event (LegalDisclosure and its notice events) and where it was recorded."""

    json: str
    timestamp: int
    topic: str
    partition: int
    offset: int


class OffsetsRow(NamedTuple):
    topic: str
    partition: int
    next_offset: int
    last_seq: int
    chain_hash: bytes


class Reprocessed(NamedTuple):
    """A ``reprocess_log`` row: when ``ledger reprocess`` moved an entry and to what."""

    after_seq: int  # the ledger's last seq then: the dedupe order verify replays
    id: int  # the log row's id: moves of one run in order
    new_status: str


class EarlierCopy(NamedTuple):
    """An ``earlier_copies`` row: a same-content repeat recorded before its entry."""

    entry_seq: int
    timestamp: int  # the repeat's Kafka ms


class ConflictRow(NamedTuple):
    """A ``conflicts`` row: a conflict or contradiction and the entry holding its event_id."""

    event_id: str
    first_seq: int


class ReprocessMismatch(NamedTuple):
    """A ``reprocess_log`` row that matches no record entry of the logged status."""

    seq: int
    after_seq: int


class RawRecord(NamedTuple):
    """What diff compares: a record's evidence columns and its readable form."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    event_id: str | None
    leaf_hash: bytes
    key: bytes | None
    headers: str | None
    value: bytes | None
    json: str | None


def _chunks(values: list) -> Iterator[list]:
    for i in range(0, len(values), _IN_MAX):
        yield values[i : i + _IN_MAX]


def _marks(values: list) -> str:
    return ", ".join("?" * len(values))


# -- a read snapshot -------------------------------------------------------------------------
@contextmanager
def snapshot(source) -> Iterator[None]:
    """One read transaction over everything read inside (Ledger.snapshot; nothing for a bare connection)."""
    if hasattr(source, "snapshot"):
        with source.snapshot():
            yield
    else:
        yield


@contextmanager
def lenient_text(source) -> Iterator[None]:
    """Text columns decoded with ``surrogateescape``: tampered text that is not UTF-8 reads (verify reports it)."""
    conn = _conn(source)
    saved, conn.text_factory = conn.text_factory, _lenient
    try:
        yield
    finally:
        conn.text_factory = saved


def _lenient(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# -- the auditors' queries ---------------------------------------------------------------------
def side_rows(
    source,
    table: str,
    key: str | None,
    types: tuple[str, ...],
    *,
    since_us: int | None = None,
    until_us: int | None = None,
    as_of_ms: int | None = None,
    fetch: int = _FETCH,
) -> Iterator[SideRow]:
    """Entries indexed under ``key`` in ``table`` (every key when None), newest first by occurred_at.

    ``since_us`` inclusive, ``until_us`` exclusive (event time, µs); ``as_of_ms`` keeps entries
    recorded by then (the entry, or a same-content copy recorded before it). Ties on occurred_at
    are in event_id order, greater first (seq differs between a live and a replayed ledger).

    Two steps, so that memory stays small however many rows come out:
    SQLite sorts only ``(occurred_at, seq)`` pairs of the side table (one
    probe of ``(bucket, key)`` per bucket; with ``key=None`` the whole
    table), then the entries are fetched ``fetch`` seqs at a time.
    """
    key_column = _KEY_COLUMNS[table]
    params: list = []
    where = [f"s.type IN ({', '.join('?' * len(types))})"]
    params += types
    conn = _conn(source)
    if key is not None:
        # Every bucket from the newest down, counted in the same statement (so in the same snapshot).
        buckets = (f"WITH RECURSIVE b(n) AS (SELECT max(bucket) FROM {table} "
                   "UNION ALL SELECT n - 1 FROM b WHERE n > 0) SELECT n FROM b")
        where[:0] = [f"s.bucket IN ({buckets})", f"s.{key_column} = ?"]
        params.insert(0, key)
    if since_us is not None:
        where.append("s.occurred_at >= ?")
        params.append(since_us)
    if until_us is not None:
        where.append("s.occurred_at < ?")
        params.append(until_us)
    entry_filter, entry_params = "", []
    try:
        repeats = _Repeats(conn, as_of_ms)
        if as_of_ms is not None:
            # Recorded by T: the entry itself, or a same-content copy recorded before it (a handful of rows).
            entry_filter = " AND (timestamp <= ?"
            entry_filter += " OR seq IN (SELECT entry_seq FROM earlier_copies WHERE timestamp <= ?))" if repeats.copies else ")"
            entry_params += [as_of_ms, as_of_ms] if repeats.copies else [as_of_ms]
        order = conn.execute(
            f"SELECT s.occurred_at, s.seq FROM {table} AS s WHERE {' AND '.join(where)} ORDER BY s.occurred_at DESC",
            params,
        )
        previous = None
        for chunk in _tie_complete_chunks(order, fetch):
            found = {}  # seq -> (json, timestamp, type, event_id, status)
            for i in range(0, len(chunk), _IN_MAX):  # a long run of equal times makes a long chunk
                seqs = [seq for _, seq in chunk[i : i + _IN_MAX]]
                found.update((seq, rest) for seq, *rest in conn.execute(
                    f"SELECT seq, json, timestamp, type, event_id, status FROM entries WHERE seq IN "
                    f"({', '.join('?' * len(seqs))}) AND status IN ('entry', 'contradiction'){entry_filter}",
                    [*seqs, *entry_params]))
            rows = []
            for occurred_at, seq in chunk:  # occurred_at as the side table files it
                if seq in found:
                    text, timestamp, etype, event_id, status = found[seq]
                    rows.append(SideRow(seq, text, timestamp, etype, occurred_at, event_id, status, None))
            # An entry before the records contradicting it; the JSON text orders equal-time contradictions.
            rows.sort(key=lambda row: (row.occurred_at, row.event_id, row.status == "entry", row.json), reverse=True)
            earliest, marks = repeats.lookup(rows)
            for row in rows:
                if row.status == "entry":
                    # Ingest indexes only an event_id's first entry; should two rows ever carry one
                    # event_id they would share occurred_at and sit side by side in this order.
                    if row.event_id == previous:
                        continue
                    previous = row.event_id
                if row.seq in earliest or row.seq in marks:  # rare: a repeat recorded earlier, a contradiction
                    row = row._replace(recorded_ms=earliest.get(row.seq, row.recorded_ms),
                                       marks=marks.get(row.seq))
                yield row
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the ledger: {err}") from err


class _Repeats:
    """Per chunk of rows: earliest recorded times (earlier_copies) and contradiction marks (conflicts).

    Both tables are small (repeats are rare); a ledger without rows in them costs one probe per query.
    """

    def __init__(self, conn: sqlite3.Connection, as_of_ms: int | None):
        self.conn, self.as_of_ms = conn, as_of_ms
        self.copies, self.conflicts = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM earlier_copies), EXISTS (SELECT 1 FROM conflicts)").fetchone()

    def lookup(self, rows: list[SideRow]) -> tuple[dict[int, int], dict[int, dict]]:
        earliest: dict[int, int] = {}
        marks: dict[int, dict] = {}
        entries = [row.seq for row in rows if row.status == "entry"]
        if self.copies and entries:
            for chunk in _chunks(entries):
                earliest.update(self.conn.execute(
                    f"SELECT entry_seq, min(timestamp) FROM earlier_copies WHERE entry_seq IN ({_marks(chunk)}) "
                    "GROUP BY entry_seq", chunk))
        if not self.conflicts:
            return earliest, marks
        for chunk in _chunks(entries):
            for first_seq, *ref in self.conn.execute(
                f"SELECT c.first_seq, {_REF_COLUMNS}, e.reason FROM conflicts AS c JOIN entries AS e ON e.seq = c.seq "
                f"WHERE c.first_seq IN ({_marks(chunk)}) AND e.status = 'contradiction' "
                "ORDER BY e.topic, e.partition, e.offset", chunk):
                if self.as_of_ms is None or ref[5] <= self.as_of_ms:
                    marks.setdefault(first_seq, {"contradicted_by": []})["contradicted_by"].append(Ref(*ref))
        contradictions = [row.seq for row in rows if row.status == "contradiction"]
        for chunk in _chunks(contradictions):
            for seq, *ref in self.conn.execute(
                f"SELECT c.seq, {_REF_COLUMNS}, (SELECT reason FROM entries WHERE seq = c.seq) FROM conflicts AS c "
                f"JOIN entries AS e ON e.seq = c.first_seq WHERE c.seq IN ({_marks(chunk)})", chunk):
                marks[seq] = {"contradicts": Ref(*ref)}
        return earliest, marks


_REF_COLUMNS = "e.seq, e.topic, e.partition, e.offset, e.type, e.timestamp"


def _tie_complete_chunks(cursor, size: int) -> Iterator[list[tuple[int, int]]]:
    """``(occurred_at, seq)`` rows in lists of about ``size``, never splitting equal occurred_at."""
    chunk: list[tuple[int, int]] = []
    last_time = None
    while rows := cursor.fetchmany(size):
        for row in rows:
            occurred_at, _ = row
            if len(chunk) >= size and occurred_at != last_time:
                yield chunk
                chunk = []
            chunk.append(row)
            last_time = occurred_at
    if chunk:
        yield chunk


_PAIR_COLUMNS = "{t}.seq, {t}.topic, {t}.partition, {t}.offset, {t}.type, {t}.occurred_at, {t}.timestamp"


def contradiction_pairs(source, as_of_ms: int | None = None) -> Iterator[ContradictionPair]:
    """Every contradicting record with the entry it contradicts.

    Newest entry first by event time, then event_id, then the contradicting
    record's position. ``as_of_ms`` keeps pairs whose both records were
    recorded by then (the entry: by its earliest same-content copy).
    """
    sql = (f"SELECT c.event_id, e.reason, {_PAIR_COLUMNS.format(t='f')}, {_PAIR_COLUMNS.format(t='e')} "
           "FROM conflicts AS c JOIN entries AS e ON e.seq = c.seq JOIN entries AS f ON f.seq = c.first_seq "
           "WHERE e.status = 'contradiction'")
    params: list = []
    if as_of_ms is not None:
        sql += (" AND e.timestamp <= ? AND (f.timestamp <= ? OR f.seq IN "
                "(SELECT entry_seq FROM earlier_copies WHERE timestamp <= ?))")
        params += [as_of_ms] * 3
    sql += " ORDER BY f.occurred_at DESC, c.event_id, e.topic, e.partition, e.offset"
    try:
        cur = _conn(source).execute(sql, params)
        while rows := cur.fetchmany(_FETCH):
            for event_id, reason, *both in rows:
                yield ContradictionPair(event_id, reason, PairSide(*both[:7]), PairSide(*both[7:]))
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the ledger: {err}") from err


def notice_entries(source, types: tuple[str, ...], as_of_ms: int | None = None, *,
                   disclosure_ids: Iterable[str] | None = None) -> Iterator[NoticeEntry]:
    """First entries (status ``entry``) of the given event types recorded by ``as_of_ms`` (all when None).

    Reads the actors side table (one row per event), so no scan of the entries themselves.
    ``disclosure_ids`` keeps only the cases of those disclosures: a LegalDisclosure by its
    ``event_id`` (looked up in ``event_ids``), any other type by its ``disclosure_event_id``. A
    customer's report needs a handful of cases out of all the ledger holds: reading and decoding
    every disclosure took 2.5 s of a report on a ledger of 50,000 of them.
    """
    recorded, recorded_params = "", []
    if as_of_ms is not None:
        # Recorded by then: the entry, or a same-content copy recorded before it (ledger.repeats).
        recorded = " AND (e.timestamp <= ? OR e.seq IN (SELECT entry_seq FROM earlier_copies WHERE timestamp <= ?))"
        recorded_params = [as_of_ms] * 2
    columns = "e.json, e.timestamp, e.topic, e.partition, e.offset"
    by_actor_row = (f"SELECT {columns} FROM actors AS a JOIN entries AS e ON e.seq = a.seq "
                    "JOIN event_ids AS i ON i.event_id = e.event_id AND i.seq = e.seq WHERE e.status = 'entry' ")
    if disclosure_ids is None:
        parts = [(by_actor_row + f"AND a.type IN ({', '.join('?' * len(types))}){recorded}",
                  [*types, *recorded_params])]
    else:
        wanted = json.dumps(sorted(set(disclosure_ids)))  # one parameter however many ids: json_each
        notices = [t for t in types if t != "LegalDisclosure"]
        parts = []
        if "LegalDisclosure" in types:
            disclosures = (f"SELECT {columns} FROM event_ids AS i JOIN entries AS e ON e.seq = i.seq "
                           "WHERE i.event_id IN (SELECT value FROM json_each(?)) AND e.status = 'entry' "
                           f"AND e.type = 'LegalDisclosure'{recorded}")
            parts.append((disclosures, [wanted, *recorded_params]))
        if notices:
            naming = (by_actor_row + f"AND a.type IN ({', '.join('?' * len(notices))}) AND "
                      "json_extract(e.json, '$.disclosure_event_id') IN (SELECT value FROM json_each(?))"
                      f"{recorded}")
            parts.append((naming, [*notices, wanted, *recorded_params]))
    try:
        conn = _conn(source)
        for sql, params in parts:
            cur = conn.execute(sql, params)
            while rows := cur.fetchmany(1000):
                for row in rows:
                    yield NoticeEntry(*row)
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the ledger: {err}") from err


def time_flagged(source, event_ids: list[str]) -> list[tuple]:
    """``(event_id, type, reason, topic, partition, offset)`` of first entries whose reason is ``time: ...``."""
    found = []
    try:
        conn = _conn(source)
        for i in range(0, len(event_ids), 900):
            chunk = event_ids[i : i + 900]
            found += conn.execute(
                "SELECT e.event_id, e.type, e.reason, e.topic, e.partition, e.offset FROM event_ids AS i "
                "JOIN entries AS e ON e.seq = i.seq "
                f"WHERE i.event_id IN ({', '.join('?' * len(chunk))}) AND e.reason LIKE 'time: %'", chunk,
            ).fetchall()
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the ledger: {err}") from err
    return found


def newest_timestamp(source) -> int | None:
    """Kafka timestamp (ms) of the last entry appended, or None for an empty ledger."""
    row = _conn(source).execute("SELECT timestamp FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return None
    (timestamp,) = row
    return timestamp


# -- what verify re-derives and compares ---------------------------------------------------------
def reprocess_log(source) -> dict[int, Reprocessed]:
    """``{seq: Reprocessed}`` of every ``ledger reprocess`` move."""
    return {seq: Reprocessed(after, rid, status) for rid, seq, after, status in _conn(source).execute(
        "SELECT id, seq, after_seq, new_status FROM reprocess_log")}


def earlier_copies(source) -> dict[int, EarlierCopy]:
    """``{repeat seq: EarlierCopy}``: repeats recorded before their entry (a few rows)."""
    return {seq: EarlierCopy(entry_seq, ts) for entry_seq, seq, ts in _conn(source).execute(
        "SELECT entry_seq, seq, timestamp FROM earlier_copies")}


def conflict_rows(source, seqs: Iterable[int]) -> dict[int, ConflictRow]:
    """``{seq: ConflictRow}`` of the conflicts rows of ``seqs``."""
    wanted = list(seqs)
    found: dict[int, ConflictRow] = {}
    for chunk in _chunks(wanted):
        found.update((seq, ConflictRow(event_id, first_seq)) for seq, event_id, first_seq in _conn(source).execute(
            f"SELECT seq, event_id, first_seq FROM conflicts WHERE seq IN ({_marks(chunk)})", chunk))
    return found


_COUNTED = frozenset({"entries", "event_ids", "conflicts", "earlier_copies", "offsets", "reprocess_log",
                      *_KEY_COLUMNS})


def table_count(source, table: str) -> int:
    """Rows in one of the ledger's tables."""
    if table not in _COUNTED:
        raise StoreError(f"no ledger table {table!r}")
    return _conn(source).execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def reprocess_mismatches(source) -> list[ReprocessMismatch]:
    """reprocess_log rows that match no record entry of the logged status."""
    return [ReprocessMismatch(*row) for row in _conn(source).execute(
        "SELECT r.seq, r.after_seq FROM reprocess_log r LEFT JOIN entries e ON e.seq = r.seq "
        "WHERE e.seq IS NULL OR e.kind != 'record' OR e.status != r.new_status OR r.after_seq < r.seq")]


def offsets_rows(source) -> Iterator[OffsetsRow]:
    """Every offsets row (one per partition per batch), by topic, partition, next_offset."""
    for row in _conn(source).execute(
        "SELECT topic, partition, next_offset, last_seq, chain_hash FROM offsets "
        "ORDER BY topic, partition, next_offset"
    ):
        yield OffsetsRow(*row)


# -- diff: two raw files ----------------------------------------------------------------------
def open_raw(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to a ledger file for diff (no format check: diff compares any two)."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no ledger file at {path}")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("SELECT 1 FROM entries LIMIT 1")
    except sqlite3.Error as err:
        raise StoreError(f"{path} is not a readable ledger: {err}") from err
    return conn


def raw_record_rows(source) -> Iterator[RawRecord]:
    """Every record entry (no gaps) in (topic, partition, offset) order, key and value as bytes."""
    cursor = _conn(source).execute(
        "SELECT topic, partition, offset, timestamp, event_id, leaf_hash, CAST(key AS BLOB), headers, "
        "CAST(value AS BLOB), json FROM entries "
        "WHERE kind = 'record' ORDER BY topic, partition, offset"
    )
    while chunk := cursor.fetchmany(5000):
        for row in chunk:
            yield RawRecord(*row)


def read_coverage(source):
    """The ledger's coverage (store.coverage.read_coverage) of a Ledger or raw connection."""
    return _read_coverage(_conn(source))
