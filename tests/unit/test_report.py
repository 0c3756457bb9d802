"""Customer reports: what each audience sees, the accounting of disclosures, the GDPR view, and the HTML."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone

import pytest
from fill import cached_ledger, fill_ledger, filled, ledger, recorded_by, workload  # noqa: F401 (fixtures)

from ledger.audit.report import AccountingRules, build_report, render
from ledger.dev.simulate import oracle
from ledger.model.events import validate
from ledger.model.times import to_millis
from ledger.store import Ledger

UTC = timezone.utc
AS_OF = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
GENERATED = datetime(2026, 3, 21, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def seen(workload, filled):
    """The events the ledger had recorded by AS_OF."""
    return recorded_by(workload, filled, to_millis(AS_OF))


def withheld_by_issue(events, subject, as_of) -> set[str]:
    """Legal disclosures the subject must not see: delayed (in force or expired), not lifted, not notified."""
    hidden = set()
    notified = {(e["disclosure_event_id"], s) for e in events if e["type"] == "SubjectNotified"
                and e["occurred_at"] <= as_of and e["notified_at"] <= as_of for s in e["subject_ids"]}
    for d in oracle.touching(events, subject):
        if d["type"] != "LegalDisclosure" or (d["event_id"], subject) in notified:
            continue
        changes = [e for e in events if e["type"] == "NotificationStatusChanged"
                   and e["disclosure_event_id"] == d["event_id"]]
        if oracle.notice_state(d, changes, as_of)["status"] in oracle.DELAYED:
            hidden.add(d["event_id"])
    return hidden


@pytest.fixture(scope="module")
def delayed_subjects(seen):
    """Subjects with a withheld disclosure whose delay has expired, and with one still in force."""
    expired, in_force = [], []
    for d in (e for e in seen if e["type"] == "LegalDisclosure"):
        changes = [e for e in seen if e["type"] == "NotificationStatusChanged" and e["disclosure_event_id"] == d["event_id"]]
        state = oracle.notice_state(d, changes, AS_OF)
        for s in d["subject_ids"]:
            if d["event_id"] in withheld_by_issue(seen, s, AS_OF):
                (in_force if state["in_force"] else expired).append(s)
    assert expired and in_force
    return expired[0], in_force[0]


def report(ledger, subject, audience="subject", **kw):
    return build_report(ledger, subject, audience=audience, as_of=AS_OF, generated_at=GENERATED, **kw)


def test_subject_report_hides_delayed_disclosures_until_lifted_or_notified(ledger, seen, delayed_subjects, filled):
    """The customer sees the oracle's list: a delay in force or merely expired keeps the disclosure hidden."""
    for subject in delayed_subjects:
        shown = [item["event_id"] for item in report(ledger, subject).timeline]
        hidden = withheld_by_issue(seen, subject, AS_OF)
        assert hidden and not hidden & set(shown)
        assert shown == [e["event_id"] for e in oracle.subject_report(seen, subject, AS_OF, filled.positions)]


def test_auditor_report_shows_everything_and_marks_what_is_withheld(ledger, seen, delayed_subjects):
    """The auditor's timeline is the full history; exactly the withheld disclosures are marked."""
    for subject in delayed_subjects:
        r = report(ledger, subject, "auditor")
        assert [i["event_id"] for i in r.timeline] == [e["event_id"] for e in oracle.touching(seen, subject)]
        marked = {i["event_id"] for i in r.timeline if i.get("withheld_from_subject")}
        assert marked == withheld_by_issue(seen, subject, AS_OF)
        assert r.notices is not None


