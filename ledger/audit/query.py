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
import re
from datetime import datetime
from typing import Iterable, Iterator

from ledger.errors import ValidationError
from ledger.ingest.repeats import contradicted_fields
from ledger.model.events import EVENT_TYPES  # the one list (re-exported for flat_export)
from ledger.model.taxonomy import category_label, purpose_label, within
from ledger.model.times import iso_micros, iso_millis, parse_as_of, parse_time, to_micros, to_millis
from ledger.store import reads

#: What touched a customer's data: accesses, sharing and legal disclosures.
WHO_SAW_TYPES = ("DataAccessed", "DataShared", "LegalDisclosure")
#: Data that left the operator: to third parties and to authorities.
DISCLOSURE_TYPES = ("DataShared", "LegalDisclosure")
RECIPIENT_KINDS = (
    "PROCESSOR", "CONTROLLER", "AFFILIATE", "ADVERTISER", "PAYMENT_PROCESSOR",
    "PARTNER", "AUDITOR", "REGULATOR", "ACQUIRER", "OTHER",
)
_FETCH = 500


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
) -> Iterator[reads.SideRow]:
    """The store's rows (``reads.SideRow``) under ``key``, newest first.

    ``recorded_ms`` is the earliest Kafka timestamp of the event's same-content
    copies; ``status`` is ``entry`` or ``contradiction``; ``marks`` is None or
    ``{"contradicted_by": [...]}`` / ``{"contradicts": {...}}`` to add to the row.
    The store reads the rows (store.reads.side_rows); this parses the time
    options and turns the store's references into the rows' JSON form.
    ``key_column`` names ``table``'s key (kept for callers; the store knows it).
    """
    since_us, until_us = _micros(since, "--since"), _micros(until, "--until")
    as_of_ms = None if as_of is None else to_millis(parse_as_of(as_of))
    for row in reads.side_rows(source, table, key, types, since_us=since_us, until_us=until_us,
                               as_of_ms=as_of_ms, fetch=fetch):
        marks = row.marks
        if marks is None:
            yield row  # nearly every row: no copy
            continue
        marks = ({"contradicts": _ref(marks["contradicts"])} if "contradicts" in marks
                 else {"contradicted_by": [_ref(r) for r in marks["contradicted_by"]]})
        yield row._replace(marks=marks)


def _ref(ref: reads.Ref) -> dict:
    """A reference to another record of the same event_id; ``fields``: what the contradiction changes."""
    return {"seq": ref.seq, "topic": ref.topic, "partition": ref.partition, "offset": ref.offset, "type": ref.type,
            "recorded_at": None if ref.timestamp is None else iso_millis(ref.timestamp),
            "fields": contradicted_fields(ref.reason)}


_std_decode = json.JSONDecoder().raw_decode  # the stored text is compact JSON: skip loads' whitespace handling
try:
    import orjson  # optional (the http extra brings it): decodes a who-saw page's rows about 2.5x faster
except ImportError:
    orjson = None


#: 19 digits or more: possibly an integer outside 64 bits, which orjson would read as a float.
_LONG_DIGITS = re.compile(r"[0-9]{19}", re.ASCII)


def _decode(text: str) -> dict:
    """The stored readable form as a dict, the standard decoder's dict whichever decodes it.

    A text that orjson writes back byte for byte holds no integer beyond 64 bits (orjson reads one
    as a float, which it writes otherwise), so orjson's dict is the standard decoder's. That round
    trip costs about 1 µs a row where scanning the text for a run of 19 digits cost 7-15 µs (the
    largest single cost of a who-saw page). A text that does not round-trip goes the careful way:
    orjson unless it holds such a run; what orjson refuses (lone surrogates of a lenient read) goes
    to the standard decoder.
    """
    if orjson is not None:
        try:
            row = orjson.loads(text)
        except orjson.JSONDecodeError:
            return _std_decode(text)[0]
        if orjson.dumps(row) == text.encode() or not _LONG_DIGITS.search(text):
            return row
    return _std_decode(text)[0]


def to_row(json_text: str, timestamp: int | None, event_type: str | None = None, marks: dict | None = None) -> dict:
    """The stored event with ``labels``, ``recorded_at`` and any contradiction ``marks`` added."""
    row = _decode(json_text)
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
    for found in side_rows(source, "subjects", "subject_id", subject, chosen, since=since, until=until, as_of=as_of):
        row = to_row(found.json, found.recorded_ms, found.type, found.marks)
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
    for found in side_rows(source, "recipients", "recipient_id", recipient, chosen,
                           since=since, until=until, as_of=as_of):
        row = to_row(found.json, found.recorded_ms, found.type, found.marks)
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
    for found in side_rows(source, "actors", "actor_id", actor, chosen, since=since, until=until, as_of=as_of):
        yield to_row(found.json, found.recorded_ms, found.type, found.marks)


def contradictions(source, *, as_of: datetime | str | None = None) -> Iterator[dict]:
    """Every record that contradicts an entry (same event_id, other content), paired with that entry.

    One row per contradicting record: ``event_id``, ``fields`` (what differs),
    ``entry`` and ``contradiction``, each ``{seq, topic, partition, offset,
    type, occurred_at, recorded_at}``. Newest entry first by event time, then
    event_id, then the contradicting record's position. ``as_of`` keeps pairs
    whose both records were recorded by then (the entry: by its earliest
    same-content copy).
    """
    as_of_ms = None if as_of is None else to_millis(parse_time(as_of, option="--as-of"))
    for pair in reads.contradiction_pairs(source, as_of_ms):
        yield {"event_id": pair.event_id, "fields": contradicted_fields(pair.reason),
               "entry": _pair_side(pair.entry), "contradiction": _pair_side(pair.contradiction)}


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
