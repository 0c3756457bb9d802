"""The auditors' queries: who saw a customer's data, what went to whom, what one actor did.

    with Ledger.open("ledger.db") as ledger:
        for row in who_saw(ledger, "cust-000042", since=parse_time("2026-01-01T00:00:00Z")):
            print(row["occurred_at"], row["type"], row["actor"]["id"])

Every query is a generator whose memory does not grow with the answer
(SQLite sorts only (time, seq) pairs, on disk when they are many), newest
first by event time (``occurred_at``, ties by ``event_id``, greater first, so a replayed
ledger lists them in the same order). ``since`` is inclusive, ``until``
exclusive, both on event time; ``as_of`` keeps only entries the ledger had
recorded by then (Kafka timestamp ≤ as_of), so a live and a replayed ledger
give the same answer.

A row is the event as the ledger stored it (the schema's field names plus
``type``, times as ``...Z`` strings in UTC) with two additions: ``labels``
(purpose and data-category labels) and ``recorded_at`` (the Kafka timestamp
of the event's earliest same-content copy, see ``earlier_copies``). Entries
of status ``entry`` are read, and ``contradiction`` records (a repeated
event_id with other content, ledger.repeats) too: such a row carries
``contradicts`` (the entry it contradicts) and the entry's row carries
``contradicted_by`` (a list), each reference ``{seq, topic, partition,
offset, type, recorded_at, fields}``. A byte- or content-identical repeat is
never indexed.

``as_of`` counts an event from the earliest Kafka timestamp of its
same-content copies (entry, duplicate, conflict), so the answer does not
depend on the order partitions were read in; a contradicting record counts
from its own timestamp (it is a different claim).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Iterable, Iterator

from ledger.errors import StoreError, ValidationError
from ledger.ingest.repeats import contradicted_fields
from ledger.model.events import EVENT_TYPES  # the one list (re-exported for flat_export)
from ledger.model.taxonomy import category_label, purpose_label, within
from ledger.model.times import iso_micros, iso_millis, parse_as_of, parse_time, to_micros, to_millis

#: What touched a customer's data: accesses, sharing and legal disclosures.
WHO_SAW_TYPES = ("DataAccessed", "DataShared", "LegalDisclosure")
#: Data that left the operator: to third parties and to authorities.
DISCLOSURE_TYPES = ("DataShared", "LegalDisclosure")
RECIPIENT_KINDS = (
    "PROCESSOR", "CONTROLLER", "AFFILIATE", "ADVERTISER", "PAYMENT_PROCESSOR",
    "PARTNER", "AUDITOR", "REGULATOR", "ACQUIRER", "OTHER",
)
_FETCH = 500
_IN_MAX = 5000  # variables per IN (...); SQLite allows 32766


def connection(source) -> sqlite3.Connection:
    """The sqlite3 connection of a Ledger (or the connection itself)."""
    return getattr(source, "conn", source)


def check_types(types: Iterable[str] | None, allowed: tuple[str, ...], option: str = "--type") -> tuple[str, ...]:
    """``types`` validated against ``allowed`` (all of ``allowed`` when None)."""
    if types is None:
        return allowed
    chosen = tuple(dict.fromkeys(types))
    for t in chosen:
        if t not in allowed:
            raise ValidationError(option, f"unknown or unsupported event type {t!r}; choose from {', '.join(allowed)}")
    if not chosen:
        raise ValidationError(option, "give at least one event type")
    return chosen


def _micros(value, option: str) -> int | None:
    return None if value is None else to_micros(parse_time(value, option=option))


def side_rows(
    source,
    table: str,
    key_column: str,
    key: str | None,
    types: tuple[str, ...],
    *,
    since=None,
    until=None,
    as_of=None,
    fetch: int = _FETCH,
) -> Iterator[tuple[int, str, int, str, int, str, str, dict | None]]:
    """``(seq, json, recorded_ms, type, occurred_at, event_id, status, marks)`` under ``key``, newest first.

    ``recorded_ms`` is the earliest Kafka timestamp of the event's same-content
    copies; ``status`` is ``entry`` or ``contradiction``; ``marks`` is None or
    ``{"contradicted_by": [...]}`` / ``{"contradicts": {...}}`` to add to the row.

    Two steps, so that memory stays small however many rows come out:
    SQLite sorts only ``(occurred_at, seq)`` pairs of the side table (one
    probe of ``(bucket, key)`` per bucket; with ``key=None`` the whole
    table), then the entries are fetched ``fetch`` seqs at a time and ties on
    occurred_at put in event_id order (seq differs between a live and a
    replayed ledger; event_id does not).
    """
    params: list = []
    where = [f"s.type IN ({', '.join('?' * len(types))})"]
    params += types
    conn = connection(source)
    if key is not None:
        # Every bucket from the newest down, counted in the same statement (so in the same snapshot).
        buckets = (f"WITH RECURSIVE b(n) AS (SELECT max(bucket) FROM {table} "
                   "UNION ALL SELECT n - 1 FROM b WHERE n > 0) SELECT n FROM b")
        where[:0] = [f"s.bucket IN ({buckets})", f"s.{key_column} = ?"]
        params.insert(0, key)
    since_us, until_us = _micros(since, "--since"), _micros(until, "--until")
    if since_us is not None:
        where.append("s.occurred_at >= ?")
        params.append(since_us)
    if until_us is not None:
        where.append("s.occurred_at < ?")
        params.append(until_us)
    entry_filter, entry_params = "", []
    as_of_ms = None if as_of is None else to_millis(parse_as_of(as_of))
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
            found = {}
            for i in range(0, len(chunk), _IN_MAX):  # a long run of equal times makes a long chunk
                seqs = [seq for _, seq in chunk[i : i + _IN_MAX]]
                found.update((row[0], row) for row in conn.execute(
                    f"SELECT seq, json, timestamp, type, event_id, status FROM entries WHERE seq IN "
                    f"({', '.join('?' * len(seqs))}) AND status IN ('entry', 'contradiction'){entry_filter}",
                    [*seqs, *entry_params]))
            rows = [(*found[seq][:4], occurred_at, *found[seq][4:]) for occurred_at, seq in chunk if seq in found]
            # An entry before the records contradicting it; the JSON text orders equal-time contradictions.
            rows.sort(key=lambda row: (row[4], row[5], row[6] == "entry", row[1]), reverse=True)
            earliest, marks = repeats.lookup(rows)
            for row in rows:
                if row[6] == "entry":
                    # Ingest indexes only an event_id's first entry; should two rows ever carry one
                    # event_id they would share occurred_at and sit side by side in this order.
                    if row[5] == previous:
                        continue
                    previous = row[5]
                seq = row[0]
                yield (seq, row[1], earliest.get(seq, row[2]), *row[3:7], marks.get(seq))
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

    def lookup(self, rows: list[tuple]) -> tuple[dict[int, int], dict[int, dict]]:
        earliest: dict[int, int] = {}
        marks: dict[int, dict] = {}
        entries = [row[0] for row in rows if row[6] == "entry"]
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
                    marks.setdefault(first_seq, {"contradicted_by": []})["contradicted_by"].append(_ref(*ref))
        contradictions = [row[0] for row in rows if row[6] == "contradiction"]
        for chunk in _chunks(contradictions):
            for seq, *ref in self.conn.execute(
                f"SELECT c.seq, {_REF_COLUMNS}, (SELECT reason FROM entries WHERE seq = c.seq) FROM conflicts AS c "
                f"JOIN entries AS e ON e.seq = c.first_seq WHERE c.seq IN ({_marks(chunk)})", chunk):
                marks[seq] = {"contradicts": _ref(*ref)}
        return earliest, marks


_REF_COLUMNS = "e.seq, e.topic, e.partition, e.offset, e.type, e.timestamp"


def _ref(seq, topic, partition, offset, etype, timestamp, reason) -> dict:
    """A reference to another record of the same event_id; ``fields``: what the contradiction changes."""
    return {"seq": seq, "topic": topic, "partition": partition, "offset": offset, "type": etype,
            "recorded_at": None if timestamp is None else iso_millis(timestamp), "fields": contradicted_fields(reason)}


def _chunks(values: list) -> Iterator[list]:
    for i in range(0, len(values), _IN_MAX):
        yield values[i : i + _IN_MAX]


def _marks(values: list) -> str:
    return ", ".join("?" * len(values))


def _tie_complete_chunks(cursor, size: int) -> Iterator[list[tuple[int, int]]]:
    """``(occurred_at, seq)`` rows in lists of about ``size``, never splitting equal occurred_at."""
    chunk: list[tuple[int, int]] = []
    while rows := cursor.fetchmany(size):
        for row in rows:
            if len(chunk) >= size and row[0] != chunk[-1][0]:
                yield chunk
                chunk = []
            chunk.append(row)
    if chunk:
        yield chunk


_decode = json.JSONDecoder().raw_decode  # the stored text is compact JSON: skip loads' whitespace handling




def to_row(json_text: str, timestamp: int | None, event_type: str | None = None, marks: dict | None = None) -> dict:
    """The stored event with ``labels``, ``recorded_at`` and any contradiction ``marks`` added."""
    row = _decode(json_text)[0]
    if event_type and "type" not in row:
        row["type"] = event_type
    labels = {}
    if "purpose" in row:
        labels["purpose"] = purpose_label(row["purpose"])
    if "data_categories" in row:
        labels["data_categories"] = [category_label(c) for c in row["data_categories"]]
    row["labels"] = labels
    row["recorded_at"] = iso_millis(timestamp) if timestamp is not None else None
    if marks:
        row.update(marks)
    return row


def who_saw(
    source,
    subject: str,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    types: Iterable[str] | None = None,
    actor: str | None = None,
    purpose: str | None = None,
    as_of: datetime | str | None = None,
) -> Iterator[dict]:
    """Every access, sharing and legal disclosure that touched ``subject``, newest first.

    ``types`` narrows to some of :data:`WHO_SAW_TYPES`; ``actor`` is an actor
    id; ``purpose`` matches the code and its dotted children.
    """
    chosen = check_types(types, WHO_SAW_TYPES)
    for _, text, ts, etype, *_, marks in side_rows(source, "subjects", "subject_id", subject, chosen,
                                                   since=since, until=until, as_of=as_of):
        row = to_row(text, ts, etype, marks)
        if actor is not None and row["actor"]["id"] != actor:
            continue
        if purpose is not None and not within(row.get("purpose"), purpose):
            continue
        yield row


def disclosures(
    source,
    *,
    recipient: str | None = None,
    kind: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    types: Iterable[str] | None = None,
    as_of: datetime | str | None = None,
) -> Iterator[dict]:
    """Data that went to third parties and authorities, newest first, each with ``subject_count``.

    ``recipient`` is a recipient id; ``kind`` a recipient kind (``REGULATOR``...).
    """
    chosen = check_types(types, DISCLOSURE_TYPES)
    if kind is not None and kind not in RECIPIENT_KINDS:
        raise ValidationError("--kind", f"unknown recipient kind {kind!r}; choose from {', '.join(RECIPIENT_KINDS)}")
    for _, text, ts, etype, *_, marks in side_rows(source, "recipients", "recipient_id", recipient, chosen,
                                                   since=since, until=until, as_of=as_of):
        row = to_row(text, ts, etype, marks)
        if kind is not None and row["recipient"]["kind"] != kind:
            continue
        row["subject_count"] = len(row["subject_ids"])
        yield row


def accesses(
    source,
    actor: str,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    types: Iterable[str] | None = None,
    as_of: datetime | str | None = None,
) -> Iterator[dict]:
    """Everything one actor did, newest first: denied and break-glass accesses included."""
    chosen = check_types(types, EVENT_TYPES)
    for _, text, ts, etype, *_, marks in side_rows(source, "actors", "actor_id", actor, chosen,
                                                   since=since, until=until, as_of=as_of):
        yield to_row(text, ts, etype, marks)


def contradictions(source, *, as_of: datetime | str | None = None) -> Iterator[dict]:
    """Every record that contradicts an entry (same event_id, other content), paired with that entry.

    One row per contradicting record: ``event_id``, ``fields`` (what differs),
    ``entry`` and ``contradiction``, each ``{seq, topic, partition, offset,
    type, occurred_at, recorded_at}``. Newest entry first by event time, then
    event_id, then the contradicting record's position. ``as_of`` keeps pairs
    whose both records were recorded by then (the entry: by its earliest
    same-content copy).
    """
    sql = (f"SELECT c.event_id, e.reason, {_PAIR_COLUMNS.format(t='f')}, {_PAIR_COLUMNS.format(t='e')} "
           "FROM conflicts AS c JOIN entries AS e ON e.seq = c.seq JOIN entries AS f ON f.seq = c.first_seq "
           "WHERE e.status = 'contradiction'")
    params: list = []
    if as_of is not None:
        ms = to_millis(parse_time(as_of, option="--as-of"))
        sql += (" AND e.timestamp <= ? AND (f.timestamp <= ? OR f.seq IN "
                "(SELECT entry_seq FROM earlier_copies WHERE timestamp <= ?))")
        params += [ms, ms, ms]
    sql += " ORDER BY f.occurred_at DESC, c.event_id, e.topic, e.partition, e.offset"
    try:
        cur = connection(source).execute(sql, params)
        while rows := cur.fetchmany(_FETCH):
            for event_id, reason, *both in rows:
                yield {"event_id": event_id, "fields": contradicted_fields(reason),
                       "entry": _pair_side(both[:7]), "contradiction": _pair_side(both[7:])}
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the ledger: {err}") from err


_PAIR_COLUMNS = "{t}.seq, {t}.topic, {t}.partition, {t}.offset, {t}.type, {t}.occurred_at, {t}.timestamp"


def _pair_side(values) -> dict:
    seq, topic, partition, offset, etype, occurred_at, timestamp = values
    return {"seq": seq, "topic": topic, "partition": partition, "offset": offset, "type": etype,
            "occurred_at": None if occurred_at is None else iso_micros(occurred_at),
            "recorded_at": None if timestamp is None else iso_millis(timestamp)}




def summarize_disclosures(rows: Iterable[dict]) -> list[dict]:
    """Per recipient: events, distinct subjects, first and last time, types; most events first.

    Holds one set of subject ids per recipient (the distinct count needs it).
    """
    groups: dict[str, dict] = {}
    for row in rows:
        rec = row["recipient"]
        g = groups.get(rec["id"])
        if g is None:
            g = groups[rec["id"]] = {
                "recipient": rec, "events": 0, "subjects": set(), "first": row["occurred_at"],
                "last": row["occurred_at"], "types": set(),
            }
        g["events"] += 1
        g["subjects"].update(row["subject_ids"])
        g["first"] = min(g["first"], row["occurred_at"])
        g["last"] = max(g["last"], row["occurred_at"])
        g["types"].add(row["type"])
    out = []
    for g in groups.values():
        out.append({
            "recipient": g["recipient"], "events": g["events"], "subject_count": len(g["subjects"]),
            "first": g["first"], "last": g["last"], "types": sorted(g["types"]),
        })
    return sorted(out, key=lambda g: (-g["events"], g["recipient"]["id"]))
