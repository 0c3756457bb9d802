"""The verifiable ledger over HTTP, through a real `ledger serve`: checkpoints, the log vkey, receipts,
consistency proofs and findings, each checked against the library or the CLI that gives the same answer."""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import quote

import pytest

pytest.importorskip("fastapi", reason="the http extra is needed for `ledger serve`")

import httpx
from fill import fill_ledger
from httpkit import start_server
from signed import ORIGIN, POLICY, cli, signed_ledger

from ledger.dev.simulate import simulate
from ledger.model.policy import load
from ledger.store import tiles
from ledger.tlog.checkpoint import open_checkpoint
from ledger.tlog.keyfile import load_verifier
from ledger.tlog.merkle import verify_consistency
from ledger.tlog.note import b64decode_strict
from ledger.tlog.receipt import verify_receipt
from ledger.wire.codec import default_codec

JUSTIFY = "test: receipts for case AUD-7"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proofs")
    workload, _, vkey = signed_ledger(tmp)
    server = start_server(tmp / "ledger.db", tmp, extra=("--log-vkey", str(vkey), "--log-origin", ORIGIN))
    server.vkey = vkey
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


def get(server, path, token=None, justification=JUSTIFY, **params):
    return httpx.get(server.url + path, headers=server.auth(token, justification), params=params, timeout=60)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    assert "Traceback" not in response.text
    return body["error"]


def event_of(server, subject: str) -> dict:
    """One event of ``subject`` (the library's who-saw, newest first)."""
    from ledger.audit.query import who_saw
    from ledger.store import Ledger

    with Ledger.open(server.db) as ledger:
        return next(iter(who_saw(ledger, subject)))


def outbox_events(server) -> list[dict]:
    codec = default_codec()
    with sqlite3.connect(server.outbox) as conn:
        return [codec.decode(v) for (v,) in conn.execute("SELECT value FROM outbox ORDER BY id")]


# -- checkpoints and the log's key: public ---------------------------------------------------------
def test_checkpoints_are_public_and_each_note_verifies_with_the_log_vkey(server):
    """No token needed; one item per origin, the latest; each note opens with the vkey file; no-cache."""
    r = httpx.get(server.url + "/v1/checkpoints", timeout=30)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    body = r.json()
    verifier = load_verifier(server.vkey)
    assert body["log_vkeys"] == [verifier.vkey]
    with sqlite3.connect(server.db) as conn:
        stored = dict(conn.execute("SELECT origin, max(size) FROM checkpoints GROUP BY origin").fetchall())
    assert {c["origin"]: c["size"] for c in body["items"]} == stored and len(stored) >= 4
    for item in body["items"]:
        opened = open_checkpoint(item["note"], [verifier])
        assert opened.checkpoint.origin == item["origin"] and opened.checkpoint.size == item["size"]
        assert item["log_signature"] == "verified"
        assert item["signatures"] == [{"name": ORIGIN, "key_id": f"{verifier.key_id:08x}", "kind": "log",
                                       "verified": True}]
        note = httpx.get(server.url + item["download"], timeout=30)
        assert note.status_code == 200 and note.text == item["note"]
        assert note.headers["content-type"].startswith("text/plain")
        assert note.headers["content-disposition"].endswith('.checkpoint"')


def test_an_unknown_origin_is_a_404_and_a_bad_token_does_not_matter_on_public_routes(server):
    """Public routes ignore tokens; a missing origin is the one error shape, 404."""
    r = httpx.get(server.url + "/v1/checkpoints/nope.example/x/0", timeout=30)
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    r = httpx.get(server.url + "/v1/checkpoints", headers={"Authorization": "Bearer junk"}, timeout=30)
    assert r.status_code == 200
    r = httpx.get(server.url + "/v1/checkpoints", params={"origin": "x"}, timeout=30)
    assert r.status_code == 422 and error_of(r)["field"] == "origin"


