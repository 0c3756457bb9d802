"""Clean errors, never a traceback: hostile lines for `ledger emit`, hostile times and years for the queries.

Each case runs the CLI as a subprocess, as a careless producer or a curious
user would. Every case here gave a traceback, or lost the whole file, before
issue 12.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fill import fill_ledger
from kafkautil import read_topics
from samples import sample


def ledger_cmd(*argv: str, env: dict | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ledger", *argv], capture_output=True, timeout=300, input=stdin,
                          env={**os.environ, **(env or {})})


def _line(event: dict) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode("utf-8")


def test_emit_reports_each_hostile_line_and_sends_the_others(settings, tmp_path):
    """Deep JSON, invalid UTF-8, a 2 MB event, a non-object: one 'line N: ...' each; the valid lines are sent."""
    good = [{**sample("DataAccessed"), "subject_ids": [f"cust-{i}"]} for i in range(3)]
    # A raw U+2028 and U+0085 inside a JSON string are legal JSON: the line must not be split there.
    good[1]["justification"] = {"reason_code": "x", "note": "a\u2028b\u0085c"}
    big = {**sample("DataAccessed"), "justification": {"reason_code": "x", "note": "=" * 2_000_000}}
    lines = [
        _line(good[0]),
        b"[" * 50_000 + b"]" * 50_000,
        _line(sample("DataAccessed"))[:-2] + b"\xff\xfe\"}",
        _line(big),
        _line(good[1]),
        b"[1, 2]",
        _line(good[2]),
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    env = {"LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LEDGER_KAFKA_CLIENT": settings.kafka_client, "LEDGER_TOPIC_PREFIX": settings.topic_prefix}
    done = ledger_cmd("emit", str(path), env=env)
    err = done.stderr.decode().splitlines()
    assert done.returncode == 1 and not any("Traceback" in line for line in err), done.stderr.decode()[-2000:]
    assert [line.split(":")[0] for line in err] == ["line 2", "line 3", "line 4", "line 6"], err
    assert "nested too deeply" in err[0]
    assert "not UTF-8: byte 0xff" in err[1]
    assert err[2].startswith("line 4: DataAccessed.(event): too large") and "1,048,576" in err[2]
    assert done.stdout.decode().strip() == "sent 3, rejected 4"
    sent = read_topics(settings)
    assert len(sent) == 3


def test_emit_from_stdin_with_invalid_utf8_loses_only_that_line(settings):
    """stdin is read as bytes too: one undecodable line is one error, not the end of the input."""
    env = {"LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "LEDGER_KAFKA_CLIENT": settings.kafka_client, "LEDGER_TOPIC_PREFIX": settings.topic_prefix}
    stdin = b"\xef\xbb\xbf" + _line(sample("ConsentChanged")) + b"\r\n\xc3\x28\n"
    done = ledger_cmd("emit", env=env, stdin=stdin)
    assert done.stderr.decode().splitlines() == ["line 2: not UTF-8: byte 0xc3 at column 1 (invalid continuation byte)"]
    assert done.stdout.decode().strip() == "sent 1, rejected 1"


def test_an_oversized_event_is_refused_by_the_python_api_before_sending():
    """AuditProducer.emit raises ValidationError for an event that cannot fit one Kafka request; no client is made."""
    from ledger.errors import ValidationError
    from ledger.produce.producer import AuditProducer

    producer = AuditProducer(bootstrap_servers="127.0.0.1:1")
    with pytest.raises(ValidationError, match=r"\(event\): too large"):
        producer.emit({**sample("DataAccessed"), "attributes": {"k": "v" * 1_100_000}})
    assert producer._client is None


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> str:
    from ledger.model.events import validate

    return str(fill_ledger(tmp_path_factory.mktemp("times") / "l.db", [validate(sample("DataShared"))]).path)


@pytest.mark.parametrize("argv, option", [
    (["who-saw", "cust-1", "--until", "0001-01-01T00:00:00+14:00"], "--until"),
    (["who-saw", "cust-1", "--since", "9999-12-31T23:59:59-14:00"], "--since"),
    (["disclosures", "--since", "0001-01-01T00:00:00+14:00"], "--since"),
    (["accesses", "--actor", "a", "--until", "9999-12-31T23:59:59-14:00"], "--until"),
    (["who-saw", "cust-1", "--as-of", "0001-01-01T00:00:00+14:00"], "--as-of"),
    (["obligations", "--as-of", "0001-01-01T00:00:00+14:00"], "--as-of"),
    (["report", "cust-1", "--as-of", "0001-01-01T00:00:00+14:00"], "--as-of"),
    (["report", "cust-1", "--lookback-years", "3000"], "--lookback-years"),
    (["report", "cust-1", "--lookback-years", "99999999999999999999999"], "--lookback-years"),
    (["report", "cust-1", "--lookback-years", "0"], "--lookback-years"),
    (["who-saw", "cust-1", "--since", "2026-02-30T00:00:00Z"], "--since"),
])
def test_out_of_range_times_and_years_give_one_error_line_naming_the_option(small_db, argv, option):
    """A time outside years 1..9999 in UTC, or a look-back before year 1, is one 'error: OPTION: ...' line."""
    done = ledger_cmd(*argv, "--db", small_db)
    err = done.stderr.decode().splitlines()
    assert done.returncode == 1 and len(err) == 1, done.stderr.decode()
    assert err[0].startswith(f"ledger {argv[0]}: error: {option}: ")
