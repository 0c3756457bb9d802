"""A report as one self-contained HTML file: inline CSS, no scripts, no external assets.

    html_text = render_html(build_report(ledger, "cust-000042"))

Reads well on screen and on paper (``@media print``). Every value taken from
the ledger goes through :func:`html.escape`. Times are shown in UTC, and the
page says so.
"""

from __future__ import annotations

from html import escape
from itertools import groupby
from typing import Iterable

from .model import Report

CSS = """
:root { --ink:#1d2430; --muted:#5b6575; --line:#dde2ea; --bg:#f6f7f9; --accent:#2456a6;
        --access:#2f7d4f; --share:#9a6a00; --legal:#a3302f; --warn:#fff4d6; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--ink); background:var(--bg); }
main { max-width: 1040px; margin: 0 auto; padding: 32px 28px 64px; background:#fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.lead { color: var(--muted); margin: 0 0 16px; }
.meta { display:grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 13px;
        color: var(--muted); margin: 12px 0 0; }
.meta dt { font-weight: 600; color: var(--ink); }
.meta dd { margin: 0; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin: 20px 0 4px; }
.card { flex: 1 1 140px; border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.card b { display:block; font-size: 24px; }
.card span { color: var(--muted); font-size: 13px; }
table { width:100%; border-collapse: collapse; font-size: 13.5px; margin: 6px 0 12px; }
th, td { text-align:left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
td.num { text-align: right; white-space: nowrap; }
.nowrap { white-space: nowrap; }
.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px;
        word-break: break-all; }
.day { margin: 18px 0 4px; font-weight: 700; font-size: 14px; color: var(--muted); }
ol.timeline { list-style: none; margin: 0; padding: 0 0 0 18px; border-left: 3px solid var(--line); }
ol.timeline li { position: relative; margin: 0 0 10px; padding: 6px 10px; border-radius: 6px; }
ol.timeline li::before { content:""; position:absolute; left:-26px; top:12px; width:13px; height:13px;
        border-radius:50%; background:#fff; border:3px solid var(--kind, var(--accent)); }
ol.timeline li.access { --kind: var(--access); }
ol.timeline li.share { --kind: var(--share); }
ol.timeline li.legal { --kind: var(--legal); }
ol.timeline li.withheld { background: var(--warn); }
.when { font-weight: 600; margin-right: 8px; }
.badge { display:inline-block; font-size: 11px; font-weight: 700; text-transform: uppercase;
         padding: 1px 7px; border-radius: 10px; color:#fff; background: var(--kind, var(--accent));
         margin-right: 6px; vertical-align: 1px; }
.badge.flag { background: #b35c00; }
.detail { color: var(--muted); font-size: 13.5px; }
.empty { color: var(--muted); font-style: italic; }
ul.plain { margin: 4px 0 10px; padding-left: 18px; }
footer { margin-top: 40px; font-size: 12px; color: var(--muted); }
@media print {
  body { background: #fff; font-size: 11pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  ol.timeline li, tr { break-inside: avoid; }
  .card { border-color: #999; }
  a { color: inherit; text-decoration: none; }
  @page { margin: 16mm 14mm; }
}
"""

_KIND = {"DataAccessed": "access", "DataShared": "share", "LegalDisclosure": "legal"}
_KIND_LABEL = {"access": "Access", "share": "Shared", "legal": "Legal disclosure"}


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def when(text: str | None, *, seconds: bool = False) -> str:
    """``2026-03-17 13:25 UTC`` from ``2026-03-17T13:25:25.696080Z``."""
    if not text:
        return ""
    return text[: 19 if seconds else 16].replace("T", " ") + " UTC"


def who(actor: dict, own: bool = False, auditor: bool = False) -> str:
    """An actor in words: role and organisation (the id too when the report shows it).

    "you" ("the customer" for an auditor) only for the customer's own action (``own``: the
    actor is a SUBJECT with this customer's id); a SUBJECT actor with another id is another customer.
    """
    if own:
        text = "the customer" if auditor else "you"
    elif actor["type"] == "SUBJECT":
        text = "another customer"
    else:
        text = (actor.get("role") or actor["type"].lower()).replace("_", " ")
        if actor.get("organization"):
            text += f" at {actor['organization']}"
    if actor.get("id"):
        text += f" ({actor['id']})"
    return text


