"""Findings read from a ledger file (ledger.audit.findings.recorded, `ledger findings`).

The policy in force is the one the ledger recorded (a PolicyPublished entry):
the findings over a ledger equal the evaluator's over the same events and the
simulator's oracle, are the same in every partition order, switch policy at
a later PolicyPublished's recorded time, and an absent or refused policy is
an error (exit 2), never an empty "nothing broken".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fill import fill_ledger

from ledger.audit.findings import current
from ledger.audit.findings.recorded import judge_ledger
from ledger.cli import main
from ledger.dev.simulate import simulate
from ledger.errors import PolicyError
from ledger.model import events as ev
from ledger.model.policy import load, policy_of, published_fields
from ledger.store import Ledger

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
TEXT = EXAMPLE.read_text(encoding="utf-8")
ADMIN = {"id": "dpo-1", "type": "EMPLOYEE", "role": None}


def published(text: str, at: datetime) -> dict:
    return ev.validate({"type": "PolicyPublished", "occurred_at": at,
                        **published_fields(load_text(text), text, ADMIN)})


def load_text(text: str):
    from ledger.model.policy import loads

    return loads(text, "test.toml")


@pytest.fixture(scope="module")
def month():
    return simulate(seed=3, events=4000, subjects=150)


def key(f) -> tuple:
    return (f.rule, f.kind, f.event_ids[0], f.subjects)


def _fill(tmp_path, events, by_partition=False):
    return fill_ledger(tmp_path / ("p.db" if by_partition else "l.db"), events, by_partition=by_partition).path


def test_a_policy_published_event_round_trips_to_the_same_policy():
    """The event carries the file verbatim; the policy rebuilt from it has the file's SHA-256 and version."""
    e = published(TEXT, datetime(2026, 1, 1, tzinfo=UTC))
    p = policy_of(e)
    assert p.sha256 == load(EXAMPLE).sha256 == e["policy_sha256"] and ev.event_key(e) == p.name.encode()
    assert "subject_ids" not in e


def test_a_digest_that_is_not_the_texts_is_refused():
    """A PolicyPublished whose policy_sha256 does not match policy_toml is not an event: findings would name
    a policy nobody can reproduce."""
    e = ev.to_json(published(TEXT, datetime(2026, 1, 1, tzinfo=UTC)))
    e["policy_toml"] += "\n# changed\n"
    with pytest.raises(ev.ValidationError, match="policy_sha256"):
        ev.validate(e)


def test_ledger_findings_equal_the_oracle_and_every_partition_order(tmp_path, month):
    """With the policy recorded before the month, the ledger's findings equal the oracle, and a ledger
    written partition by partition gives the same finding ids."""
    start = min(e["occurred_at"] for e in month.events)
    events = [published(TEXT, start - timedelta(days=1)), *month.events]
    end = max(e["occurred_at"] for e in month.events) + timedelta(days=30)
    ids = []
    for by_partition in (False, True):
        db = _fill(tmp_path, events, by_partition)
        with Ledger.open(db, readonly=True) as ledger:
            run = judge_ledger(ledger, now=end)
        standing = current(run.results)
        assert {key(f) for f in standing} == month.expected_findings(end)
        assert {f.policy_sha256 for f in standing} == {load(EXAMPLE).sha256}
        ids.append(sorted(f.finding_id for f in standing))
    assert ids[0] == ids[1]


def test_events_before_the_first_policy_are_not_judged_but_their_consents_count(tmp_path, month):
    """A policy recorded mid-month judges only what is recorded after it; facts recorded before it
    (consents) still count, so its findings are a subset of the whole month's."""
    events = list(month.events)
    middle = len(events) // 2
    at = events[middle - 1]["occurred_at"]
    db = _fill(tmp_path, [*events[:middle], published(TEXT, at), *events[middle:]])
    end = max(e["occurred_at"] for e in events) + timedelta(days=30)
    with Ledger.open(db, readonly=True) as ledger:
        late = {key(f) for f in current(judge_ledger(ledger, now=end).results)}
    whole = month.expected_findings(end)
    assert late and late < whole
    first_half = {e["event_id"] for e in events[:middle - 1]}
    assert not any(k[2] in first_half and k[0].startswith(("access.need", "recipient.")) for k in late)


def test_a_later_policy_takes_over_from_its_recorded_time(tmp_path, month):
    """Findings about events recorded after a second PolicyPublished name the second policy's SHA-256."""
    events = list(month.events)
    middle = len(events) // 2
    second = TEXT.replace('version = "', 'version = "2-', 1)
    start = min(e["occurred_at"] for e in events)
    db = _fill(tmp_path, [published(TEXT, start), *events[:middle],
                          published(second, events[middle - 1]["occurred_at"]), *events[middle:]])
    with Ledger.open(db, readonly=True) as ledger:
        run = judge_ledger(ledger, now=max(e["occurred_at"] for e in events))
    assert [p.sha256 for p in run.policies] == [load(EXAMPLE).sha256, load_text(second).sha256]
    shas = {f.policy_sha256 for f in current(run.results)}
    assert shas == {p.sha256 for p in run.policies}


