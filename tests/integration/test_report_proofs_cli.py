"""`ledger report --proofs / --sign-key` and `ledger verify-report` end to end on a ledger the real ingest path wrote.

Pins: an auditor's report carries a receipt per line and verifies offline; a line edited afterwards
is named; entries beyond the latest checkpoint are refused with what to run; a subject's report
carries positions, checkpoints and a signature but no leaf data, and verifies only with its report
key; options that cannot be proved are refused with the option named.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fill import ingest_records, to_records

from ledger.dev.simulate import simulate
from ledger.wire.codec import default_codec
from ledger.wire.record import Record

ORIGIN = "ledger.test/audit"


def cli(*args, cwd=None):
    env = {**os.environ, "LEDGER_LOG_ORIGIN": ORIGIN}
    return subprocess.run([sys.executable, "-m", "ledger", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def work():
    w = simulate(seed=3, events=500, subjects=20)
    return w, list(to_records(w.events, codec=default_codec()))


@pytest.fixture()
def keys(tmp_path):
    for args in (("keys", "generate", ORIGIN, "--out", str(tmp_path / "keys")),
                 ("keys", "generate", "reports.test/r1", "--out", str(tmp_path / "keys"), "--report")):
        made = cli(*args)
        assert made.returncode == 0, made.stderr
    k = tmp_path / "keys"
    return {"log": k / "ledger.test_audit.key", "log_vkey": k / "ledger.test_audit.vkey",
            "report": k / "reports.test_r1.key", "report_vkey": k / "reports.test_r1.vkey"}


def busiest_subject(events) -> str:
    counts: dict[str, int] = {}
    for e in events.events:
        for s in e.get("subject_ids") or []:
            counts[s] = counts.get(s, 0) + 1
    return max(sorted(counts), key=counts.get)


@pytest.fixture()
def ledger(work, keys, tmp_path):
    events, records = work
    db = tmp_path / "ledger.db"
    ingest_records(db, records, batch=100)
    signed = cli("checkpoint", "--db", str(db), "--key", str(keys["log"]), "--no-publish")
    assert signed.returncode == 0, signed.stderr
    return db, busiest_subject(events)


def test_auditor_report_with_receipts_verifies_offline_and_names_an_edited_line(ledger, keys, tmp_path):
    """Every auditor line carries its receipt; verify-report accepts it, then names a line edited afterwards."""
    db, subject = ledger
    out = tmp_path / "auditor.json"
    made = cli("report", subject, "--audience", "auditor", "--proofs", "--db", str(db), "--output", str(out))
    assert made.returncode == 0, made.stderr
    doc = json.loads(out.read_text())
    assert doc["timeline"] and all(v["receipt"].startswith("c2sp.org/tlog-proof@v1\n") for v in doc["timeline"])
    checked = cli("verify-report", str(out), "--vkey", str(keys["log_vkey"]))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith(f"ok: auditor report on {subject}: {len(doc['timeline'])} of "
                                     f"{len(doc['timeline'])} lines' receipts verified")
    doc["timeline"][2]["occurred_at"] = "2020-01-01T00:00:00.000000Z"
    out.write_text(json.dumps(doc))
    failed = cli("verify-report", str(out), "--vkey", str(keys["log_vkey"]))
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert f"FAILED: timeline[2] (event {doc['timeline'][2]['event_id']}): field occurred_at is" in failed.stdout


def test_entries_beyond_the_latest_checkpoint_are_refused(work, keys, tmp_path):
    """A report with proofs over entries no checkpoint covers yet fails, saying to run ledger checkpoint."""
    events, records = work
    db = tmp_path / "ledger.db"
    ingest_records(db, records[:200], batch=100)
    assert cli("checkpoint", "--db", str(db), "--key", str(keys["log"]), "--no-publish").returncode == 0
    ingest_records(db, records[200:], batch=100)
    refused = cli("report", busiest_subject(events), "--audience", "auditor", "--proofs", "--db", str(db))
    assert refused.returncode == 1 and refused.stdout == ""
    assert "no checkpoint covers it yet; run `ledger checkpoint --key FILE` first" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_subject_report_is_signed_points_at_positions_and_hands_out_no_leaf_data(ledger, keys, tmp_path):
    """The subject's report: log positions under the signed checkpoints it carries, one signature, no receipts."""
    db, subject = ledger
    out = tmp_path / "subject.json"
    made = cli("report", subject, "--sign-key", str(keys["report"]), "--db", str(db), "--output", str(out))
    assert made.returncode == 0, made.stderr
    text = out.read_text()
    doc = json.loads(text)
    assert "c2sp.org/tlog-proof" not in text and "leaf_hash" not in text
    assert all(set(v["log"]) == {"origin", "index"} for v in doc["timeline"])
    assert {v["log"]["origin"] for v in doc["timeline"]} == {c.split("\n")[0] for c in doc["checkpoints"]}
    assert doc["report_signature"].startswith(f"ledger.report/v1\n{subject}\n{doc['generated_at']}\n")
    ok = cli("verify-report", str(out), "--vkey", str(keys["log_vkey"]), "--report-vkey", str(keys["report_vkey"]))
    assert ok.returncode == 0, ok.stdout
    assert "signed by report key reports.test/r1+" in ok.stdout
    unsigned = cli("verify-report", str(out), "--vkey", str(keys["log_vkey"]))
    assert unsigned.returncode == 1 and "--report-vkey" in unsigned.stdout
    doc["timeline"][0]["log"]["index"] = 10**9
    out.write_text(json.dumps(doc, indent=1))
    bad = cli("verify-report", str(out), "--vkey", str(keys["log_vkey"]), "--report-vkey", str(keys["report_vkey"]))
    assert bad.returncode == 1
    assert "FAILED: timeline[0]" in bad.stdout and "beyond its checkpoint" in bad.stdout
    assert "FAILED: report signature: the report's content does not match what was signed" in bad.stdout


