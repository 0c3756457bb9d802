"""What the ledger stores about a decoded event: entry columns and side-table rows.

Ingest writes exactly these values and verify re-derives them from the raw
bytes and compares, so this module is the single source of truth for them.

    entry_columns(event)  -> {"event_id", "type", "occurred_at" (µs), "json"}
    index_row(seq, event, occurred_at)
                          -> [seq, occurred_at, type, actor_id, recipient_id | None,
                              [subject_ids], [categories]]    (what ingest hands the store)
    side_rows(seq, event) -> {"subjects": [(subject_id, seq, occurred_at, type)], "actors": [...],
                              "recipients": [...], "categories": [...]}

Ingest hands the store one ``index_row`` per entry and the store expands them
into side-table rows inside SQLite (store.schema.derive_side_rows_sql), off
Python's GIL; verify expands them here, in Python, with ``side_rows``, and
compares: two independent derivations of the same rows.

``event`` is a normalized event as returned by ``events.validate`` (or the
codec's decode): every field present, datetimes aware UTC.
"""

from __future__ import annotations

from ledger.model.events import readable_json  # the entry's JSON form: canonical_json(to_json(event)), computed faster
from ledger.model.times import to_micros

SIDE_TABLE_NAMES = ("subjects", "actors", "recipients", "categories")


micros = to_micros  # exact µs since the epoch: ledger.model.times is the one home of the conversion


def entry_columns(event: dict) -> dict:
    """The decoded columns of an entry: event_id, type, occurred_at (µs), json (readable form)."""
    return {
        "event_id": str(event["event_id"]),
        "type": event["type"],
        "occurred_at": micros(event["occurred_at"]),
        "json": readable_json(event),
    }


def index_row(seq: int, event: dict, occurred_at: int) -> list:
    """The entry's side-table keys in one list (the store expands it; see the module doc)."""
    if "subject_ids" not in event:  # a subjectless type (PolicyPublished): null keys give no rows
        return [seq, occurred_at, event["type"], None, None, [], []]
    recipient = event.get("recipient")
    return [seq, occurred_at, event["type"], event["actor"]["id"],
            None if recipient is None else recipient["id"],
            event["subject_ids"], event.get("data_categories") or []]


def side_rows(seq: int, event: dict) -> dict[str, list[tuple]]:
    """Rows ``(key, seq, occurred_at, type)`` per side table for the entry ``seq``, sorted by key."""
    occurred_at, etype = micros(event["occurred_at"]), event["type"]
    if "subject_ids" not in event:  # a subjectless type (PolicyPublished): no side-table rows
        return {name: [] for name in SIDE_TABLE_NAMES}
    recipient = event.get("recipient")
    # dict.fromkeys: a repeated id (which validation refuses) yields one row, as the store's OR IGNORE does.
    rows = {
        "subjects": [(s, seq, occurred_at, etype) for s in dict.fromkeys(event["subject_ids"])],
        "actors": [(event["actor"]["id"], seq, occurred_at, etype)],
        "recipients": [] if recipient is None else [(recipient["id"], seq, occurred_at, etype)],
        "categories": [(c, seq, occurred_at, etype) for c in dict.fromkeys(event.get("data_categories") or ())],
    }
    for name in SIDE_TABLE_NAMES:
        rows[name].sort()
    return rows
