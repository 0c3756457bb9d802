"""Which columns each query shows in a table and in CSV (JSON carries whole rows).

Rows are the dicts :mod:`ledger.query` yields (the stored event plus
``labels`` and ``recorded_at``), :class:`~ledger.obligations.Notice` objects,
or the per-recipient summaries. Times are UTC, written ``...Z``; table
headers say so.
"""

from __future__ import annotations

from datetime import datetime

from ledger.model.times import iso

from .tabular import Column


def _get(*path: str):
    def get(row):
        value = row
        for part in path:
            if value is None:
                return None
            value = value.get(part)
        return value
    return get


SHORT_TYPES = {
    "DataAccessed": "access", "DataShared": "share", "LegalDisclosure": "legal",
    "NotificationStatusChanged": "notice status", "SubjectNotified": "notified", "ConsentChanged": "consent",
}


def short_time(row: dict, name: str = "occurred_at") -> str | None:
    """``2026-03-01 09:15:02``: seconds are enough to read a table (json and csv keep µs)."""
    value = row.get(name)
    return None if value is None else value[:19].replace("T", " ")


def what(row: dict) -> str:
    """The short type and the action, e.g. ``access EXPORT DENIED``, ``legal COURT_ORDER``.

    A record that contradicts another of the same event_id, or is contradicted, says so first,
    where a narrow column does not cut it (``[contradicts seq 12] legal SUBPOENA``,
    ``[contradicted] access VIEW``; ``ledger conflicts`` lists the pairs).
    """
    text = f"{SHORT_TYPES.get(row.get('type'), row.get('type'))} {action(row)}".strip()
    if row.get("contradicts"):
        return f"[contradicts seq {row['contradicts']['seq']}] {text}"
    if row.get("contradicted_by"):
        return f"[contradicted] {text}"
    return text


def action(row: dict) -> str:
    """What happened, in a few words: the access type and outcome, or the legal instrument."""
    t = row.get("type")
    if t == "DataAccessed":
        outcome = row.get("outcome")
        return row["access_type"] + ("" if outcome == "GRANTED" else f" {outcome}")
    if t == "DataShared":
        return ""
    if t == "LegalDisclosure":
        return row["request"]["kind"]
    if t == "NotificationStatusChanged":
        return row["status"]
    if t == "ConsentChanged":
        return ("GRANT " if row["granted"] else "WITHDRAW ") + row["purpose"]
    if t == "SubjectNotified":
        return f"NOTICE {row['channel']}"
    return ""


def actor_text(row: dict) -> str:
    a = row["actor"]
    who = " ".join(x for x in (a.get("role"), f"({a['organization']})" if a.get("organization") else None) if x)
    return f"{a['id']} {who}".strip()


def recipient_text(row: dict) -> str | None:
    r = row.get("recipient")
    if not r:
        return None
    return f"{r['name']} [{r['kind']}{', ' + r['country'] if r.get('country') else ''}]"


def why(row: dict) -> str | None:
    """The justification, or for a legal disclosure the request behind it."""
    parts = []
    j = row.get("justification")
    if j:
        parts.append(j["reason_code"] + (f" {j['ticket']}" if j.get("ticket") else ""))
    req = row.get("request")
    if req:
        parts.append(f"{req['authority']} {req.get('case_ref') or req['id']}")
    return "; ".join(parts) or None


def subjects_text(row: dict) -> str:
    ids = row.get("subject_ids") or []
    return ids[0] if len(ids) == 1 else f"{len(ids)} customers"


def _labels(row: dict):
    return (row.get("labels") or {}).get("data_categories")


def _purpose_label(row: dict):
    return (row.get("labels") or {}).get("purpose")


_EVENT_ID = Column("event_id", "EVENT_ID", _get("event_id"), keep=True)

def purpose_basis(row: dict) -> str | None:
    label = _purpose_label(row)
    basis = row.get("legal_basis")
    return f"{label} ({basis})" if label and basis else label


WHO_SAW_TABLE = [
    Column("occurred_at", "TIME (UTC)", short_time),
    Column("type", "WHAT", what),
    Column("actor", "ACTOR", actor_text),
    Column("purpose", "PURPOSE (BASIS)", purpose_basis),
    Column("why", "WHY", why),
    Column("recipient", "RECIPIENT", recipient_text),
    Column("data_categories", "DATA", _labels),
    Column("source_service", "SOURCE", _get("source_service")),
    _EVENT_ID,
]