def test_auditor_report_can_be_signed_too(ledger, keys, tmp_path):
    """--sign-key on an auditor's report adds receipts and the signature; both check."""
    db, subject = ledger
    out = tmp_path / "signed-auditor.json"
    assert cli("report", subject, "--audience", "auditor", "--sign-key", str(keys["report"]), "--db", str(db),
               "--output", str(out)).returncode == 0
    ok = cli("verify-report", str(out), "--vkey", str(keys["log_vkey"]), "--report-vkey", str(keys["report_vkey"]))
    assert ok.returncode == 0 and "signed by report key" in ok.stdout, ok.stdout
    unchecked = cli("verify-report", str(out), "--vkey", str(keys["log_vkey"]))
    assert unchecked.returncode == 0 and "note: the report is signed; its signature was not checked" in unchecked.stdout


@pytest.mark.parametrize("extra, message", [
    (("--audience", "auditor", "--proofs", "--format", "html"), "--proofs: proofs are carried by the JSON report only"),
    (("--proofs",), "--proofs: a subject report holds no receipts"),
    (("--sign-key", "LOGKEY"), "--sign-key: the key 'ledger.test/audit' is named like the log"),
])
def test_options_that_cannot_be_proved_are_refused(ledger, keys, extra, message):
    """html with proofs, a subject's proofs without a signature, the log key as report key: refused by name."""
    db, subject = ledger
    extra = tuple(str(keys["log"]) if a == "LOGKEY" else a for a in extra)
    refused = cli("report", subject, "--db", str(db), *extra)
    assert refused.returncode == 1 and message in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_report_key_may_not_take_the_log_name(tmp_path):
    """keys generate --report refuses the log origin (or a prefix of it) as the key's name."""
    refused = cli("keys", "generate", "ledger.test", "--out", str(tmp_path), "--report")
    assert refused.returncode == 1 and "would also verify checkpoints" in refused.stderr
    assert not list(tmp_path.iterdir())


