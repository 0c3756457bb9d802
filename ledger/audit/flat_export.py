"""``ledger export --flat OUT.db``: a denormalized, read-only SQLite copy for sqlite-utils or Datasette.

    counts = export_flat(ledger, "flat.db", recorder=recorder, principal=principal, justification="...")

One table per event type (``data_accessed``, ``data_shared``,
``legal_disclosure``, ``notification_status_changed``, ``subject_notified``,
``consent_changed``) with readable columns (nested fields flattened:
``actor_role``, ``recipient_name``, ``justification_note``...; lists as
``; ``-joined text, with their labels), a ``subjects`` table (one row per
customer per event), the vocabulary's labels (``purposes``,
``data_category_labels``), views for the common questions (``who_saw``,
``disclosures_by_recipient``, ``break_glass``) and full-text search on names
and notes, all built with sqlite-utils (``insert_all``, ``enable_fts``,
``create_view``). The file is made read-only (mode 0444) when done.

``audience="subject"`` applies the report's subject rules to every row: a
legal disclosure whose notice is still delayed for any of its customers is
left out, and staff ids, justification notes, attributes and tracing ids
are not exported (people by role and organisation only). The customer ids
stay, in ``subjects``: the copy is still for the operator's analysts.

The export is itself a read of every customer it holds: it is recorded as
an EXPORT DataAccessed (split by 1,000 customers, one correlation_id)
through the durable outbox before the file is put in place; if the record
cannot be committed the file is deleted and the export fails.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from ledger.errors import ConfigError
from ledger.model.taxonomy import DATA_CATEGORIES, PURPOSES, category_label, purpose_label
from ledger.model.times import parse_time

from .query import EVENT_TYPES, side_rows, to_row

TABLES = {"DataAccessed": "data_accessed", "DataShared": "data_shared", "LegalDisclosure": "legal_disclosure",
          "NotificationStatusChanged": "notification_status_changed", "SubjectNotified": "subject_notified",
          "ConsentChanged": "consent_changed"}
#: Not exported to the subject audience (the report's subject rules, field by field).
_SUBJECT_HIDDEN = ("actor_id", "justification_note", "justification_ticket", "attributes", "trace_id",
                   "recorded_by", "reviewed_by", "correlation_id", "request_case_ref")
_FTS = {"data_accessed": ("actor_role", "actor_organization", "source_service", "justification_note"),
        "data_shared": ("recipient_name", "recipient_address", "justification_note"),
        "legal_disclosure": ("recipient_name", "request_authority", "justification_note")}
_BATCH = 2000


def flat_row(event: dict) -> dict:
    """An event (JSON form) as one flat row: nested records prefixed, lists joined, labels added."""
    row: dict = {}
    for key, value in event.items():
        if key in ("type", "labels", "subject_ids"):
            continue
        if isinstance(value, dict) and key != "attributes":
            for sub, v in value.items():
                row[f"{key}_{sub}"] = "; ".join(map(str, v)) if isinstance(v, list) else v
        elif isinstance(value, list):
            row[key] = "; ".join(map(str, value))
        elif key == "attributes":
            row[key] = json.dumps(value, ensure_ascii=False, sort_keys=True) if value else None
        else:
            row[key] = value
    row["subject_count"] = len(event.get("subject_ids") or ())
    if event.get("purpose"):
        row["purpose_label"] = purpose_label(event["purpose"])
    if event.get("data_categories"):
        row["data_category_labels"] = "; ".join(category_label(c) for c in event["data_categories"])
    return row


def export_flat(ledger, out: str | os.PathLike, *, audience: str = "auditor", as_of=None, recorder=None,
                principal=None, justification: str | None = None) -> dict[str, int]:
    """Write the flat copy to ``out`` (must not exist); returns rows per table."""
    import sqlite_utils

    from .obligations import load_cases

    if audience not in ("auditor", "subject"):
        raise ConfigError(f"--audience must be auditor or subject, not {audience!r}")
    out = Path(out)
    if out.exists():
        raise ConfigError(f"{out} exists; the flat export writes a new file")
    as_of_t = None if as_of is None else parse_time(as_of, option="--as-of")
    judged = as_of_t or parse_time(_now())
    book = load_cases(ledger, as_of=as_of_t) if audience == "subject" else None
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    db = sqlite_utils.Database(tmp)
    counts: dict[str, int] = {}
    subjects: set[str] = set()
    categories: set[str] = set()
    try:
        batches: dict[str, list[dict]] = {}
        subject_rows: list[dict] = []

        def flush(table: str | None = None) -> None:
            for name in [table] if table else list(batches):
                if batches.get(name):
                    db[name].insert_all(batches[name], pk="event_id", alter=True)
                    batches[name] = []
            if subject_rows and table is None or len(subject_rows) >= _BATCH:
                db["subjects"].insert_all(subject_rows, alter=True)
                subject_rows.clear()

        for _, text, ts, etype, *_ in side_rows(ledger, "actors", "actor_id", None, EVENT_TYPES, as_of=as_of_t):
            event = to_row(text, ts, etype)
            ids = event.get("subject_ids") or []
            if book is not None and etype == "LegalDisclosure" and any(
                    book.case(event["event_id"]).withheld_from(s, judged) for s in ids):
                continue  # the report's subject rule: hidden while its notice is delayed
            row = flat_row(event)
            if audience == "subject":
                for key in _SUBJECT_HIDDEN:
                    row.pop(key, None)
            table = TABLES[etype]
            batches.setdefault(table, []).append(row)
            counts[table] = counts.get(table, 0) + 1
            for s in ids:
                subject_rows.append({"subject_id": s, "event_id": event["event_id"], "type": etype,
                                     "occurred_at": event["occurred_at"]})
            subjects.update(ids)
            categories.update(event.get("data_categories") or ())
            if len(batches[table]) >= _BATCH:
                flush(table)
        flush()
        counts["subjects"] = db["subjects"].count if "subjects" in db.table_names() else 0
        db["purposes"].insert_all([{"code": k, "label": v} for k, v in PURPOSES.items()], pk="code")
        db["data_category_labels"].insert_all([{"code": k, "label": v} for k, v in DATA_CATEGORIES.items()], pk="code")
        if "subjects" in db.table_names():
            db["subjects"].create_index(["subject_id", "occurred_at"])
        for table, columns in _FTS.items():
            if table in db.table_names():
                present = [c for c in columns if c in db[table].columns_dict]
                if present:
                    db[table].enable_fts(present, create_triggers=False)
        _views(db)
        db.conn.commit()
        db.close()
        if recorder is not None:
            # The export is a read of every customer it holds: recorded before the file is handed over.
            recorder.record(principal, subjects, categories, route="ledger export --flat",
                            query=f"audience={audience}" + (f"&as_of={as_of}" if as_of else ""),
                            request_id=str(uuid.uuid4()), justification=justification, export=True, channel="cli")
        os.replace(tmp, out)
        os.chmod(out, 0o444)
    except BaseException:
        try:
            db.close()
        except Exception:
            pass
        tmp.unlink(missing_ok=True)
        raise
    return counts


def _views(db) -> None:
    tables = set(db.table_names())
    parts = []
    for table, etype in (("data_accessed", "DataAccessed"), ("data_shared", "DataShared"),
                         ("legal_disclosure", "LegalDisclosure")):
        if table in tables:
            who = "actor_id" if "actor_id" in db[table].columns_dict else "actor_role"
            recipient = "recipient_name" if table != "data_accessed" else "NULL"
            parts.append(f"SELECT s.subject_id, e.occurred_at, '{etype}' AS type, e.{who} AS actor, e.actor_role, "
                         f"e.actor_organization, e.purpose, e.purpose_label, {recipient} AS recipient, "
                         f"e.data_category_labels, e.event_id FROM subjects AS s JOIN {table} AS e "
                         f"ON e.event_id = s.event_id")
    if parts and "subjects" in tables:
        db.create_view("who_saw", " UNION ALL ".join(parts))
    shared = [f"SELECT recipient_id, recipient_name, recipient_kind, occurred_at, subject_count FROM {t}"
              for t in ("data_shared", "legal_disclosure") if t in tables]
    if shared:
        db.create_view("disclosures_by_recipient",
                       "SELECT recipient_id, recipient_name, recipient_kind, count(*) AS events, "
                       "sum(subject_count) AS subject_references, min(occurred_at) AS first, max(occurred_at) AS last "
                       f"FROM ({' UNION ALL '.join(shared)}) GROUP BY recipient_id ORDER BY events DESC")
    if "data_accessed" in tables:
        db.create_view("break_glass", "SELECT * FROM data_accessed WHERE outcome = 'BREAK_GLASS'")


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat()
