"""A report as one CSV table: a ``section`` column says which part of the report a row belongs to.

Sections, in order: ``report`` (generated time, parameters, time zone, chain
heads as name/value rows), ``accounting`` (one row per group of disclosures),
``gdpr.purposes``, ``gdpr.data_categories``, ``gdpr.recipients``,
``gdpr.transfers``, ``gdpr.retention``, ``gdpr.sources``, ``notices`` and
``anomalies`` (auditor only) and ``timeline`` (one row per event, newest first). Times
are UTC, written ``...Z``. A cell a spreadsheet would run as a formula
(``= + - @``, tab, CR first) gets a leading ``'`` (:func:`.inert.csv_cell`).
"""

from __future__ import annotations

import csv
import io
import json

from .inert import csv_cell
from .model import Report

COLUMNS = ("section", "name", "value", "time", "first", "last", "count", "type", "action", "actor",
           "recipient", "recipient_address", "country", "purpose", "purpose_label", "basis",
           "data_categories", "data_labels", "safeguard", "retention_until", "withheld", "status", "delay",
           "delay_until", "order_ref", "due_by", "overdue", "event_id")


def _row(section: str, **values) -> list[str]:
    out = []
    for column in COLUMNS:
        v = section if column == "section" else values.get(column)
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, (list, tuple)):
            v = "; ".join(str(x) for x in v)
        out.append("" if v is None else csv_cell(str(v)))
    return out


def _actor(a: dict, own: bool = False) -> str:
    kind = a["type"]
    if kind == "SUBJECT":  # say whose action it was: the customer's own, or another customer's
        kind = "SUBJECT (this customer)" if own else "SUBJECT (another customer)"
    return " / ".join(str(x) for x in (a.get("id"), kind, a.get("role"), a.get("organization")) if x)


def rows(report: Report):
    """Every CSV row of the report, header first."""
    yield list(COLUMNS)
    for name in ("generated_at", "judged_at", "time_zone", "audience", "subject"):
        yield _row("report", name=name, value=getattr(report, name))
    for name, value in report.parameters.items():
        yield _row("report", name=f"parameter.{name}",
                   value=json.dumps(value, sort_keys=True) if isinstance(value, dict) else value)
    for h in report.heads:
        yield _row("report", name=f"head {h['topic']}[{h['partition']}]", value=f"{h['offset']} {h['chain_hash']}")
    for g in report.accounting["groups"]:
        r = g["recipient"]
        yield _row("accounting", first=g["first"], last=g["last"], count=g["count"], type=g["type"],
                   recipient=r["name"], recipient_address=r.get("address"), country=r.get("country"),
                   purpose=g["purpose"], purpose_label=g["purpose_label"], basis=g["basis"],
                   data_categories=g["data_categories"], data_labels=g["data_labels"],
                   withheld=g.get("withheld_from_subject"), event_id=g["event_ids"])
    gd = report.gdpr
    for p in gd["purposes"]:
        yield _row("gdpr.purposes", purpose=p["code"], purpose_label=p["label"], count=p["count"])
    for c in gd["data_categories"]:
        yield _row("gdpr.data_categories", data_categories=c["code"], data_labels=c["label"], count=c["count"])
    for r in gd["recipients"]:
        yield _row("gdpr.recipients", recipient=r["recipient"]["name"], recipient_address=r["recipient"].get("address"),
                   country=r["recipient"].get("country"), type=r["kind"], first=r["first"], last=r["last"],
                   count=r["count"])
    for t in gd["third_country_transfers"]:
        yield _row("gdpr.transfers", recipient=t["recipient"]["name"], country=t["country"],
                   safeguard=t["safeguards"], count=t["count"])
    for r in gd["retention"]:
        yield _row("gdpr.retention", recipient=r["recipient"]["name"], purpose=r["purpose"],
                   purpose_label=r["purpose_label"], retention_until=r["retention_until"])
    for s in gd["sources"]:
        yield _row("gdpr.sources", name=s["source_service"], count=s["count"])
    for n in report.notices or []:
        yield _row("notices", name=n["subject_id"], time=n["disclosed_at"], recipient=n["recipient"],
                   status=n["status"], delay=n["delay"], delay_until=n["delay_until"], order_ref=n["order_ref"],
                   due_by=n["due_by"], overdue=n["overdue"], event_id=n["disclosure_event_id"])
    for a in report.anomalies or []:
        yield _row("anomalies", name=a["kind"], value=a["message"], type=a["type"], event_id=a["event_id"])
    for item in report.timeline:
        r = item.get("recipient") or {}
        j = item.get("justification") or {}
        yield _row("timeline", time=item["occurred_at"], type=item["type"],
                   action=item.get("access_type") or (item.get("request") or {}).get("kind"),
                   value=item.get("outcome"), actor=_actor(item["actor"], item.get("own_action", False)), recipient=r.get("name"),
                   recipient_address=r.get("address"), country=r.get("country"), purpose=item.get("purpose"),
                   purpose_label=(item.get("labels") or {}).get("purpose"),
                   basis=" ".join(x for x in (item.get("legal_basis"), j.get("reason_code")) if x),
                   data_categories=item.get("data_categories"),
                   data_labels=(item.get("labels") or {}).get("data_categories"),
                   safeguard=item.get("transfer_safeguard"), retention_until=item.get("retention_until"),
                   withheld=item.get("withheld_from_subject"), event_id=item["event_id"],
                   **_notice(item.get("notice")))


def _notice(n: dict | None) -> dict:
    if not n:
        return {}
    return {"status": n["status"], "delay": n["delay"], "delay_until": n["delay_until"],
            "order_ref": n["order_ref"], "due_by": n["due_by"]}


def render_csv(report: Report) -> str:
    buf = io.StringIO()
    # CRLF (RFC 4180) also makes the writer quote a cell holding a bare CR, which spreadsheets
    # would otherwise take as a row break: a new row whose first cell is an unneutralised formula.
    csv.writer(buf, lineterminator="\r\n").writerows(rows(report))
    return buf.getvalue()