def test_subject_outputs_never_show_other_customers_staff_notes_or_attributes(ledger, seen, delayed_subjects):
    """In JSON, HTML and CSV alike: only this customer's id, no employee ids, notes, attributes or bookkeeping ids."""
    subject = delayed_subjects[0]
    events = oracle.touching(seen, subject)
    assert any(len(e["subject_ids"]) > 1 for e in events)
    notes = {e["justification"]["note"] for e in events if e.get("justification") and e["justification"]["note"]}
    attribute_keys = {k for e in events for k in e["attributes"]}
    assert notes and attribute_keys
    r = report(ledger, subject)
    for fmt in ("json", "html", "csv"):
        text = render(r, fmt)
        assert set(re.findall(r"cust-\d{6}", text)) == {subject}, fmt
        assert not re.search(r"\bemp-\d+", text), fmt
        for note in notes:
            assert note not in text, (fmt, note)
    keys = set()

    def walk(x):
        if isinstance(x, dict):
            keys.update(x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(r.to_dict())
    assert not keys & ({"subject_ids", "attributes", "note", "recorded_by", "reviewed_by", "trace_id",
                        "correlation_id", "notification", "document_ref", "case_ref", "id"} | attribute_keys)


def test_counts_and_groupings_only_count_what_the_customer_sees(ledger, seen, delayed_subjects):
    """Every number in a subject report is computed from the visible events only."""
    subject = delayed_subjects[0]
    r = report(ledger, subject)
    hidden = withheld_by_issue(seen, subject, AS_OF)
    text = render(r, "json")
    assert not any(h in text for h in hidden)
    assert sum(p["count"] for p in r.gdpr["purposes"]) == len(r.timeline)
    assert sum(c["count"] for c in r.gdpr["data_categories"]) == sum(len(i["data_categories"]) for i in r.timeline)
    visible_disclosures = [i for i in r.timeline if i["type"] in ("DataShared", "LegalDisclosure")]
    assert sum(x["count"] for x in r.gdpr["recipients"]) == len(visible_disclosures)
    auditor = report(ledger, subject, "auditor")
    assert auditor.accounting["disclosures"] - r.accounting["disclosures"] == len(hidden)


def test_accounting_summarises_repeats_and_follows_the_configured_rules(ledger, seen, workload):
    """Groups are (recipient, purpose, request) with first, count, last; excluded purposes and consent stay out."""
    subject = workload.a_rich_subject()
    r = report(ledger, subject, "auditor")
    rules = AccountingRules()
    accountable = [e for e in oracle.touching(seen, subject) if rules.accountable(json.loads(json.dumps(e, default=str)), subject)]
    assert r.accounting["disclosures"] == len(accountable) > 0
    for g in r.accounting["groups"]:
        assert not any(g["purpose"].startswith(p + ".") for p in rules.excluded_purposes)
        assert g["count"] == len(g["event_ids"]) and g["first"] <= g["last"]
    assert any(g["count"] > 1 for g in r.accounting["groups"])
    everything = report(ledger, subject, "auditor", rules=AccountingRules(excluded_purposes=(), excluded_legal_bases=()))
    assert everything.accounting["disclosures"] == len(
        [e for e in oracle.touching(seen, subject) if e["type"] in ("DataShared", "LegalDisclosure")])


def test_accounting_looks_back_six_years_by_default():
    """The window starts six calendar years before the report's instant; 29 February falls back to the 28th."""
    rules = AccountingRules()
    assert rules.window_start(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(2020, 3, 1, tzinfo=UTC)
    assert rules.window_start(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(2022, 2, 28, tzinfo=UTC)


def test_disclosures_older_than_the_look_back_leave_the_accounting_but_not_the_timeline(ledger, workload):
    """Judged seven years later, nothing is accountable any more, yet the timeline is complete."""
    subject = workload.a_rich_subject()
    later = build_report(ledger, subject, generated_at=datetime(2033, 6, 1, tzinfo=UTC))
    assert later.accounting["disclosures"] == 0
    assert later.timeline


def test_gdpr_view_lists_purposes_recipients_transfers_retention_and_sources(ledger, workload):
    """Third-country recipients appear with their safeguards; EEA ones do not; retention comes from shares."""
    r = report(ledger, workload.a_rich_subject())
    g = r.gdpr
    assert all(p["label"] for p in g["purposes"]) and g["data_categories"] and g["sources"]
    countries = {t["country"] for t in g["third_country_transfers"]}
    assert countries and not countries & {"DE", "NL", "FR"}
    assert all(t["safeguards"] for t in g["third_country_transfers"])
    assert set(g["recipient_kinds"]) <= {r_["kind"] for r_ in g["recipients"]}


def test_report_states_when_what_and_the_chain_heads(ledger, workload):
    """Generated time, parameters, time zone and the ledger's heads are part of every report."""
    r = report(ledger, workload.a_rich_subject())
    assert r.generated_at == "2026-03-21T08:00:00.000000Z" and r.time_zone == "UTC"
    assert r.parameters["as_of"] == "2026-03-20T12:00:00.000000Z" and r.parameters["lookback_years"] == 6
    assert [(h["topic"], h["partition"], h["offset"], h["chain_hash"]) for h in r.heads] == [
        (h.topic, h.partition, h.offset, h.chain_hash.hex()) for h in ledger.heads()]
    rows = list(csv.reader(io.StringIO(render(r, "csv"))))
    sections = {row[0] for row in rows[1:]}
    assert {"report", "accounting", "gdpr.purposes", "timeline"} <= sections
    assert sum(1 for row in rows if row[0] == "timeline") == len(r.timeline)


def test_as_of_gives_the_report_of_a_ledger_that_held_only_what_was_recorded_by_then(tmp_path, ledger, workload, seen,
                                                                                   delayed_subjects):
    """A report as of T equals one on a ledger filled with just the entries recorded by T."""
    short = fill_ledger(tmp_path / "short.db", seen)
    with Ledger.open(short.path) as other:
        for subject in delayed_subjects:
            for audience in ("subject", "auditor"):
                a = report(ledger, subject, audience).to_dict()
                b = build_report(other, subject, audience=audience, generated_at=GENERATED, as_of=AS_OF).to_dict()
                for part in ("timeline", "accounting", "gdpr", "notices", "parameters"):
                    assert a.get(part) == b.get(part), (subject, audience, part)


def test_html_is_one_self_contained_escaped_file(tmp_path, workload):
    """No scripts or external assets, a print stylesheet, and hostile text escaped."""
    share = next(e for e in workload.events if e["type"] == "DataShared")
    hostile = validate({**share, "source_service": "<script>alert(1)</script>",
                        "recipient": {**share["recipient"], "name": 'Evil & "Co" <img src=x onerror=alert(2)>'}})
    filled = fill_ledger(tmp_path / "hostile.db", [hostile])
    with Ledger.open(filled.path) as led:
        for audience in ("subject", "auditor"):
            html = render(build_report(led, hostile["subject_ids"][0], audience=audience), "html")
            assert html.startswith("<!DOCTYPE html>") and "@media print" in html
            assert "<script" not in html.lower() and "<img" not in html.lower()
            assert "&lt;script&gt;" in html and "Evil &amp; &quot;Co&quot;" in html
            assert not re.search(r"<[^>]*\s(src|href)\s*=|https?://|<link|@import", html)
            assert "UTC" in html