def test_the_log_vkey_is_served_as_given_and_says_to_compare_it(server, tmp_path):
    """/v1/log-vkey is the --log-vkey file's key; without --log-vkey it is a 404 saying what to do."""
    r = httpx.get(server.url + "/v1/log-vkey", timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert body["log_vkeys"] == [server.vkey.read_text().strip()] and body["log_origin"] == ORIGIN
    assert "published elsewhere" in body["compare"]
    bare = start_server(server.db, tmp_path)
    try:
        r = httpx.get(bare.url + "/v1/log-vkey", timeout=30)
        assert r.status_code == 404 and "--log-vkey" in error_of(r)["message"]
        items = httpx.get(bare.url + "/v1/checkpoints", timeout=30).json()["items"]
        assert items and {i["log_signature"] for i in items} == {"no log vkey configured"}
    finally:
        bare.stop()


def test_serve_refuses_a_witness_key_or_a_key_of_another_log_as_log_vkey(server, tmp_path):
    """A cosigner vkey (type 04) or a key named for another origin is refused at start, naming the file."""
    done = cli("keys", "generate", "witness.example.org/w1", "--out", str(tmp_path), "--cosigner")
    assert done.returncode == 0, done.stderr
    done = cli("keys", "generate", "other.example.org/log", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    for name, reason in (("witness.example.org_w1.vkey", "witness key"), ("other.example.org_log.vkey",
                                                                           "does not cover the log origin")):
        done = cli("serve", "--token-key", str(server.public), "--log-vkey", str(tmp_path / name),
                   "--listen", "127.0.0.1:1", db=server.db)
        assert done.returncode != 0 and name in done.stderr and reason in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_serve_refuses_a_log_key_as_witness_vkey_naming_the_file_and_starts_with_a_witness_key(server, tmp_path):
    """--witness-vkey takes witness keys (type 04) only; one given is listed by /v1/checkpoints."""
    done = cli("keys", "generate", ORIGIN, "--out", str(tmp_path / "log"))
    assert done.returncode == 0, done.stderr
    log_vkey = next((tmp_path / "log").glob("*.vkey"))
    done = cli("serve", "--token-key", str(server.public), "--witness-vkey", str(log_vkey),
               "--listen", "127.0.0.1:1", db=server.db)
    assert done.returncode != 0 and str(log_vkey) in done.stderr and "not a witness's key" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    done = cli("keys", "generate", "witness.example.org/w1", "--out", str(tmp_path / "w"), "--cosigner")
    assert done.returncode == 0, done.stderr
    witness_vkey = next((tmp_path / "w").glob("*.vkey"))
    with_witness = start_server(server.db, tmp_path / "serve", extra=("--witness-vkey", str(witness_vkey)))
    try:
        body = httpx.get(with_witness.url + "/v1/checkpoints", timeout=30).json()
        assert body["witness_vkeys"] == [witness_vkey.read_text().strip()]
    finally:
        with_witness.stop()
    assert httpx.get(server.url + "/v1/checkpoints", timeout=30).json()["witness_vkeys"] == []


# -- receipts: audit:read only ---------------------------------------------------------------------
def test_an_auditors_receipt_verifies_offline_and_the_read_is_recorded(server, subject):
    """The receipt is `ledger prove`'s; verify_receipt accepts it; its subjects' DataAccessed is in the outbox."""
    event = event_of(server, subject)
    r = get(server, f"/v1/events/{event['event_id']}/receipt", server.token("audit:read", holder="emp-aud-7"))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["content-type"].startswith("text/plain")
    proved = cli("prove", event["event_id"], db=server.db)
    assert r.text == proved.stdout
    facts = verify_receipt(r.text, [server.vkey.read_text().strip()])
    assert facts.event["event_id"] == event["event_id"] and subject in facts.event["subject_ids"]
    recorded = [e for e in outbox_events(server) if e["attributes"]["request_id"] == r.headers["x-request-id"]]
    assert len(recorded) == 1
    read = recorded[0]
    assert read["actor"]["id"] == "emp-aud-7" and read["access_type"] == "EXPORT"
    assert set(read["subject_ids"]) == set(facts.event["subject_ids"])
    assert read["attributes"]["route"] == "/v1/events/{event_id}/receipt"
    assert read["justification"]["note"] == JUSTIFY


def test_receipts_are_not_for_customers_nor_admins_and_need_a_reason(server, subject):
    """A subject token gets 404 even for its own event (the raw record holds others' data); admin 403."""
    event = event_of(server, subject)
    path = f"/v1/events/{event['event_id']}/receipt"
    r = get(server, path, server.token(f"subject:{subject}"), justification=None)
    assert r.status_code == 404 and error_of(r) == {"code": "not_found", "message": "no such resource", "field": None}
    r = get(server, path, server.token("admin"))
    assert r.status_code == 403 and error_of(r)["code"] == "insufficient_scope"
    r = get(server, path, server.token("audit:read"), justification=None)
    assert r.status_code == 422 and error_of(r)["field"] == "X-Justification"
    r = get(server, "/v1/events/no-such-event/receipt", server.token("audit:read"))
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    r = get(server, path)
    assert r.status_code == 401


# -- consistency -----------------------------------------------------------------------------------
def test_a_consistency_proof_links_an_old_size_to_the_latest_checkpoint(server):
    """For every old size of one origin, the proof verifies against the tree's root at that size."""
    item = httpx.get(server.url + "/v1/checkpoints", timeout=30).json()["items"][0]
    origin = item["origin"]
    topic, part = origin[len(ORIGIN) + 1:].rsplit("/", 1)
    conn = sqlite3.connect(server.db)
    reader = tiles.reader(conn, topic, int(part))
    token = server.token("audit:read")
    for old in sorted({1, 2, 3, item["size"] // 2, item["size"] - 1, item["size"]}):
        r = get(server, "/v1/consistency", token, origin=origin, old_size=old)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["size"] == item["size"] and body["checkpoint"] == item["note"]
        proof = [b64decode_strict(h, "proof") for h in body["proof"]]
        verify_consistency(old, body["size"], proof, reader.root(old), b64decode_strict(body["root"], "root"))
    conn.close()
    assert get(server, "/v1/consistency", server.token("admin"), origin=origin, old_size=1).status_code == 200


def test_consistency_refuses_bad_sizes_and_origins_by_name_and_customers_get_404(server, subject):
    """old_size 0 or beyond the tree, a foreign origin: 422 naming the field; a subject token: 404."""
    item = httpx.get(server.url + "/v1/checkpoints", timeout=30).json()["items"][0]
    token = server.token("audit:read")
    for params, field in (({"origin": item["origin"], "old_size": 0}, "old_size"),
                          ({"origin": item["origin"], "old_size": item["size"] + 1}, "old_size"),
                          ({"origin": "elsewhere.example/log/t/0", "old_size": 1}, "origin"),
                          ({"origin": ORIGIN + "/ledger.access/99", "old_size": 1}, "origin"),
                          ({"old_size": 1}, "origin")):
        r = get(server, "/v1/consistency", token, **params)
        assert r.status_code in (409, 422), (params, r.text)
        assert error_of(r)["field"] == field, (params, r.text)
    r = get(server, "/v1/consistency", server.token(f"subject:{subject}"), justification=None,
            origin=item["origin"], old_size=1)
    assert r.status_code == 404


# -- findings --------------------------------------------------------------------------------------
def test_findings_pages_concatenate_to_ledger_findings_json(server):
    """Same items, same order as `ledger findings --format json`, paged by cursor; the policy named."""
    done = cli("findings", "--format", "json", db=server.db)
    assert done.returncode in (0, 1), done.stderr
    expected = json.loads(done.stdout)
    assert expected, "the workload should break a promise of the example policy"
    token = server.token("audit:read")
    got, cursor, pages = [], None, 0
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        r = get(server, "/v1/findings", token, **params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert r.headers["cache-control"] == "no-store"
        assert body["policy"]["sha256"] == load(POLICY).sha256
        got += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert got == expected and pages == -(-len(expected) // 7)
    assert body["broken"] + body["not_judgeable"] == len(expected)


def test_findings_filters_are_the_clis(server):
    """rule (prefix), subject: the same selection as the CLI's options."""
    token = server.token("audit:read")
    everything = get(server, "/v1/findings", token, limit=1000).json()["items"]
    rule = everything[0]["rule"]
    prefix = rule.split(".")[0] + "."
    subject = everything[0]["subjects"][0] if everything[0]["subjects"] else None
    for params, argv in (({"rule": prefix}, ["--rule", prefix]), ({"rule": rule}, ["--rule", rule]),
                         *([({"subject": subject}, ["--subject", subject])] if subject else [])):
        r = get(server, "/v1/findings", token, limit=1000, **params)
        done = cli("findings", "--format", "json", *argv, db=server.db)
        assert r.json()["items"] == json.loads(done.stdout), params


def test_findings_are_for_auditors_and_a_cursor_is_bound_to_its_query(server, subject):
    """subject token 404, admin 403, no reason 422, unknown parameter 422, another query's cursor 400."""
    token = server.token("audit:read")
    assert get(server, "/v1/findings", server.token(f"subject:{subject}"), justification=None).status_code == 404
    assert get(server, "/v1/findings", server.token("admin")).status_code == 403
    assert error_of(get(server, "/v1/findings", token, justification=None))["field"] == "X-Justification"
    assert error_of(get(server, "/v1/findings", token, policy="x"))["field"] == "policy"
    first = get(server, "/v1/findings", token, limit=1).json()
    assert first["next_cursor"]
    r = get(server, "/v1/findings", token, limit=1, rule="consent.", cursor=first["next_cursor"])
    assert r.status_code == 400 and error_of(r)["field"] == "cursor"
    r = get(server, "/v1/findings", server.token("audit:read"), limit=1, cursor=first["next_cursor"])
    assert r.status_code == 400


def test_findings_are_recorded_as_reads_of_the_customers_they_name(server):
    """A page of findings is a DataAccessed of exactly the customers its findings name."""
    r = get(server, "/v1/findings", server.token("audit:read", holder="emp-aud-9"), limit=5)
    named = {s for f in r.json()["items"] for s in f["subjects"]}
    recorded = [e for e in outbox_events(server) if e["attributes"]["request_id"] == r.headers["x-request-id"]]
    assert named and len(recorded) == 1 and set(recorded[0]["subject_ids"]) == named
    assert recorded[0]["actor"]["id"] == "emp-aud-9"


def test_a_ledger_without_a_policy_answers_409_no_policy(tmp_path):
    """No recorded policy: 409 with the CLI's advice, never a 500."""
    workload = simulate(seed=3, events=40, subjects=4)
    fill_ledger(tmp_path / "ledger.db", workload.events)
    server = start_server(tmp_path / "ledger.db", tmp_path)
    try:
        r = get(server, "/v1/findings", server.token("audit:read"))
        assert r.status_code == 409 and error_of(r)["code"] == "no_policy"
        assert "ledger policy publish" in error_of(r)["message"]
        r = get(server, "/v1/events/x/receipt", server.token("audit:read"))
        assert r.status_code in (404, 409)
        r = httpx.get(server.url + "/v1/checkpoints", timeout=30)
        assert r.status_code == 200 and r.json()["items"] == []
    finally:
        server.stop()


def test_an_event_not_yet_under_a_checkpoint_is_a_409_naming_the_fix(tmp_path):
    """A receipt needs a checkpoint: 409 not_checkpointed telling the operator to run `ledger checkpoint`."""
    workload = simulate(seed=4, events=40, subjects=4)
    fill_ledger(tmp_path / "ledger.db", workload.events)
    server = start_server(tmp_path / "ledger.db", tmp_path)
    try:
        with sqlite3.connect(tmp_path / "ledger.db") as conn:
            event_id = conn.execute("SELECT event_id FROM event_ids LIMIT 1").fetchone()[0]
        r = get(server, f"/v1/events/{quote(event_id)}/receipt", server.token("audit:read"))
        assert r.status_code == 409 and error_of(r)["code"] == "not_checkpointed"
        assert "ledger checkpoint" in error_of(r)["message"]
    finally:
        server.stop()


# -- a subject token never gets another subject's data, on the new routes with real data behind them --
SHAPES = ["/v1/events/{event}/receipt", "/v1/findings", "/v1/findings?subject={id}", "/v1/checkpoints",
          "/v1/checkpoints/{origin}", "/v1/log-vkey", "/v1/consistency?origin={origin}&old_size=1",
          "/console/receipt", "/portal", "/v1/subjects/{id}/who-saw"]


@pytest.fixture(scope="module")
def catalogue(world, server):
    """Every customer id and every event id (with its subjects) in the ledger, and the origins."""
    from ledger.audit.query import who_saw
    from ledger.store import Ledger

    workload = world[0]
    subjects = sorted({s for e in workload.events for s in e["subject_ids"]})
    events = {}
    with Ledger.open(server.db) as ledger:
        for s in subjects:
            for row in who_saw(ledger, s):
                events[row["event_id"]] = set(row.get("subject_ids") or ())
    origins = [c["origin"] for c in httpx.get(server.url + "/v1/checkpoints", timeout=30).json()["items"]]
    return subjects, events, origins


def test_a_subject_token_never_receives_another_subjects_data_on_the_proof_routes(server, catalogue):
    """Any route × any id/event/origin: a subject token's 200s name no other customer and no staff id."""
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st

    subjects, events, origins = catalogue
    event_ids = sorted(events)

    @hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(me=st.sampled_from(subjects), shape=st.sampled_from(SHAPES),
           asked=st.one_of(st.sampled_from(subjects), st.text(min_size=1, max_size=10)),
           event=st.sampled_from(event_ids), origin=st.sampled_from(origins))
    def check(me, shape, asked, event, origin):
        url = server.url + shape.format(id=quote(asked, safe=""), event=event, origin=quote(origin, safe="/"))
        token = server.token(f"subject:{me}")
        r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, cookies={"ledger_session": token},
                      timeout=60)
        assert r.status_code < 500, r.text
        if shape.startswith(("/v1/events", "/v1/findings", "/v1/consistency")):
            assert r.status_code == 404, (shape, r.status_code)
        if r.status_code == 200:
            for other in set(subjects) - {me}:
                for form in (json.dumps(other), f">{other}<", f" {other} ", f"{other}\""):
                    assert form not in r.text or form in json.dumps(me), (shape, me, other)
            assert "emp-" not in r.text

    check()


def test_a_ledger_without_tiles_answers_503_naming_no_path_and_the_portal_still_shows(tmp_path):
    """No Merkle tiles (an older file): the public checkpoint routes say so without the file's path."""
    workload = simulate(seed=6, events=40, subjects=4)
    fill_ledger(tmp_path / "ledger.db", workload.events)
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        conn.executescript("DROP TABLE checkpoints; DROP TABLE tlog_tiles;")
    server = start_server(tmp_path / "ledger.db", tmp_path)
    try:
        for path in ("/v1/checkpoints", "/v1/checkpoints/ledger.local/audit/ledger.access/0"):
            r = httpx.get(server.url + path, timeout=30)
            assert r.status_code == 503 and error_of(r)["code"] == "ledger_unavailable", r.text
            assert str(tmp_path) not in r.text
        subject = workload.a_rich_subject()
        token = server.token(f"subject:{subject}")
        r = httpx.get(server.url + "/portal", cookies={"ledger_session": token}, timeout=30)
        assert r.status_code == 200 and "No checkpoint has been signed yet" in r.text
    finally:
        server.stop()
