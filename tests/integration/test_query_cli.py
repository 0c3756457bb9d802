"""The query and report commands: same answers as the library, streamed formats, clean errors, no Kafka import."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from fill import cached_ledger, workload  # noqa: F401 (fixture)

from ledger.audit import query
from ledger.audit.obligations import obligations
from ledger.cli import main
from ledger.store import Ledger

AS_OF = "2026-03-01T09:00:00+01:00"


@pytest.fixture(scope="module")
def db(workload) -> str:
    return str(cached_ledger(workload, ("query",)).path)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_who_saw_json_is_one_array_of_the_librarys_rows(capsys, db, workload):
    """who-saw --format json prints exactly what who_saw yields, as one JSON array."""
    subject = workload.a_rich_subject()
    code, out, _ = run(capsys, "who-saw", subject, "--db", db, "--format", "json", "--as-of", AS_OF,
                       "--since", "2026-01-15T00:00:00Z")
    assert code == 0
    with Ledger.open(db) as ledger:
        expected = list(query.who_saw(ledger, subject, as_of=AS_OF, since="2026-01-15T00:00:00Z"))
    assert json.loads(out) == expected and expected


def test_who_saw_csv_and_table_have_one_line_per_row(capsys, db, workload):
    """CSV has a header plus a row per event; the table a header, a rule and a line per event."""
    subject = workload.a_rich_subject()
    n = len(workload.touching(subject))
    _, out, _ = run(capsys, "who-saw", subject, "--db", db, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == n and rows[0]["event_id"] == workload.touching(subject)[0]["event_id"]
    assert rows[0]["data_category_labels"]
    _, out, _ = run(capsys, "who-saw", subject, "--db", db)
    lines = out.splitlines()
    assert lines[0].startswith("TIME (UTC)") and len(lines) == n + 2
    assert all(line.rstrip().endswith(e["event_id"]) for line, e in zip(lines[2:], workload.touching(subject)))


def test_an_empty_answer_is_an_empty_array_or_a_note(capsys, db):
    """No rows: json prints [], the table says so."""
    assert json.loads(run(capsys, "who-saw", "nobody", "--db", db, "--format", "json")[1]) == []
    assert "(no rows)" in run(capsys, "who-saw", "nobody", "--db", db)[1]


def test_disclosures_and_accesses_commands_answer_like_the_library(capsys, db, workload):
    """disclosures (rows and --summary) and accesses print the library's answers."""
    _, out, _ = run(capsys, "disclosures", "--db", db, "--kind", "REGULATOR", "--format", "json")
    assert [r["event_id"] for r in json.loads(out)] == [
        e["event_id"] for e in workload.disclosed_to(recipient_kind="REGULATOR")]
    _, out, _ = run(capsys, "disclosures", "--db", db, "--summary", "--format", "json")
    summary = json.loads(out)
    assert sum(g["events"] for g in summary) == len(workload.disclosed_to())
    _, out, _ = run(capsys, "accesses", "--db", db, "--actor", "svc-billing", "--format", "csv",
                    "--until", "2026-02-01T00:00:00Z")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["event_id"] for r in rows] == [
        e["event_id"] for e in workload.by_actor("svc-billing", until=datetime(2026, 2, 1, tzinfo=timezone.utc))]


def test_obligations_command_prints_notices_and_anomalies(capsys, db):
    """obligations --format json carries the notices as the library judges them, and the anomalies."""
    code, out, err = run(capsys, "obligations", "--db", db, "--as-of", AS_OF, "--format", "json")
    doc = json.loads(out)
    with Ledger.open(db) as ledger:
        notices, anomalies = obligations(ledger, as_of=AS_OF)
        assert doc["notices"] == [n.as_dict() for n in notices]
    assert doc["anomalies"] == anomalies and anomalies
    assert doc["time_zone"] == "UTC" and doc["judged_at"] == "2026-03-01T08:00:00.000000Z"
    _, out, err = run(capsys, "obligations", "--db", db, "--as-of", AS_OF, "--overdue", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and all(r["overdue"] == "true" for r in rows)
    assert "anomaly: notice_without_disclosure" in err


def test_report_command_writes_html_to_a_file(capsys, db, workload, tmp_path):
    """report --format html --output FILE writes one HTML document; json goes to stdout."""
    target = tmp_path / "r.html"
    code, out, err = run(capsys, "report", workload.a_rich_subject(), "--db", db, "--format", "html",
                         "--output", str(target))
    assert code == 0 and out == "" and "wrote" in err
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    _, out, _ = run(capsys, "report", workload.a_rich_subject(), "--db", db, "--audience", "auditor",
                    "--as-of", AS_OF, "--exclude-purpose", "marketing", "--lookback-years", "1")
    doc = json.loads(out)
    assert doc["audience"] == "auditor" and doc["parameters"]["accounting_rules"]["excluded_purposes"] == ["marketing"]
    assert all(not g["purpose"].startswith("marketing") for g in doc["accounting"]["groups"])


def test_bad_input_gives_one_clean_error_line(capsys, db, tmp_path):
    """A time without offset, an unknown kind or a missing ledger file: exit 1 and a message naming the problem."""
    code, _, err = run(capsys, "who-saw", "x", "--db", db, "--until", "2026-01-01")
    assert code == 1 and "--until" in err and "offset" in err
    code, _, err = run(capsys, "disclosures", "--db", db, "--kind", "BANK")
    assert code == 1 and "--kind" in err
    code, _, err = run(capsys, "obligations", "--db", str(tmp_path / "missing.db"))
    assert code == 1 and "no ledger file" in err


def test_read_only_commands_never_import_kafka(db, workload):
    """Starting the CLI and answering who-saw and report loads neither kafka nor fastavro."""
    code = (
        "import sys, io, contextlib\n"
        "from ledger.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['who-saw', {workload.a_rich_subject()!r}, '--db', {db!r}, '--format', 'json']) == 0\n"
        f"    assert main(['report', {workload.a_rich_subject()!r}, '--db', {db!r}, '--format', 'html']) == 0\n"
        f"    assert main(['obligations', '--db', {db!r}]) == 0\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('kafka', 'fastavro')]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_reader_closing_the_pipe_ends_the_command_quietly(db, workload):
    """`ledger who-saw ... | head -1` exits 0 without a traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "ledger", "who-saw", workload.a_rich_subject(), "--db", db],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in err