def _lower_first(label: str) -> str:
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


def _what(item: dict) -> str:
    t = item["type"]
    # Labels start with a capital (they head table rows); mid-sentence they read better without it.
    data = ", ".join(_lower_first(x) for x in item.get("labels", {}).get("data_categories", []))
    if t == "DataAccessed":
        verb = {"VIEW": "viewed", "QUERY": "queried", "EXPORT": "exported", "MODIFY": "changed",
                "DELETE": "deleted"}.get(item.get("access_type"), "accessed")
        outcome = item.get("outcome")
        if outcome == "DENIED":
            return f"tried to access {data} (denied)"
        if outcome == "BREAK_GLASS":
            return f"{verb} {data} (emergency break-glass access)"
        return f"{verb} {data}"
    r = item.get("recipient") or {}
    to = r.get("name", "")
    if t == "DataShared":
        return f"shared {data} with {to}"
    return f"disclosed {data} to {to}"


def _why(item: dict) -> str:
    parts = [item.get("labels", {}).get("purpose") or item.get("purpose")]
    if item.get("legal_basis"):
        parts.append(f"legal basis {item['legal_basis'].replace('_', ' ').lower()}")
    req = item.get("request")
    if req:
        parts.append(f"{req['kind'].replace('_', ' ').lower()} from {req['authority']}")
    j = item.get("justification")
    if j and j.get("reason_code"):
        parts.append(f"reason: {j['reason_code'].replace('_', ' ')}" + (f" ({j['ticket']})" if j.get("ticket") else ""))
    return " · ".join(p for p in parts if p)


def _delay_words(n: dict) -> str:
    """``, delayed until …``, ``, delayed indefinitely``, ``, delay ended …`` or ``, delay lifted``."""
    until = when(n.get("delay_until"))
    if n.get("delay") == "in force":
        return f", delayed until {e(until)}" if until else ", delayed indefinitely"
    if n.get("delay") == "expired":
        return f", delay ended {e(until)}"
    if n.get("delay") == "lifted":
        return ", delay lifted"
    return ""


def _timeline(items: list[dict], auditor: bool) -> Iterable[str]:
    if not items:
        yield '<p class="empty">Nothing recorded.</p>'
        return
    for day, group in groupby(items, key=lambda i: i["occurred_at"][:10]):
        yield f'<div class="day">{e(day)}</div><ol class="timeline">'
        for item in group:
            kind = _KIND.get(item["type"], "access")
            withheld = auditor and item.get("withheld_from_subject")
            flag = '<span class="badge flag">withheld from customer</span>' if withheld else ""
            notice = ""
            if auditor and item.get("notice"):
                n = item["notice"]
                notice = (f'<div class="detail">notice: {e(n["status"])}' + _delay_words(n)
                          + (f', order {e(n["order_ref"])}' if n.get("order_ref") else "")
                          + (f', due by {e(when(n["due_by"]))}' if n.get("due_by") else "")
                          + (", customer notified" if n.get("notified") else "") + "</div>")
            extra = ""
            if auditor:
                extra = (f'<div class="detail mono">event {e(item["event_id"])} · {len(item.get("subject_ids", []))}'
                         f' customer(s) · recorded {e(when(item.get("recorded_at"), seconds=True))}</div>')
                extra += "".join(f'<div class="detail">{e(text)}</div>' for text in _contradiction_words(item))
            yield (f'<li class="{kind}{" withheld" if withheld else ""}">'
                   f'<span class="when">{e(item["occurred_at"][11:16])}</span>'
                   f'<span class="badge">{e(_KIND_LABEL[kind])}</span>{flag}'
                   f'<div>{e(who(item["actor"], item.get("own_action", False), auditor).capitalize())} {e(_what(item))}</div>'
                   f'<div class="detail">{e(_why(item))} · via {e(item.get("source_service"))}</div>'
                   f'{notice}{extra}</li>')
        yield "</ol>"


