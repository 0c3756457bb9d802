"""A customer's signed report over HTTP, through a real `ledger serve --report-key`: the download passes
`ledger verify-report` offline, is the customer's own only, is recorded as an EXPORT read, and is refused
clearly when the server has no report key or an entry is under no checkpoint yet."""

from __future__ import annotations

import json
import sqlite3

import pytest

pytest.importorskip("fastapi", reason="the http extra is needed for `ledger serve`")

import httpx
from fill import fill_ledger
from httpkit import start_server
from signed import ORIGIN, cli, report_key, signed_ledger

from ledger.dev.simulate import simulate
from ledger.wire.codec import default_codec

JUSTIFY = "test: signed report for case AUD-9"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("signed-report")
    workload, log_key, vkey = signed_ledger(tmp)
    key, report_vkey = report_key(tmp)
    server = start_server(tmp / "ledger.db", tmp / "serve", extra=(
        "--log-vkey", str(vkey), "--log-origin", ORIGIN, "--report-key", str(key)))
    server.vkey, server.report_vkey, server.log_key, server.tmp = vkey, report_vkey, log_key, tmp
    try:
        yield workload, server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(world):
    return world[1]


@pytest.fixture(scope="module")
def subject(world):
    return world[0].a_rich_subject()


def signed(server, subject_id, token, justification=JUSTIFY, **params):
    return httpx.get(server.url + f"/v1/subjects/{subject_id}/report", headers=server.auth(token, justification),
                     params={"format": "json", "signed": "true", **params}, timeout=120)


def verify_offline(server, text: str, tmp_path):
    path = tmp_path / "signed.json"
    path.write_text(text)
    return cli("verify-report", str(path), "--vkey", str(server.vkey), "--report-vkey", str(server.report_vkey))


def outbox_events(server) -> list[dict]:
    codec = default_codec()
    with sqlite3.connect(server.outbox) as conn:
        return [codec.decode(v) for (v,) in conn.execute("SELECT value FROM outbox ORDER BY id")]


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    assert "Traceback" not in response.text
    return body["error"]


