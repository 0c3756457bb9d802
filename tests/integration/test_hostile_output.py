"""Outputs that must not attack their reader: CSV formulas, terminal escapes, invisible ids, "you" for someone else.

Every test here failed on the code before issue 12. The events come from
:mod:`hostile` (every free-text field a payload); the commands run as
subprocesses, as an auditor would run them, and through the Python API.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import unicodedata

import pytest
from fill import fill_ledger
from hostile import FORMULA_STARTS, OTHER, VICTIM, hostile_events
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.audit.report import build_report, render
from ledger.audit.report.inert import fit, graphemes, terminal_text, width
from ledger.audit.report.tabular import Column, write_table
from ledger.model import events
from ledger.store import Ledger

# Columns that can carry text a producer chose (the rest are enums, codes, times, counts, UUIDs).
REPORT_TEXT_COLUMNS = {"name", "value", "actor", "recipient", "recipient_address", "basis", "safeguard", "order_ref"}
EVENT_TEXT_COLUMNS = {"actor_id", "actor_role", "actor_organization", "justification_reason_code",
                      "justification_ticket", "justification_note", "request_authority", "request_case_ref",
                      "recipient_id", "recipient_name", "subject_ids", "source_service"}
SUMMARY_TEXT_COLUMNS = {"recipient_id", "recipient_name"}
OBLIGATION_TEXT_COLUMNS = {"subject_id", "recipient", "request_id", "order_ref"}


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> str:
    return str(fill_ledger(tmp_path_factory.mktemp("hostile") / "hostile.db", hostile_events()).path)


def ledger_cmd(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ledger", *argv], capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def assert_csv_is_inert(text: str, text_columns: set[str]) -> None:
    """No cell a spreadsheet would run, no row a bare CR could split; hostile text reached every text column."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    assert body
    for row in body:
        assert len(row) == len(header)
        for name, value in zip(header, row):
            assert not value.startswith(FORMULA_STARTS), (name, value)
    # A reader that splits on every CR or LF outside quotes sees the same number of records.
    reached = {name for row in body for name, value in zip(header, row) if value.startswith("'")}
    assert text_columns <= reached, text_columns - reached


def test_report_csv_neutralises_formulas_in_every_column(hostile_db):
    """report --format csv: every cell that begins with = + - @ tab CR (or full-width =+-@) starts with a quote."""
    for audience in ("subject", "auditor"):
        done = ledger_cmd("report", VICTIM, "--db", hostile_db, "--format", "csv", "--audience", audience)
        assert done.returncode == 0, done.stderr
        # the subject sees actors as "EMPLOYEE / role / organisation" (an enum first) and no order refs
        expected = REPORT_TEXT_COLUMNS if audience == "auditor" else REPORT_TEXT_COLUMNS - {"order_ref", "actor"}
        assert_csv_is_inert(done.stdout.decode(), expected)