def test_no_recorded_policy_is_an_error_not_an_empty_answer(tmp_path, month, capsys):
    """Without a recorded policy or --policy, `ledger findings` exits 2 saying how to give one."""
    db = _fill(tmp_path, month.events[:200])
    with Ledger.open(db, readonly=True) as ledger, pytest.raises(PolicyError, match="policy publish"):
        judge_ledger(ledger)
    assert main(["findings", "--db", str(db)]) == 2
    assert "no policy is recorded" in capsys.readouterr().err


def test_a_bad_draft_policy_exits_2_naming_the_line(tmp_path, month, capsys):
    """--policy with a refused file exits 2 with the file and line, and prints no findings."""
    db = _fill(tmp_path, month.events[:200])
    bad = tmp_path / "bad.toml"
    bad.write_text(TEXT.replace("[policy]", "[policy]\nnonsense = 1", 1), encoding="utf-8")
    assert main(["findings", "--db", str(db), "--policy", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert f"{bad}:" in err and "nonsense" in err and out == ""


def test_the_json_answer_and_the_exit_status(tmp_path, month, capsys):
    """--format json lists finding_id, rule, kind, severity, sentence, subjects, event_ids, policy_sha256 and
    policy_version; exit 1 when something is broken; --rule and --subject narrow the answer; a draft is
    judged without being recorded."""
    db = _fill(tmp_path, month.events)
    end = (max(e["occurred_at"] for e in month.events) + timedelta(days=30)).isoformat()
    code = main(["findings", "--db", str(db), "--policy", str(EXAMPLE), "--format", "json", "--as-of", end])
    rows = json.loads(capsys.readouterr().out)
    assert code == 1 and rows
    assert set(rows[0]) >= {"finding_id", "rule", "kind", "severity", "sentence", "subjects", "event_ids",
                            "policy_sha256", "policy_version"}
    subject = rows[0]["subjects"][0]
    assert main(["findings", "--db", str(db), "--policy", str(EXAMPLE), "--format", "json", "--as-of", end,
                 "--rule", rows[0]["rule"], "--subject", subject]) == 1
    narrowed = json.loads(capsys.readouterr().out)
    assert narrowed and all(r["rule"] == rows[0]["rule"] and subject in r["subjects"] for r in narrowed)
    assert main(["findings", "--db", str(db), "--policy", str(EXAMPLE), "--as-of", end]) == 1
    out = capsys.readouterr().out
    assert "time rules judged at" in out and load(EXAMPLE).sha256 in out


def test_the_auditors_report_has_a_promises_section(tmp_path, month):
    """With a recorded policy the auditor's report lists per rule kept / broken / not judgeable and the
    findings naming the customer (in JSON and HTML); the subject's report has none; a ledger without a
    policy has no section unless --policy gives one."""
    from ledger.audit.report import build_report, render

    start = min(e["occurred_at"] for e in month.events)
    end = max(e["occurred_at"] for e in month.events) + timedelta(days=30)
    db = _fill(tmp_path, [published(TEXT, start - timedelta(days=1)), *month.events])
    with Ledger.open(db, readonly=True) as ledger:
        standing = current(judge_ledger(ledger, now=end).results)
        subject = next(f.subjects[0] for f in standing if f.kind == "broken")
        report = build_report(ledger, subject, audience="auditor", generated_at=end)
        assert build_report(ledger, subject, audience="subject", generated_at=end).promises is None
    pr = report.promises
    assert pr["policy_sha256"] == load(EXAMPLE).sha256 and pr["recorded"] is True
    assert sum(r["broken"] for r in pr["rules"]) == sum(1 for f in standing if f.kind == "broken")
    assert all(r["kept"] + r["broken"] + r["not_judgeable"] == r["judged"] for r in pr["rules"])
    assert pr["findings"] and all(subject in f["subjects"] for f in pr["findings"])
    html = render(report, "html")
    assert "<h2>Promises</h2>" in html and pr["findings"][0]["finding_id"] not in json.dumps(pr["rules"])
    bare = _fill(tmp_path / "bare" if (tmp_path / "bare").mkdir() is None else tmp_path, month.events)
    with Ledger.open(bare, readonly=True) as ledger:
        assert build_report(ledger, subject, audience="auditor", generated_at=end).promises is None
        drafted = build_report(ledger, subject, audience="auditor", generated_at=end, policy=load(EXAMPLE))
        assert drafted.promises["recorded"] is False and drafted.promises["findings"]