def _contradiction_words(item: dict) -> list[str]:
    """Auditor only: the other records of this event_id that say something else (ledger.repeats)."""
    def place(ref: dict) -> str:
        return (f'{ref["type"]} seq {ref["seq"]} ({ref["topic"]}[{ref["partition"]}]@{ref["offset"]}), '
                f'differing in {", ".join(ref["fields"]) or "?"}')
    words = [f"contradicts {place(item['contradicts'])}: a claim under this event_id, not counted"] \
        if item.get("contradicts") else []
    return words + [f"contradicted by {place(ref)}" for ref in item.get("contradicted_by") or ()]


def _table(headers: list[str], rows: list[list[str]], empty: str = "None recorded.") -> str:
    if not rows:
        return f'<p class="empty">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _recipient(r: dict) -> str:
    where = f"<br><span class=\"detail\">{e(r['address'])}</span>" if r.get("address") else ""
    return f"{e(r['name'])}{where}"


def _accounting(report: Report, auditor: bool) -> str:
    acc = report.accounting
    rows = []
    for g in acc["groups"]:
        dates = e(when(g["first"])) if g["count"] == 1 else (
            f"{e(when(g['first']))} – {e(when(g['last']))}")
        flag = ' <span class="badge flag">withheld</span>' if auditor and g.get("withheld_from_subject") else ""
        rows.append([f'<span class="nowrap">{dates}</span>', _recipient(g["recipient"]) + flag,
                     e(", ".join(g["data_labels"])), e(g["basis"]), f'<span class="num">{g["count"]}</span>'])
    p = report.parameters
    intro = (f"<p>Disclosures of your information to other organisations from {e(when(p['accounting_from']))} "
             f"to {e(when(p['accounting_until']))} ({p['lookback_years']} years), as 45 CFR 164.528 requires. "
             "Repeated disclosures to the same recipient for the same purpose are summarised with the "
             "first and last date and how many times.</p>")
    return intro + _table(["Date(s)", "Recipient", "Information", "Purpose or legal request", "Times"], rows,
                          "No accountable disclosures in this period.")


def _gdpr(report: Report) -> str:
    g = report.gdpr
    out = ["<h3>Why your data is processed</h3>",
           _table(["Purpose", "Records"], [[e(p["label"]), str(p["count"])] for p in g["purposes"]]),
           "<h3>Categories of data</h3>",
           _table(["Category", "Records"], [[e(c["label"]), str(c["count"])] for c in g["data_categories"]]),
           "<h3>Recipients</h3>",
           _table(["Recipient", "Kind", "Country", "First", "Last", "Times"],
                  [[_recipient(r["recipient"]), e(r["kind"].replace("_", " ").lower()),
                    e(r["recipient"].get("country")), e(when(r["first"])), e(when(r["last"])), str(r["count"])]
                   for r in g["recipients"]]),
           "<h3>Transfers outside the EU/EEA</h3>",
           _table(["Recipient", "Country", "Safeguard"],
                  [[e(t["recipient"]["name"]), e(t["country"]), e("; ".join(t["safeguards"]))]
                   for t in g["third_country_transfers"]], "No transfers outside the EU/EEA."),
           "<h3>How long recipients keep it</h3>",
           _table(["Recipient", "Purpose", "Keep until"],
                  [[e(r["recipient"]["name"]), e(r["purpose_label"]), e(when(r["retention_until"]))]
                   for r in g["retention"]], "No retention period recorded."),
           "<h3>Where the records come from</h3>",
           "<ul class=\"plain\">" + "".join(f"<li>{e(s['source_service'])} ({s['count']})</li>" for s in g["sources"])
           + "</ul>"]
    return "".join(out)


def _notices(report: Report) -> str:
    rows = [[f'<span class="mono">{e(n["disclosure_event_id"])}</span>', e(n["recipient"]), e(when(n["due_by"])),
             "yes" if n["overdue"] else "no", e(n["status"]), e(n["delay"]), e(when(n["delay_until"])),
             e(n["order_ref"])] for n in report.notices or []]
    return _table(["Disclosure", "Recipient", "Due by", "Overdue", "Status", "Delay", "Delay until", "Order"],
                  rows, "No notice owed to this customer.")


