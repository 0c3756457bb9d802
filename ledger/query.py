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
(purpose and data-category labels) and ``recorded_at`` (the Kafka timestamp).
Only entries of status ``entry`` are read, and a repeated event_id (which
ingest never indexes) would be dropped on the way out: its rows would be adjacent.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime
from typing import Iterable, Iterator

from .errors import StoreError, ValidationError
from .taxonomy import category_label, purpose_label
from .timeparse import parse_as_of, parse_time, to_micros, to_millis

EVENT_TYPES = (
    "DataAccessed", "DataShared", "LegalDisclosure",
    "NotificationStatusChanged", "SubjectNotified", "ConsentChanged",
)
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
) -> Iterator[tuple[int, str, int, str, int, str]]:
    """``(seq, json, timestamp_ms, type, occurred_at, event_id)`` under ``key`` in a side table, newest first.

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
    if as_of is not None:
        entry_filter = " AND timestamp <= ?"
        entry_params.append(to_millis(parse_as_of(as_of)))
    try:
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
                    f"SELECT seq, json, timestamp, type, event_id FROM entries WHERE seq IN ({', '.join('?' * len(seqs))}) "
                    f"AND status = 'entry'{entry_filter}", [*seqs, *entry_params]))
            rows = [(*found[seq][:4], occurred_at, found[seq][4]) for occurred_at, seq in chunk if seq in found]
            rows.sort(key=lambda row: (row[4], row[5]), reverse=True)
            for row in rows:
                # Ingest indexes only an event_id's first entry; should two rows ever carry one
                # event_id they would share occurred_at and sit side by side in this order.
                if row[5] != previous:
                    previous = row[5]
                    yield row
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the ledger: {err}") from err


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


def iso_millis(ms: int) -> str:
    """``2026-01-02T03:04:05.123000Z`` for Kafka milliseconds (the JSON form of the ledger's times)."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}000Z"


def to_row(json_text: str, timestamp: int | None, event_type: str | None = None) -> dict:
    """The stored event with ``labels`` and ``recorded_at`` added."""
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
    return row


def _purpose_matches(purpose: str | None, wanted: str) -> bool:
    """``wanted`` matches itself and its dotted children (``marketing`` matches ``marketing.email``)."""
    return purpose is not None and (purpose == wanted or purpose.startswith(wanted + "."))


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
    for _, text, ts, etype, *_ in side_rows(source, "subjects", "subject_id", subject, chosen,
                                        since=since, until=until, as_of=as_of):
        row = to_row(text, ts, etype)
        if actor is not None and row["actor"]["id"] != actor:
            continue
        if purpose is not None and not _purpose_matches(row.get("purpose"), purpose):
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
    for _, text, ts, etype, *_ in side_rows(source, "recipients", "recipient_id", recipient, chosen,
                                        since=since, until=until, as_of=as_of):
        row = to_row(text, ts, etype)
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
    for _, text, ts, etype, *_ in side_rows(source, "actors", "actor_id", actor, chosen,
                                        since=since, until=until, as_of=as_of):
        yield to_row(text, ts, etype)


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
