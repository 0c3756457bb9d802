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

import json
from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
SIDE_TABLE_NAMES = ("subjects", "actors", "recipients", "categories")


def micros(when: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime."""
    return (when - _EPOCH) // _MICROSECOND


def _time_text(value):
    """What ``events.to_json`` makes of a datetime (the encoder calls this only for non-JSON values)."""
    if isinstance(value, datetime):  # the same expression as events.to_json; a test pins equality
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    raise TypeError(f"{type(value).__name__} is not part of a normalized event")


# canonical_json(to_json(event)) in one pass of the C encoder: no copy of the
# event is built, which halves the cost of the JSON form (tests pin equality).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_time_text)


def readable_json(event: dict) -> str:
    """The entry's JSON form: ``events.canonical_json(events.to_json(event))``, computed faster."""
    return _CANONICAL.encode(event)


def entry_columns(event: dict) -> dict:
    """The decoded columns of an entry: event_id, type, occurred_at (µs), json (readable form)."""
    return {
        "event_id": str(event["event_id"]),
        "type": event["type"],
        "occurred_at": micros(event["occurred_at"]),
        "json": _CANONICAL.encode(event),
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
