"""What the ledger stores about a decoded event: entry columns and side-table rows.

Ingest writes exactly these values and verify re-derives them from the raw
bytes and compares, so this module is the single source of truth for them.

    entry_columns(event)  -> {"event_id", "type", "occurred_at" (µs), "json"}
    side_rows(seq, event) -> {"subjects": [(subject_id, seq, occurred_at, type)], "actors": [...],
                              "recipients": [...], "categories": [...]}

``event`` is a normalized event as returned by ``events.validate`` (or the
codec's decode): every field present, datetimes aware UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .events import readable_json  # the entry's JSON form: canonical_json(to_json(event)), computed faster

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
SIDE_TABLE_NAMES = ("subjects", "actors", "recipients", "categories")


def micros(when: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime."""
    return (when - _EPOCH) // _MICROSECOND


def entry_columns(event: dict) -> dict:
    """The decoded columns of an entry: event_id, type, occurred_at (µs), json (readable form)."""
    return {
        "event_id": str(event["event_id"]),
        "type": event["type"],
        "occurred_at": micros(event["occurred_at"]),
        "json": readable_json(event),
    }


def add_side_rows(seq: int, event: dict, occurred_at: int, into: dict[str, list[tuple]]) -> None:
    """Append the side-table rows of the entry ``seq`` to the lists in ``into`` (the fast path)."""
    etype = event["type"]
    # dict.fromkeys: a repeated id (which validation refuses today) must not break the batch.
    into["subjects"].extend((s, seq, occurred_at, etype) for s in dict.fromkeys(event["subject_ids"]))
    into["actors"].append((event["actor"]["id"], seq, occurred_at, etype))
    recipient = event.get("recipient")
    if recipient is not None:  # DataShared, LegalDisclosure
        into["recipients"].append((recipient["id"], seq, occurred_at, etype))
    categories = event.get("data_categories")
    if categories:  # DataAccessed, DataShared, LegalDisclosure
        into["categories"].extend((c, seq, occurred_at, etype) for c in dict.fromkeys(categories))


def side_rows(seq: int, event: dict) -> dict[str, list[tuple]]:
    """Rows ``(key, seq, occurred_at, type)`` per side table for the entry ``seq``, sorted by key."""
    rows: dict[str, list[tuple]] = {name: [] for name in SIDE_TABLE_NAMES}
    add_side_rows(seq, event, micros(event["occurred_at"]), rows)
    for name in SIDE_TABLE_NAMES:
        rows[name].sort()
    return rows