@pytest.mark.parametrize("argv, columns", [
    (["who-saw", VICTIM], EVENT_TEXT_COLUMNS),
    (["disclosures"], EVENT_TEXT_COLUMNS),
    (["disclosures", "--summary"], SUMMARY_TEXT_COLUMNS),
    (["accesses", "--actor", "=emp-1007"], EVENT_TEXT_COLUMNS),
    (["obligations"], OBLIGATION_TEXT_COLUMNS - {"order_ref"}),
])
def test_query_csv_neutralises_formulas_in_every_column(hostile_db, argv, columns):
    """who-saw, disclosures, accesses and obligations --format csv: no cell a spreadsheet would run."""
    done = ledger_cmd(*argv, "--db", hostile_db, "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert_csv_is_inert(done.stdout.decode(), columns)


def test_a_bare_cr_inside_a_cell_is_quoted_so_it_cannot_start_a_row(hostile_db):
    """A CR in free text followed by '=...' would be a new row with a live formula if the cell were unquoted."""
    out = ledger_cmd("who-saw", VICTIM, "--db", hostile_db, "--format", "csv").stdout.decode()
    records = out.split("\r\n")
    for record in records:
        # outside quoted cells no CR may appear: strip quoted sections and look.
        outside = "".join(part for i, part in enumerate(record.split('"')) if i % 2 == 0)
        assert "\r" not in outside and "\n" not in outside


def _invisible(text: str) -> list[str]:
    return [ch for ch in text if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]


@pytest.mark.parametrize("argv", [
    ["who-saw", VICTIM], ["who-saw", OTHER], ["disclosures"], ["disclosures", "--summary"],
    ["accesses", "--actor", "=emp-1007"], ["obligations"],
])
def test_tables_show_control_and_format_characters_as_escapes(hostile_db, argv):
    """Table output holds no ESC, BEL, CR, C1, DEL or Cf character: each is printed as \\x1b, \\u202e..."""
    done = ledger_cmd(*argv, "--db", hostile_db)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode("utf-8")
    assert not _invisible(out), sorted(set(_invisible(out)))
    assert not _invisible(done.stderr.decode("utf-8"))
    if argv[0] != "obligations":
        assert "\\x1b" in out or "…" in out


def test_json_outputs_escape_c1_and_format_characters_losslessly(hostile_db):
    """who-saw and report --format json: C1, DEL and Cf are \\u escapes; parsing gives back what was sent."""
    sent = {e["event_id"]: e for e in hostile_events()}
    done = ledger_cmd("who-saw", VICTIM, "--db", hostile_db, "--format", "json")
    text = done.stdout.decode()
    assert not _invisible(text)
    for row in json.loads(text):
        assert row["actor"]["role"] == sent[row["event_id"]]["actor"]["role"]
    done = ledger_cmd("report", VICTIM, "--db", hostile_db, "--audience", "auditor")
    assert not _invisible(done.stdout.decode()) and json.loads(done.stdout)


def test_free_text_is_kept_exactly_as_sent(hostile_db):
    """Hostile free text is evidence: the ledger stores and returns it unchanged (it is only made inert on output)."""
    from ledger.audit.query import who_saw

    sent = {e["event_id"]: events.to_json(e) for e in hostile_events()}
    with Ledger.open(hostile_db) as led:
        rows = list(who_saw(led, VICTIM))
    assert rows
    for row in rows:
        original = sent[row["event_id"]]
        assert row["actor"] == original["actor"]
        assert row.get("justification") == original.get("justification")
        assert row.get("recipient") == original.get("recipient")


# --- cutting cells ---------------------------------------------------------------------------------------

HOSTILE_TEXT = st.lists(st.sampled_from(["a", "é", "e\u0301", "\u0301", "日", "\x1b", "[", "2", "J", "\x07", "\r",
                                        "\n", "\x9b", "\u202e", "\u200b", "\u200d", "\U0001f1e9", "\U0001f1ea",
                                        "\U0001f44d", "\U0001f3fd", "\ufe0f", "\\", "x", "\U000e0041", "\x7f"]),
                        max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=HOSTILE_TEXT, columns=st.integers(min_value=1, max_value=35))
def test_a_cut_cell_is_whole_clusters_and_never_an_open_escape(text, columns):
    """fit() cuts by grapheme cluster: the kept part is a run of whole clusters, at most ``columns`` wide."""
    shown = terminal_text(text)
    assert not _invisible(shown.replace("\n", ""))
    out = fit(shown, columns)
    assert width(out) == columns
    body = out.rstrip(" ")
    if body.endswith("…") and width(shown) > columns:
        kept = body[:-1]
        clusters = graphemes(shown)
        joined = ""
        for c in clusters:
            if len(joined) >= len(kept):
                break
            joined += c
        assert joined == kept  # a prefix of whole clusters: no half escape, no mark without its base


def test_a_long_hostile_cell_after_the_first_page_is_cut_without_breaking_an_escape():
    """Rows after the first page are cut at the page's width; the cut never leaves half an escape or a raw ESC."""
    col = [Column("x", "X", lambda r: r)]
    rows = ["short"] * 200 + ["\x1b]8;;https://evil.invalid/\x07" * 3]
    buf = io.StringIO()
    write_table(rows, col, buf)
    last = buf.getvalue().splitlines()[-1]
    assert "\x1b" not in last and "\x07" not in last
    assert last == "\\x1b…"  # five columns, as "short": the whole escape, then the cut mark


# --- invisible identifiers -------------------------------------------------------------------------------

INVISIBLE = ["\u009b", "\u202e", "\u200b", "\u0085", "\ufeff", "\u2060", "\u200d", "\u2066", "\U000e0001",
             "\x1b", "\x00"]
ID_FIELDS = [("subject_ids", "subject_ids[0]"), ("actor.id", "actor.id"), ("recipient.id", "recipient.id"),
             ("request.id", "request.id"), ("source_service", "source_service"),
             ("correlation_id", "correlation_id"), ("trace_id", "trace_id"), ("recorded_by", "recorded_by"),
             ("reviewed_by", "reviewed_by")]


def _with_id(event: dict, field: str, value: str) -> dict:
    event = events.to_json(event)
    if field == "subject_ids":
        event["subject_ids"] = [value]
    elif "." in field:
        outer, inner = field.split(".")
        event[outer] = {**event[outer], inner: value}
    else:
        event[field] = value
    return event


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("field, where", ID_FIELDS)
def test_identifiers_with_control_or_format_characters_are_refused_naming_the_field(field, where, char):
    """Every id field refuses Unicode Cc and Cf: 'emp\\u200b-1007' must not pass for 'emp-1007'."""
    disclosure = hostile_events()[2]
    with pytest.raises(events.ValidationError, match=rf"{where.replace('[', '.').replace(']', '.')}: .*U\+"):
        events.validate(_with_id(disclosure, field, f"emp{char}-1007"))


def test_emit_refuses_an_invisible_actor_id_through_the_cli(tmp_path):
    """`ledger emit`: a line whose actor id has U+200B is one 'line N: actor.id: ...' error; nothing is sent."""
    event = _with_id(hostile_events()[0], "actor.id", "emp\u200b-1007")
    del event["event_id"]
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event) + "\n", encoding="utf-8")
    done = ledger_cmd("emit", str(path), "--bootstrap-servers", "127.0.0.1:1")
    err = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in err
    assert err.startswith("line 1: DataAccessed.actor.id: ") and "U+200B" in err
    assert done.stdout.decode().strip() == "sent 0, rejected 1"


