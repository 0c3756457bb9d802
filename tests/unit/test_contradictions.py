"""A repeated event_id with other content: visible in queries, `ledger conflicts`, verify and the auditor report.

The issue's case: a LegalDisclosure that reuses a DataAccessed's event_id was
invisible to every query. Here the access touches cust-0001/cust-0002, the
disclosure cust-0900, and both customers' answers show the pair.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from builders import START, make_event, make_record, open_writer

from ledger.audit.query import contradictions, disclosures, who_saw
from ledger.audit.report import build_report
from ledger.cli import main
from ledger.store import Ledger

ACCESS = make_event(1)
REUSED = make_event(7, "LegalDisclosure", event_id=ACCESS["event_id"], subject_ids=["cust-0900"])


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "ledger.db"
    ledger, ingestor = open_writer(path)
    ingestor.ingest([make_record(ACCESS, timestamp=1_000), make_record(ACCESS, offset=1, timestamp=1_500),
                     make_record(REUSED, timestamp=2_000)])
    ledger.close()
    return path


def test_both_customers_see_the_contradiction(path):
    """The entry's customers get it with `contradicted_by`; the contradicting record's customers get that record
    with `contradicts`; the byte-identical duplicate stays invisible."""
    with Ledger.open(path) as ledger:
        (access,) = who_saw(ledger, "cust-0001")
        (claim,) = who_saw(ledger, "cust-0900")
        assert list(who_saw(ledger, "cust-0900", as_of="1970-01-01T00:00:01.999Z")) == []
    assert access["type"] == "DataAccessed" and "contradicts" not in access
    (ref,) = access["contradicted_by"]
    assert (ref["seq"], ref["topic"], ref["partition"], ref["offset"], ref["type"]) == (
        3, "ledger.disclosure", 0, 0, "LegalDisclosure")
    assert ref["fields"][:2] == ["type", "access_type"] and "subject_ids" in ref["fields"]
    assert ref["recorded_at"] == "1970-01-01T00:00:02.000000Z"
    assert claim["type"] == "LegalDisclosure" and claim["event_id"] == ACCESS["event_id"]
    assert claim["contradicts"]["seq"] == 1 and claim["contradicts"]["fields"] == ref["fields"]
    assert "contradicted_by" not in claim


def test_contradicted_by_respects_as_of(path):
    """As the ledger stood before the contradicting record was recorded, the entry was not yet contradicted."""
    with Ledger.open(path) as ledger:
        (access,) = who_saw(ledger, "cust-0001", as_of="1970-01-01T00:00:01.500Z")
    assert "contradicted_by" not in access


def test_contradictions_lists_every_pair(path):
    """ledger.query.contradictions: one row per contradicting record, with the entry, the fields and both places."""
    with Ledger.open(path) as ledger:
        (pair,) = contradictions(ledger)
        assert list(contradictions(ledger, as_of="1970-01-01T00:00:01.999Z")) == []
    assert pair["event_id"] == ACCESS["event_id"]
    assert pair["entry"] == {"seq": 1, "topic": "ledger.access", "partition": 0, "offset": 0, "type": "DataAccessed",
                             "occurred_at": "2026-03-01T00:01:00.000000Z", "recorded_at": "1970-01-01T00:00:01.000000Z"}
    assert pair["contradiction"]["seq"] == 3 and pair["contradiction"]["type"] == "LegalDisclosure"
    assert pair["fields"][0] == "type"


def test_conflicts_command_in_every_format(path, capsys):
    """`ledger conflicts` prints the pairs as json (the library's rows), csv and a table."""
    assert main(["conflicts", "--db", str(path), "--format", "json"]) == 0
    with Ledger.open(path) as ledger:
        assert json.loads(capsys.readouterr().out) == list(contradictions(ledger))
    assert main(["conflicts", "--db", str(path), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["event_id"], r["entry_at"], r["at"], r["type"]) for r in rows] == [
        (ACCESS["event_id"], "ledger.access[0]@0", "ledger.disclosure[0]@0", "LegalDisclosure")]
    assert main(["conflicts", "--db", str(path)]) == 0
    table = capsys.readouterr().out
    assert "DIFFERING FIELDS" in table and ACCESS["event_id"] in table


def test_who_saw_table_marks_both_rows(path, capsys):
    """The table says which row contradicts which (json and csv carry the references)."""
    assert main(["who-saw", "cust-0900", "--db", str(path)]) == 0
    assert "[contradicts seq 1]" in capsys.readouterr().out
    assert main(["who-saw", "cust-0001", "--db", str(path)]) == 0
    assert "[contradicted]" in capsys.readouterr().out


def test_verify_counts_contradictions(path, capsys):
    """verify's summary says how many contradictions the ledger holds and how to list them."""
    assert main(["verify", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "contradictions: 1 record reuses an event_id with other content" in out and "ok: 3 entries" in out


def test_auditor_report_shows_the_pair_and_counts_nothing_from_the_claim(path):
    """Auditor reports of both customers show it; the claim is not an accountable disclosure; subject reports
    keep to the ledger's events (no references, no claim)."""
    with Ledger.open(path) as ledger:
        a = build_report(ledger, "cust-0001", audience="auditor", generated_at=START).to_dict()
        b = build_report(ledger, "cust-0900", audience="auditor", generated_at=START).to_dict()
        b_subject = build_report(ledger, "cust-0900", audience="subject", generated_at=START).to_dict()
        a_subject = build_report(ledger, "cust-0001", audience="subject", generated_at=START).to_dict()
        assert list(disclosures(ledger, recipient="rcpt-police"))[0]["contradicts"]["seq"] == 1
    assert a["timeline"][0]["contradicted_by"][0]["seq"] == 3
    assert [(t["type"], t["contradicts"]["seq"]) for t in b["timeline"]] == [("LegalDisclosure", 1)]
    assert b["accounting"]["disclosures"] == 0 and b["gdpr"]["recipients"] == []
    assert b_subject["timeline"] == [] and "contradicted_by" not in a_subject["timeline"][0]


def test_auditor_html_report_names_the_contradiction(path):
    """The auditor's HTML timeline says which record contradicts which; the customer's does not."""
    from ledger.audit.report import render

    with Ledger.open(path) as ledger:
        html = render(build_report(ledger, "cust-0001", audience="auditor", generated_at=START), "html")
        subject = render(build_report(ledger, "cust-0001", audience="subject", generated_at=START), "html")
    assert "contradicted by LegalDisclosure seq 3 (ledger.disclosure[0]@0), differing in type, " in html
    assert "contradicted by" not in subject