def _anomalies(report: Report) -> str:
    """Events kept as evidence that changed nothing, and records with implausible times, in words."""
    items = report.anomalies or []
    if not items:
        return '<p class="empty">None found.</p>'
    return '<ul class="plain">' + "".join(
        f'<li>{e(a["message"])} <span class="mono">(event {e(a["event_id"])})</span></li>' for a in items) + "</ul>"


def _promises(report: Report) -> str:
    """Per rule kept / broken / not judgeable, then this customer's findings in words."""
    pr = report.promises
    where = "recorded in the ledger" if pr["recorded"] else "given as a draft, not recorded"
    head = (f'<p>Policy {e(pr["policy_name"])} version {e(pr["policy_version"])} ({where}), '
            f'<span class="mono">sha256 {e(pr["policy_sha256"])}</span>; time-based rules judged at '
            f'{e(when(pr["judged_at"], seconds=True))}. Counts are for the whole ledger.</p>')
    table = _table(["Rule", "Judged", "Kept", "Broken", "Not judgeable"],
                   [[e(r["rule"]), str(r["judged"]), str(r["kept"]), str(r["broken"]), str(r["not_judgeable"])]
                    for r in pr["rules"]], "No rule applied to any event.")
    found = pr["findings"]
    items = ('<p class="empty">No finding names this customer.</p>' if not found else '<ul class="plain">' + "".join(
        f'<li>{e(f["kind"])} ({e(f["rule"])}, {e(f["severity"])}): {e(f["sentence"])} '
        f'<span class="mono">(events {e(", ".join(f["event_ids"]))})</span></li>' for f in found) + "</ul>")
    return head + table + items


def render_html(report: Report) -> str:
    """The whole report as an HTML document (a string)."""
    auditor = report.audience == "auditor"
    title = "Auditor report" if auditor else "Who has seen your data"
    whose = "The customer's" if auditor else "Your"
    counts = {k: sum(1 for i in report.timeline if _KIND.get(i["type"]) == k) for k in _KIND_LABEL}
    p = report.parameters
    meta = [("Customer", report.subject), ("Generated", when(report.generated_at, seconds=True)),
            ("As of", when(report.judged_at, seconds=True) + ("" if p["as_of"] else " (everything recorded)")),
            ("Time zone", "All times are UTC"), ("Audience", report.audience)]
    heads = _table(["Topic", "Partition", "Offset", "Chain hash"],
                   [[e(h["topic"]), str(h["partition"]), str(h["offset"]), f'<span class="mono">{e(h["chain_hash"])}</span>']
                    for h in report.heads], "No chain heads (empty ledger).")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)} – {e(report.subject)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{e(title)}</h1>",
        '<p class="lead">Every access to, sharing of and legal disclosure of this customer\'s data '
        "recorded in the audit ledger.</p>",
        '<dl class="meta">' + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in meta) + "</dl>",
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{n}</b><span>{e(label)}</span></div>' for label, n in (
            ("accesses", counts["access"]), ("shares with other companies", counts["share"]),
            ("legal disclosures", counts["legal"]), ("recipients", len(report.gdpr["recipients"])),
            ("kinds of data", len(report.gdpr["data_categories"]))))
        + "</div>",
    ]
    if auditor:
        parts += ["<h2>Notices still owed</h2>", _notices(report), "<h2>Anomalies</h2>", _anomalies(report)]
        if report.promises is not None:
            parts += ["<h2>Promises</h2>", _promises(report)]
    parts += ["<h2>Accounting of disclosures</h2>", _accounting(report, auditor),
              f"<h2>{whose} data (GDPR Art. 15)</h2>", _gdpr(report),
              "<h2>Timeline: who saw what</h2>", "".join(_timeline(report.timeline, auditor)),
              "<footer><h3>Integrity</h3><p>Chain heads of the ledger when this report was generated; "
              "an auditor can check them with <code>ledger verify</code>.</p>", heads,
              f"<p>Accounting rules: {e(p['accounting_rules'])}</p></footer>",
              "</main></body></html>"]
    return "\n".join(parts)