@pytest.mark.parametrize("char", ["\u200b", "\u202e", "\u009b", "\u0085"], ids=lambda c: f"U+{ord(c):04X}")
def test_a_raw_record_with_an_invisible_id_is_rejected_by_the_writer(tmp_path, char):
    """Avro bytes written straight to a topic with an invisible actor id are kept 'rejected', never indexed."""
    from io import BytesIO

    from builders import CODEC, make_event, make_record, open_writer
    from fastavro import schemaless_writer

    event = make_event(1)
    version = CODEC.newest("DataAccessed")
    out = BytesIO()
    out.write(b"\xc3\x01" + version.fingerprint)
    schemaless_writer(out, version.parsed, {**event, "actor": {**event["actor"], "id": f"emp{char}-1007"}})
    ledger, ingestor = open_writer(tmp_path / "l.db")
    try:
        ingestor.commit(ingestor.prepare([make_record(out.getvalue(), etype="DataAccessed")]))
        entry = ledger.entry_at("ledger.access", 0, 0)
        assert entry["status"] == "rejected" and "actor.id" in entry["reason"] and f"U+{ord(char):04X}" in entry["reason"]
        assert ledger.conn.execute("SELECT count(*) FROM event_ids").fetchone() == (0,)
    finally:
        ledger.close()


# --- "you" only for the customer's own actions ---------------------------------------------------------------

def _stranger_events():
    """An access and a share on the victim by another customer, and one share the victim asked for."""
    from samples import sample

    stranger = {"id": "cust-stranger-99", "type": "SUBJECT"}
    me = {"id": "cust-victim-13", "type": "SUBJECT"}
    access = {**sample("DataAccessed"), "actor": stranger, "subject_ids": ["cust-victim-13"],
              "purpose": "marketing.email", "access_type": "VIEW"}
    share = {**sample("DataShared"), "actor": stranger, "subject_ids": ["cust-victim-13"],
             "purpose": "marketing.advertising", "occurred_at": "2026-01-03T00:00:00Z"}
    own = {**sample("DataShared"), "actor": me, "subject_ids": ["cust-victim-13"],
           "purpose": "marketing.advertising", "occurred_at": "2026-01-04T00:00:00Z"}
    return [events.validate(e) for e in (access, share, own)]


def test_another_customer_acting_is_not_you_and_their_share_is_accounted(tmp_path):
    """A SUBJECT actor with another id is 'another customer' (never 'You'), and the share counts in 164.528."""
    access, share, own = _stranger_events()
    filled = fill_ledger(tmp_path / "you.db", [access, share, own])
    with Ledger.open(filled.path) as led:
        for audience in ("subject", "auditor"):
            r = build_report(led, "cust-victim-13", audience=audience)
            by_id = {i["event_id"]: i for i in r.timeline}
            assert by_id[access["event_id"]]["own_action"] is False
            assert by_id[share["event_id"]]["own_action"] is False
            assert by_id[own["event_id"]]["own_action"] is True
            accounted = {i for g in r.accounting["groups"] for i in g["event_ids"]}
            assert share["event_id"] in accounted and own["event_id"] not in accounted
            said = re.findall(r"<div>([^<]*)</div>", render(r, "html"))
            mine = "You shared" if audience == "subject" else "The customer (cust-victim-13) shared"
            assert [s for s in said if s.startswith(("You", "The customer"))] == [mine + " email address with ACME Payments"]
            assert sum(s.startswith("Another customer") for s in said) == 2
            rows = list(csv.DictReader(io.StringIO(render(r, "csv"), newline="")))
            actors = {row["event_id"]: row["actor"] for row in rows if row["section"] == "timeline"}
            assert "another customer" in actors[share["event_id"]] and "this customer" in actors[own["event_id"]]