def test_a_customers_signed_report_passes_ledger_verify_report_offline(server, subject, tmp_path):
    """The subject's own signed report downloads as JSON and `ledger verify-report --vkey --report-vkey` accepts it."""
    r = signed(server, subject, server.token(f"subject:{subject}"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json") and r.headers["cache-control"] == "no-store"
    assert f'filename="report-{subject}.signed.json"' in r.headers["content-disposition"]
    report = r.json()
    assert report["subject"] == subject and report["audience"] == "subject"
    assert report["report_signature"].startswith("ledger.report/v1\n" + subject + "\n")
    assert report["checkpoints"] and all("log" in line for line in report["timeline"])
    done = verify_offline(server, r.text, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # One changed character after signing, and the same offline check refuses it.
    tampered = json.loads(r.text)
    tampered["timeline"][0]["occurred_at"] = tampered["timeline"][0]["occurred_at"].replace("20", "19", 1)
    bad = verify_offline(server, json.dumps(tampered), tmp_path)
    assert bad.returncode != 0 and "changed after signing" in bad.stdout + bad.stderr


def test_the_signed_report_is_recorded_as_an_export_read_of_the_customer(server, subject):
    """Like every report download: one DataAccessed, access type EXPORT, actor the customer, route named."""
    r = signed(server, subject, server.token(f"subject:{subject}"))
    assert r.status_code == 200, r.text
    recorded = [e for e in outbox_events(server) if e["attributes"]["request_id"] == r.headers["x-request-id"]]
    assert len(recorded) == 1
    read = recorded[0]
    assert read["access_type"] == "EXPORT" and read["actor"]["id"] == subject and read["subject_ids"] == [subject]
    assert read["attributes"]["route"] == "/v1/subjects/{subject_id}/report"
    assert "signed=true" in read["attributes"]["query"]


def test_another_customers_signed_report_is_404_for_a_subject_token(world, server, subject):
    """A subject token must not learn whether another id exists: 404, for a real id and a made-up one."""
    other = next(s for e in world[0].events for s in e.get("subject_ids") or () if s != subject)
    token = server.token(f"subject:{subject}")
    for target in (other, "cust-does-not-exist"):
        r = signed(server, target, token)
        assert r.status_code == 404, r.text
        error_of(r)


def test_an_auditor_gets_the_signed_report_too_and_it_verifies(server, subject, tmp_path):
    """audit:read (with its reason) may fetch a customer's signed report; the auditor audience carries receipts."""
    audit = server.token("audit:read", holder="emp-aud-9")
    r = signed(server, subject, audit)
    assert r.status_code == 200, r.text
    assert r.json()["audience"] == "subject"
    assert verify_offline(server, r.text, tmp_path).returncode == 0
    r = signed(server, subject, audit, audience="auditor")
    assert r.status_code == 200, r.text
    assert all("receipt" in line for line in r.json()["timeline"])
    done = verify_offline(server, r.text, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert signed(server, subject, audit, justification=None).status_code == 422  # an audit read needs a reason


def test_a_signed_report_is_json_only(server, subject):
    """format=csv or html with signed=true is a 422 naming `format`, not a silently unsigned file."""
    for fmt in ("csv", "html"):
        r = signed(server, subject, server.token(f"subject:{subject}"), format=fmt)
        assert r.status_code == 422 and error_of(r)["field"] == "format", r.text


def test_the_report_vkey_is_public_and_is_the_report_keys(server):
    """GET /v1/report-vkey needs no token, answers the vkey file's line, and says to compare it elsewhere."""
    r = httpx.get(server.url + "/v1/report-vkey", timeout=30)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    body = r.json()
    assert body["report_vkey"] == server.report_vkey.read_text().strip()
    assert "published elsewhere" in body["compare"] and "ledger verify-report" in body["compare"]


def test_without_a_report_key_the_route_says_not_configured(server, subject, tmp_path):
    """No --report-key: signed=true is 409 not_configured naming the option; /v1/report-vkey is 404."""
    plain = start_server(server.db, tmp_path, extra=("--log-vkey", str(server.vkey), "--log-origin", ORIGIN))
    try:
        r = signed(plain, subject, plain.token(f"subject:{subject}"))
        assert r.status_code == 409, r.text
        err = error_of(r)
        assert err["code"] == "not_configured" and "--report-key" in err["message"]
        r = httpx.get(plain.url + "/v1/report-vkey", timeout=30)
        assert r.status_code == 404 and "--report-key" in error_of(r)["message"]
        assert not outbox_events(plain)  # nothing was answered, so nothing was recorded
    finally:
        plain.stop()


def test_an_entry_under_no_checkpoint_is_409_like_a_receipt(server, tmp_path):
    """A ledger never checkpointed: the signed report is refused with 409 not_checkpointed, and not recorded."""
    workload = simulate(seed=3, events=80, subjects=4)
    fill_ledger(tmp_path / "bare.db", workload.events)
    key, _ = report_key(tmp_path)
    bare = start_server(tmp_path / "bare.db", tmp_path / "serve", extra=("--log-origin", ORIGIN, "--report-key",
                                                                         str(key)))
    try:
        subject = next(s for e in workload.events for s in e.get("subject_ids") or ())
        r = signed(bare, subject, bare.token(f"subject:{subject}"))
        assert r.status_code == 409, r.text
        err = error_of(r)
        assert err["code"] == "not_checkpointed" and "checkpoint" in err["message"]
        assert not outbox_events(bare)
        assert httpx.get(bare.url + "/v1/subjects/" + subject + "/report", headers=bare.auth(
            bare.token(f"subject:{subject}")), timeout=60).status_code == 200  # the unsigned report still is
    finally:
        bare.stop()


@pytest.mark.parametrize("which, reason", [
    ("log", "not a report key"), ("witness", "not a report key"), ("missing", "cannot read")])
def test_serve_refuses_a_report_key_that_is_not_one_naming_the_file(server, tmp_path, which, reason):
    """The log's own key, a witness key or a missing file: `ledger serve` exits at start, naming the file."""
    if which == "witness":
        done = cli("keys", "generate", "witness.example.org/w9", "--out", str(tmp_path), "--cosigner")
        assert done.returncode == 0, done.stderr
        path = tmp_path / "witness.example.org_w9.key"
    else:
        path = server.log_key if which == "log" else tmp_path / "nothing.key"
    done = cli("tokens", "keygen", "--out", str(tmp_path / "api.key"))
    assert done.returncode == 0, done.stderr
    done = cli("serve", "--token-key", str(tmp_path / "api.key.pub"), "--listen", "127.0.0.1:0",
               "--outbox", str(tmp_path / "outbox.db"), "--report-key", str(path), db=server.db)
    assert done.returncode != 0 and str(path) in done.stderr and reason in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "outbox.db").exists()