# Flat CSV columns for any event row (who-saw, disclosures, accesses).
EVENT_CSV = [
    Column("occurred_at", "", _get("occurred_at")),
    Column("recorded_at", "", _get("recorded_at")),
    Column("type", "", _get("type")),
    Column("action", "", action),
    Column("actor_id", "", _get("actor", "id")),
    Column("actor_type", "", _get("actor", "type")),
    Column("actor_role", "", _get("actor", "role")),
    Column("actor_organization", "", _get("actor", "organization")),
    Column("purpose", "", _get("purpose")),
    Column("purpose_label", "", _purpose_label),
    Column("legal_basis", "", _get("legal_basis")),
    Column("justification_reason_code", "", _get("justification", "reason_code")),
    Column("justification_ticket", "", _get("justification", "ticket")),
    Column("justification_note", "", _get("justification", "note")),
    Column("request_kind", "", _get("request", "kind")),
    Column("request_authority", "", _get("request", "authority")),
    Column("request_case_ref", "", _get("request", "case_ref")),
    Column("recipient_id", "", _get("recipient", "id")),
    Column("recipient_name", "", _get("recipient", "name")),
    Column("recipient_kind", "", _get("recipient", "kind")),
    Column("recipient_country", "", _get("recipient", "country")),
    Column("data_categories", "", _get("data_categories")),
    Column("data_category_labels", "", _labels),
    Column("subject_count", "", lambda r: len(r.get("subject_ids") or [])),
    Column("subject_ids", "", _get("subject_ids")),
    Column("source_service", "", _get("source_service")),
    Column("event_id", "", _get("event_id")),
]

DISCLOSURES_TABLE = [
    Column("occurred_at", "TIME (UTC)", short_time),
    Column("type", "WHAT", what),
    Column("recipient", "RECIPIENT", recipient_text),
    Column("subject_count", "CUSTOMERS", _get("subject_count")),
    Column("purpose", "PURPOSE / REQUEST", lambda r: why(r) if r["type"] == "LegalDisclosure" else _purpose_label(r)),
    Column("data_categories", "DATA", _labels),
    Column("actor", "BY", actor_text),
    _EVENT_ID,
]

ACCESSES_TABLE = [
    Column("occurred_at", "TIME (UTC)", short_time),
    Column("type", "WHAT", what),
    Column("subjects", "CUSTOMERS", subjects_text),
    Column("data_categories", "DATA", _labels),
    Column("purpose", "PURPOSE", _purpose_label),
    Column("why", "WHY", why),
    Column("channel", "CHANNEL", _get("channel")),
    _EVENT_ID,
]

SUMMARY_COLUMNS = [
    Column("recipient_id", "RECIPIENT_ID", _get("recipient", "id")),
    Column("recipient_name", "NAME", _get("recipient", "name")),
    Column("recipient_kind", "KIND", _get("recipient", "kind")),
    Column("recipient_country", "COUNTRY", _get("recipient", "country")),
    Column("events", "EVENTS", _get("events")),
    Column("subject_count", "CUSTOMERS", _get("subject_count")),
    Column("first", "FIRST (UTC)", lambda r: short_time(r, "first"), full=_get("first")),
    Column("last", "LAST (UTC)", lambda r: short_time(r, "last"), full=_get("last")),
]


def _notice(name: str):
    def get(notice):
        value = getattr(notice, name)
        return iso(value) if isinstance(value, datetime) else value
    return get


def _notice_time(name: str) -> Column:
    header = {"disclosed_at": "DISCLOSED (UTC)", "due_by": "DUE BY (UTC)", "delay_until": "DELAY UNTIL (UTC)"}[name]
    return Column(name, header, lambda n: short_time({name: _notice(name)(n)}, name), full=_notice(name))


OBLIGATION_COLUMNS = [
    Column("disclosure_event_id", "DISCLOSURE", _notice("disclosure_event_id"), keep=True),
    Column("subject_id", "CUSTOMER", _notice("subject_id"), keep=True),
    _notice_time("disclosed_at"),
    Column("recipient", "RECIPIENT", _notice("recipient")),
    Column("request_id", "REQUEST", _notice("request_id")),
    _notice_time("due_by"),
    Column("overdue", "OVERDUE", _notice("overdue")),
    Column("status", "STATUS", _notice("status")),
    Column("delay", "DELAY", _notice("delay")),
    _notice_time("delay_until"),
    Column("order_ref", "ORDER", _notice("order_ref")),
]


def _place(side: str):
    return lambda row: "{topic}[{partition}]@{offset}".format(**row[side])


# `ledger conflicts`: one row per contradicting record and the entry it contradicts.
CONFLICT_COLUMNS = [
    _EVENT_ID,
    Column("fields", "DIFFERING FIELDS", _get("fields")),
    Column("entry_seq", "ENTRY SEQ", _get("entry", "seq")),
    Column("entry_type", "ENTRY TYPE", _get("entry", "type")),
    Column("entry_at", "ENTRY AT", _place("entry"), keep=True),
    Column("entry_recorded_at", "ENTRY RECORDED (UTC)", lambda r: short_time(r["entry"], "recorded_at"),
           full=_get("entry", "recorded_at")),
    Column("seq", "SEQ", _get("contradiction", "seq")),
    Column("type", "TYPE", _get("contradiction", "type")),
    Column("at", "AT", _place("contradiction"), keep=True),
    Column("recorded_at", "RECORDED (UTC)", lambda r: short_time(r["contradiction"], "recorded_at"),
           full=_get("contradiction", "recorded_at")),
]