def test_an_earlier_identical_copy_proves_recorded_at(work, keys, tmp_path):
    """An event whose identical copy was recorded earlier shows that time, proved by the copy's own receipt."""
    events, records = work
    db = tmp_path / "ledger.db"
    subject = busiest_subject(events)
    target = next(r for r in records if r.key == subject.encode() and r.topic == "ledger.access")
    other = (target.partition + 1) % 3
    next_offset = 1 + max(r.offset for r in records if (r.topic, r.partition) == (target.topic, other))
    copy = Record(target.topic, other, next_offset, target.timestamp - 5000, target.key, target.value, target.headers)
    ingest_records(db, [*records, copy], batch=100)
    assert cli("checkpoint", "--db", str(db), "--key", str(keys["log"]), "--no-publish").returncode == 0
    out = tmp_path / "auditor.json"
    assert cli("report", subject, "--audience", "auditor", "--proofs", "--db", str(db),
               "--output", str(out)).returncode == 0
    doc = json.loads(out.read_text())
    with_copy = [v for v in doc["timeline"] if "earliest_copy_receipt" in v]
    assert len(with_copy) == 1
    ok = cli("verify-report", str(out), "--vkey", str(keys["log_vkey"]))
    assert ok.returncode == 0, ok.stdout
    del with_copy[0]["earliest_copy_receipt"]
    out.write_text(json.dumps(doc))
    bad = cli("verify-report", str(out), "--vkey", str(keys["log_vkey"]))
    assert bad.returncode == 1 and "recorded_at is" in bad.stdout


def test_verify_report_bad_input_is_a_clean_error(tmp_path, keys):
    """A file that is not a report, or cannot be read, is one clear line and exit 1."""
    junk = tmp_path / "junk.json"
    junk.write_text('{"kind": "subject-access-report", "kind": 2}')
    bad = cli("verify-report", str(junk), "--vkey", str(keys["log_vkey"]))
    assert bad.returncode == 1 and "the key 'kind' appears twice" in bad.stdout and "Traceback" not in bad.stderr
    missing = cli("verify-report", str(tmp_path / "nope.json"), "--vkey", str(keys["log_vkey"]))
    assert missing.returncode == 1 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr


def test_verify_report_tamper_files_through_the_cli():
    """The committed tamper cases through the real command: exit 0 for the good ones, 1 naming the line."""
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data" / "tamper_report"
    for case in json.loads((data / "cases.json").read_text()):
        args = ["verify-report", str(data / case["file"]), "--vkey", str(data / "log.vkey"),
                "--witness-vkey", str(data / "witness.vkey"), "--min-witnesses", "1"]
        if case["file"].startswith("subject"):
            args += ["--report-vkey", str(data / "report.vkey")]
        done = cli(*args)
        assert "Traceback" not in done.stderr
        if case["match"] is None:
            assert done.returncode == 0 and done.stdout.startswith("ok: "), done.stdout
        else:
            assert done.returncode == 1 and f"FAILED: {case['match']}" in done.stdout, (case, done.stdout)


def test_report_and_verify_report_help_have_examples():
    """verify-report and the report's proof options document themselves with an example."""
    helped = cli("verify-report", "--help")
    assert helped.returncode == 0 and "examples:\n  ledger verify-report" in helped.stdout
    report = cli("report", "--help")
    assert "--audience auditor --proofs" in report.stdout and "--sign-key" in report.stdout


def test_verify_report_opens_a_customers_lines_with_receipts(ledger, keys, tmp_path):
    """--open checks each line of a signed subject report against the record a receipt proves at its position."""
    db, subject = ledger
    signed, proved = tmp_path / "subject.json", tmp_path / "auditor.json"
    assert cli("report", subject, "--sign-key", str(keys["report"]), "--db", str(db),
               "--output", str(signed)).returncode == 0
    assert cli("report", subject, "--audience", "auditor", "--proofs", "--db", str(db),
               "--output", str(proved)).returncode == 0
    doc = json.loads(signed.read_text())
    one = tmp_path / "one.tlog-proof"
    one.write_text(cli("prove", doc["timeline"][0]["event_id"], "--db", str(db)).stdout)
    base = ("verify-report", str(signed), "--vkey", str(keys["log_vkey"]), "--report-vkey", str(keys["report_vkey"]))
    ok = cli(*base, "--open", str(proved), "--open", str(one))
    assert ok.returncode == 0, ok.stdout
    assert f"note: {len(doc['timeline'])} line(s) opened against receipts" in ok.stdout
    doc["timeline"][0]["purpose"] = "marketing.advertising"
    signed.write_text(json.dumps(doc))
    bad = cli("verify-report", str(signed), "--vkey", str(keys["log_vkey"]), "--open", str(one))
    assert bad.returncode == 1 and "FAILED: timeline[0]" in bad.stdout
    assert "purpose is 'marketing.advertising'" in bad.stdout
    wrong = cli("verify-report", str(proved), "--vkey", str(keys["log_vkey"]), "--open", str(one))
    assert wrong.returncode == 1 and "--open checks a subject report" in wrong.stdout
