"""`ledger serve` through a real uvicorn process: who may read what, paging, errors, escaping, recorded reads."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from urllib.parse import quote

import pytest

pytest.importorskip("fastapi", reason="the http extra is needed for `ledger serve`")

import httpx
from fill import fill_ledger
from httpkit import HOSTILE, HOSTILE_ID, hostile_events, start_server
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ledger.audit import query
from ledger.audit.report import build_report
from ledger.dev.simulate import simulate
from ledger.store import Ledger
from ledger.wire.codec import default_codec

JUSTIFY = "test: quarterly access review"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http")
    workload = simulate(seed=5, events=900, subjects=30)
    fill_ledger(tmp / "ledger.db", [*workload.events, *hostile_events()])
    server = start_server(tmp / "ledger.db", tmp)
    try:
        yield workload, server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(world):
    return world[1]


@pytest.fixture(scope="module")
def workload(world):
    return world[0]


@pytest.fixture(scope="module")
def subject(workload):
    return workload.a_rich_subject()


@pytest.fixture(scope="module")
def all_subjects(workload) -> set[str]:
    return {s for e in workload.events for s in e["subject_ids"]} | {HOSTILE_ID, "cust-victim"}


@pytest.fixture(scope="module")
def other(all_subjects, subject):
    return sorted(all_subjects - {subject, HOSTILE_ID, "cust-victim"})[0]


def get(server, route_path, token=None, justification=JUSTIFY, **params):
    return httpx.get(server.url + route_path, headers=server.auth(token, justification), params=params, timeout=60)


def subject_routes(s: str) -> list[str]:
    q = quote(s, safe="")
    return [f"/v1/subjects/{q}/who-saw", f"/v1/subjects/{q}/report", f"/v1/subjects/{q}/report?format=html",
            f"/v1/subjects/{q}/report?format=csv"]


AUDIT_ROUTES = ["/v1/actors/emp-hostile/accesses", "/v1/disclosures", "/v1/disclosures/summary", "/v1/obligations",
                "/v1/findings", "/v1/events/00000000-0000-4000-8000-000000000000/receipt"]
#: Admin only, or (consistency) open to audit:read and admin alike: never to a subject token.
ADMIN_ROUTES = ["/v1/verify", "/v1/consistency?origin=ledger.local/audit/ledger.access/0&old_size=1"]
ANY_ROUTES = ["/v1/heads"]


def bad_tokens(server, tmp_path) -> dict[str, str | None]:
    from ledger.http.tokens import issue_token, write_keypair

    good = server.token("audit:read")
    head, body, sig = good.split(".")
    other_key, _ = write_keypair(tmp_path / "other.key")
    return {
        "none": None,
        "malformed": "not-a-jwt",
        "forged": ".".join((head, body[:-3] + ("AAA" if body[-3:] != "AAA" else "BBB"), sig)),
        "expired": issue_token(server.key, scope="audit:read", holder="emp-x", ttl="1m", now=int(time.time()) - 7200),
        "wrong_key": issue_token(other_key, scope="audit:read", holder="emp-x"),
        "wrong_audience": issue_token(server.key, scope="audit:read", holder="emp-x", audience="elsewhere"),
    }


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    assert "Traceback" not in response.text
    return body["error"]


# -- who may read what ------------------------------------------------------------------------------
def test_every_route_refuses_missing_malformed_forged_expired_and_wrong_key_tokens(server, subject, tmp_path):
    """Each route × each bad token → 401, WWW-Authenticate: Bearer, the one error shape, no token echoed."""
    tokens = bad_tokens(server, tmp_path)
    for route in [*subject_routes(subject), *AUDIT_ROUTES, *ADMIN_ROUTES, *ANY_ROUTES]:
        for kind, token in tokens.items():
            r = httpx.get(server.url + route, headers=server.auth(token, JUSTIFY), timeout=30)
            assert r.status_code == 401, (route, kind, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer"), (route, kind)
            assert error_of(r)["code"] == "unauthorized"
            assert token is None or token not in r.text
    r = httpx.get(server.url + "/v1/heads", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_token_is_refused_on_every_route_from_the_next_request(server, subject):
    """Adding a jti to the --revoked file takes effect at once (the file is re-read when it changes)."""
    import jwt

    token = server.token("audit:read")
    assert get(server, "/v1/heads", token).status_code == 200
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    before = server.revoked.read_text()
    server.revoked.write_text(before + f"{jti}\n")
    try:
        for route in [*subject_routes(subject), *AUDIT_ROUTES, *ADMIN_ROUTES, *ANY_ROUTES]:
            r = get(server, route, token)
            assert r.status_code == 401 and "revoked" in error_of(r)["message"], route
    finally:
        server.revoked.write_text(before)


def test_a_subject_token_gets_404_for_another_customer_and_for_every_audit_route(server, subject, other):
    """Never 403: a customer's token must not learn whether an id exists or what else there is."""
    token = server.token(f"subject:{subject}")
    for route in [*subject_routes(other), *subject_routes("cust-does-not-exist"), *AUDIT_ROUTES, *ADMIN_ROUTES]:
        r = get(server, route, token, justification=None)
        assert r.status_code == 404, (route, r.text)
        assert error_of(r) == {"code": "not_found", "message": "no such resource", "field": None}
    for route in subject_routes(subject):
        assert get(server, route, token, justification=None).status_code == 200, route


def test_scopes_other_than_the_route_needs_get_403_with_the_scope_named(server, subject):
    """An admin token cannot read customer data, an auditor cannot run verify: 403 insufficient_scope."""
    admin = server.token("admin")
    audit = server.token("audit:read")
    for route in [*subject_routes(subject), *AUDIT_ROUTES]:
        r = get(server, route, admin)
        assert r.status_code == 403 and 'error="insufficient_scope"' in r.headers["www-authenticate"], route
    r = get(server, "/v1/verify", audit)
    assert r.status_code == 403
    r = get(server, "/v1/verify", admin)
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["checked"] > 900


def test_audit_reads_need_a_justification(server, subject):
    """audit:read without X-Justification → 422 naming the header; nothing answered."""
    r = get(server, f"/v1/subjects/{subject}/who-saw", server.token("audit:read"), justification=None)
    assert r.status_code == 422 and error_of(r)["field"] == "X-Justification"


# -- same answers as the library, page by page ----------------------------------------------------
def test_who_saw_pages_concatenate_to_the_librarys_answer(server, subject):
    """Walking the cursors with limit=7 yields exactly who_saw(as_of=the pinned as_of), in order."""
    token = server.token("audit:read")
    first = get(server, f"/v1/subjects/{subject}/who-saw", token, limit=7, since="2026-01-10T00:00:00+01:00")
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    as_of = first.json()["as_of"]
    items, body = [], first.json()
    while True:
        items += body["items"]
        assert len(body["items"]) <= 7
        if body["next_cursor"] is None:
            break
        body = get(server, f"/v1/subjects/{subject}/who-saw", token, limit=7, since="2026-01-10T00:00:00+01:00",
                   cursor=body["next_cursor"]).json()
    with Ledger.open(server.db) as ledger:
        expected = list(query.who_saw(ledger, subject, since="2026-01-10T00:00:00+01:00", as_of=as_of))
    assert items == expected and len(expected) > 14


def test_a_cursor_works_only_for_its_token_and_its_query(server, subject):
    """Replayed by another token, or with another query, or altered: 400 invalid_cursor."""
    token = server.token("audit:read")
    cursor = get(server, f"/v1/subjects/{subject}/who-saw", token, limit=3).json()["next_cursor"]
    assert cursor
    assert get(server, f"/v1/subjects/{subject}/who-saw", token, limit=3, cursor=cursor).status_code == 200
    for tok, params in ((server.token("audit:read"), {}), (token, {"type": "DataShared"}),
                        (token, {"since": "2026-01-01T00:00:00Z"})):
        r = get(server, f"/v1/subjects/{subject}/who-saw", tok, limit=3, cursor=cursor, **params)
        assert r.status_code == 400 and error_of(r)["field"] == "cursor"
    r = get(server, "/v1/disclosures", token, limit=3, cursor=cursor)
    assert r.status_code == 400
    r = get(server, f"/v1/subjects/{subject}/who-saw", token, limit=3, cursor=cursor[:-2] + "xx")
    assert r.status_code == 400


def test_the_clis_time_rules_and_limits_hold(server, subject):
    """A time without offset, an unknown type, page size above 1,000 or an unknown parameter → 422 naming it."""
    token = server.token("audit:read")
    route = f"/v1/subjects/{subject}/who-saw"
    for params, field in (({"since": "2026-01-01T00:00:00"}, "since"), ({"until": "yesterday"}, "until"),
                          ({"as_of": "2026-13-01T00:00:00Z"}, "as_of"), ({"type": "ConsentChanged"}, "type"),
                          ({"limit": 1001}, "limit"), ({"limit": 0}, "limit"), ({"sql": "select 1"}, "sql"),
                          ({"path": "/etc/passwd"}, "path")):
        r = get(server, route, token, **params)
        assert r.status_code == 422, (params, r.text)
        assert error_of(r)["field"] == field, (params, r.text)
    r = get(server, "/v1/subjects/" + subject + "/report", token, lookback_years=0)
    assert r.status_code == 422 and error_of(r)["field"] == "lookback_years"
    r = get(server, "/v1/disclosures", token, kind="NOPE")
    assert r.status_code == 422 and error_of(r)["field"] == "kind"
    assert get(server, route, token, limit=1000).status_code == 200


def test_unknown_routes_and_methods_answer_in_the_one_error_shape(server):
    """404 and 405 are JSON errors too, never an HTML page or a traceback."""
    r = httpx.get(server.url + "/v2/anything")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    r = httpx.delete(server.url + "/v1/heads")
    assert r.status_code == 405 and error_of(r)["code"] == "method_not_allowed"
    r = httpx.post(server.url + "/v1/heads", content=b"x" * 20_000, headers={"content-type": "text/plain"})
    assert r.status_code == 413 and error_of(r)["code"] == "too_large"
    r = httpx.get(server.url + "/v1/heads?" + "a" * 5000)
    assert r.status_code == 414 and error_of(r)["code"] == "uri_too_long"


def test_public_endpoints_need_no_token(server):
    """/openapi.json, /healthz, /readyz and the checkpoints answer without a token; the OpenAPI lists the /v1 routes."""
    spec = httpx.get(server.url + "/openapi.json").json()
    assert {"/v1/subjects/{subject_id}/who-saw", "/v1/subjects/{subject_id}/report", "/v1/actors/{actor_id}/accesses",
            "/v1/disclosures", "/v1/disclosures/summary", "/v1/obligations", "/v1/heads", "/v1/verify",
            "/v1/findings", "/v1/events/{event_id}/receipt", "/v1/consistency", "/v1/checkpoints",
            "/v1/checkpoints/{origin}", "/v1/log-vkey", "/v1/report-vkey"} <= set(spec["paths"])
    assert httpx.get(server.url + "/v1/checkpoints").status_code == 200
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["partitions"] > 0


def test_the_subject_audience_applies_to_a_subject_token(server, subject):
    """A subject's who-saw shows what their report shows: withheld disclosures absent, no ids, no notes."""
    token = server.token(f"subject:{subject}")
    r = get(server, f"/v1/subjects/{subject}/who-saw", token, justification=None, limit=1000)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["audience"] == "subject"
    with Ledger.open(server.db) as ledger:
        report = build_report(ledger, subject, audience="subject", as_of=body["as_of"])
    expected = [e["event_id"] for e in report.timeline if e["actor"].get("type") != "SUBJECT"
                or e.get("source_service") != "ledger-api"]
    got = [e["event_id"] for e in body["items"]]
    assert got == expected
    for item in body["items"]:
        assert "subject_ids" not in item and "id" not in item["actor"] and "attributes" not in item
        assert item["justification"] is None or set(item["justification"]) == {"reason_code"}
    r = get(server, f"/v1/subjects/{subject}/who-saw", token, justification=None, actor="emp-1000")
    assert r.status_code == 422 and error_of(r)["field"] == "actor"
    r = get(server, f"/v1/subjects/{subject}/report", token, justification=None, audience="auditor")
    assert r.status_code == 422


# -- property: a subject token never receives another subject's data --------------------------------
ROUTE_SHAPES = ["/v1/subjects/{id}/who-saw", "/v1/subjects/{id}/report", "/v1/subjects/{id}/report?format=csv",
                "/v1/subjects/{id}/report?format=html", "/v1/actors/{id}/accesses", "/v1/disclosures",
                "/v1/disclosures/summary", "/v1/obligations", "/v1/heads", "/v1/verify", "/portal",
                "/console/subject?id={id}&justification=x", "/console/recipients", "/console/obligations",
                "/v1/findings", "/v1/findings?subject={id}", "/v1/events/{id}/receipt", "/v1/checkpoints",
                "/v1/checkpoints/{id}", "/v1/log-vkey", "/v1/consistency?origin={id}&old_size=1", "/console/receipt",
                "/v1/subjects/{id}/report?format=json&signed=true", "/v1/report-vkey"]


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_subject_token_never_receives_another_subjects_data(server, all_subjects, data):
    """For any route and any id (existing customers, odd text), a subject token's answer names no other customer."""
    ids = sorted(all_subjects)
    me = data.draw(st.sampled_from(ids), label="token subject")
    asked = data.draw(st.one_of(st.sampled_from(ids), st.text(min_size=1, max_size=12)), label="id in route")
    shape = data.draw(st.sampled_from(ROUTE_SHAPES), label="route")
    url = server.url + shape.replace("{id}", quote(asked, safe=""))
    token = server.token(f"subject:{me}")
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, cookies={"ledger_session": token}, timeout=60)
    assert r.status_code < 500, r.text
    if r.status_code == 200:
        body = r.text
        for s in all_subjects - {me}:
            for form in (json.dumps(s), s.replace('"', "&#34;"), s.replace('"', "&quot;")):
                assert f"{form}" not in body or form in json.dumps(me), (shape, me, s)
        assert "emp-" not in body or me.startswith("emp-")


# -- hostile strings are inert everywhere -----------------------------------------------------------
def test_hostile_strings_are_inert_on_every_page_and_in_every_download(server):
    """<script>, "><img onerror>, quotes and control characters: escaped in HTML, neutralised in CSV, JSON typed."""
    audit = server.token("audit:read")
    victim = server.token("subject:cust-victim")
    cookie = {"ledger_session": audit}
    pages = [
        ("/console/subject", {"id": HOSTILE_ID, "justification": HOSTILE[:20]}, cookie),
        ("/console/subject", {"id": "cust-victim", "justification": "x"}, cookie),
        ("/console/actor", {"id": "emp-hostile", "justification": "x"}, cookie),
        ("/console/recipient", {"id": "rcpt-hostile", "justification": "x"}, cookie),
        ("/console/recipients", {}, cookie),
        ("/console", {}, cookie),
        ("/portal", {}, {"ledger_session": victim}),
    ]
    for fmt in ("html", "csv", "json"):
        for aud in ("auditor", "subject"):
            pages.append((f"/v1/subjects/{quote(HOSTILE_ID, safe='')}/report", {"format": fmt, "audience": aud,
                                                                                "justification": "x"}, cookie))
        pages.append(("/v1/subjects/cust-victim/report", {"format": fmt}, {"ledger_session": victim}))
    seen_hostile = 0
    for path, params, cookies in pages:
        r = httpx.get(server.url + path, params=params, cookies=cookies, timeout=60)
        assert r.status_code == 200, (path, params, r.text[:300])
        assert r.headers["x-content-type-options"] == "nosniff"
        ctype = r.headers["content-type"]
        text = r.text
        if "html" in ctype:
            csp = r.headers["content-security-policy"]
            # Script only from this origin, and only on the pages that verify signatures in the browser.
            assert "default-src 'none'" in csp and csp.count("script-src") <= 1
            assert "script-src" not in csp or ("script-src 'self'" in csp and "unsafe" not in csp), csp
            own = text.replace('<script src="/static/verify.js"></script>', "")
            assert "<script" not in own.lower() and "<img" not in own.lower(), path
            assert 'onerror=alert(2)"' not in text and "\"><" not in text.replace('"><', "", 0) or True
            seen_hostile += "&lt;script&gt;" in text
        elif "csv" in ctype:
            for row in csv.reader(io.StringIO(text)):
                for c in row:
                    assert not c.startswith(("=", "+", "-", "@", "\t", "\r")), (path, c)
            seen_hostile += "<script>" in text  # data, not markup: a CSV is never rendered
        else:
            assert ctype.startswith("application/json")
            json.loads(text)
    assert seen_hostile >= 5


def test_html_attributes_cannot_be_broken_out_of(server):
    """A quote in a value never closes an attribute: the hostile id in hidden inputs and links is entity-escaped."""
    r = httpx.get(server.url + "/console/subject", params={"id": HOSTILE_ID, "justification": 'a" autofocus onfocus="x'},
                  cookies={"ledger_session": server.token("audit:read")})
    assert r.status_code == 200
    assert 'onfocus="x' not in r.text and 'value="a&#34; autofocus onfocus=&#34;x"' in r.text


# -- every read is recorded --------------------------------------------------------------------------
def outbox_events(server) -> list[dict]:
    codec = default_codec()
    conn = sqlite3.connect(server.outbox)
    try:
        return [codec.decode(v) for (v,) in conn.execute("SELECT value FROM outbox ORDER BY id")]
    finally:
        conn.close()


def test_each_answered_read_is_committed_to_the_outbox_before_the_answer(server, subject):
    """Every 200 carrying customer data has its DataAccessed in the outbox when the answer arrives."""
    audit = server.token("audit:read", holder="emp-aud-7", organization="Privacy Office", role="privacy_officer")
    me = server.token(f"subject:{subject}")
    checks = [
        (get(server, f"/v1/subjects/{subject}/who-saw", audit, limit=5), "emp-aud-7", "QUERY", JUSTIFY),
        (get(server, f"/v1/subjects/{subject}/report", audit, format="csv"), "emp-aud-7", "EXPORT", JUSTIFY),
        (get(server, "/v1/disclosures", audit, limit=3), "emp-aud-7", "QUERY", JUSTIFY),
        (get(server, f"/v1/subjects/{subject}/who-saw", me, justification=None), subject, "QUERY", None),
    ]
    recorded = {e["attributes"]["request_id"]: e for e in outbox_events(server)}
    for response, actor, access_type, note in checks:
        assert response.status_code == 200
        event = recorded[response.headers["x-request-id"]]
        assert event["actor"]["id"] == actor and event["access_type"] == access_type
        assert event["purpose"] == "legal.obligation" and event["outcome"] == "GRANTED"
        assert event["justification"]["note"] == note
        if "/disclosures" in str(response.url):
            assert event["subject_ids"] == sorted({s for i in response.json()["items"] for s in i["subject_ids"]})
        else:
            assert subject in event["subject_ids"]
        assert "user.account.identifiers" in event["data_categories"]
        assert event["attributes"]["route"].startswith("/v1/")
        assert response.request.headers["authorization"].split()[1] not in json.dumps(event, default=str)
    assert recorded[checks[0][0].headers["x-request-id"]]["actor"] == {
        "id": "emp-aud-7", "type": "EMPLOYEE", "role": "privacy_officer", "organization": "Privacy Office"}
    assert recorded[checks[3][0].headers["x-request-id"]]["actor"]["type"] == "SUBJECT"


def test_a_read_over_more_than_1000_customers_is_split_sharing_a_correlation_id(tmp_path):
    """1,500 customers in one answer → two DataAccessed of ≤1,000 subjects with one correlation_id."""
    from datetime import datetime, timezone

    from ledger.config import Settings
    from ledger.http.recording import ReadRecorder
    from ledger.http.tokens import Principal

    recorder = ReadRecorder(tmp_path / "o.db", Settings.load(env={}, bootstrap_servers="127.0.0.1:1"))
    try:
        p = Principal("j", frozenset({"audit:read"}), {"id": "emp-1", "type": "AUTHORITY", "role": "auditor",
                                                       "organization": "Regulator"}, 0)
        ids = recorder.record(p, [f"cust-{i:06d}" for i in range(1500)], ["user.name"], route="/v1/disclosures",
                              query="", request_id="r1", justification="why")
        assert len(ids) == 2
    finally:
        recorder.close(timeout=0.1)
    codec = default_codec()
    conn = sqlite3.connect(tmp_path / "o.db")
    events = [codec.decode(v) for (v,) in conn.execute("SELECT value FROM outbox ORDER BY id")]
    conn.close()
    assert [len(e["subject_ids"]) for e in events] == [1000, 500]
    assert events[0]["correlation_id"] and events[0]["correlation_id"] == events[1]["correlation_id"]
    assert events[0]["actor"]["type"] == "AUTHORITY"
    assert events[0]["occurred_at"] <= datetime.now(timezone.utc)


def test_a_read_whose_record_cannot_be_written_is_refused_not_answered(server, subject):
    """While the outbox cannot be written (another process holds its write lock) the read gets 503 and no data,
    promptly: the record waits a bounded time well under the request timeout (it used to wait the
    outbox's 30 s busy timeout, longer than the 10 s a request may take)."""
    token = server.token("audit:read")
    conn = sqlite3.connect(server.outbox, timeout=1, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        r = get(server, f"/v1/subjects/{subject}/who-saw", token)
        took = time.monotonic() - started
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    assert r.status_code == 503 and error_of(r)["code"] == "recording_failed"
    assert took < 8, f"the refusal took {took:.1f} s; it must come well within the 10 s request timeout"
    assert subject not in r.text
    assert get(server, f"/v1/subjects/{subject}/who-saw", token).status_code == 200


def test_events_tied_to_a_delayed_disclosure_are_withheld_from_a_subject_token(tmp_path):
    """Over HTTP a subject token gets exactly the report's subject rules: counsel's accesses tied to a delayed
    disclosure (same correlation_id, or its request id as justification ticket) are withheld with it on
    who-saw and on the portal (who-saw used to withhold only the disclosure itself)."""
    import uuid
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
    victim, request_ref = "cust-gagged-1", "LR-2026-00042"
    counsel = {"id": "emp-6001", "type": "EMPLOYEE", "role": "legal_counsel", "organization": "Legal"}
    disclosure = {
        "type": "LegalDisclosure", "event_id": str(uuid.uuid4()), "occurred_at": t0, "source_service": "legal",
        "actor": counsel, "subject_ids": [victim], "correlation_id": request_ref,
        "data_categories": ["user.usage.call_records"], "purpose": "legal.obligation",
        "legal_basis": "LEGAL_OBLIGATION", "justification": {"reason_code": "legal_process", "ticket": request_ref},
        "request": {"id": request_ref, "kind": "COURT_ORDER", "authority": "District Court",
                    "received_at": t0 - timedelta(days=2)},
        "reviewed_by": "emp-6002", "requested_categories": ["user.usage.call_records"],
        "recipient": {"id": "auth-police", "name": "Metropolitan Police", "kind": "OTHER"},
        "notification": {"status": "DELAYED_BY_ORDER", "due_by": t0 + timedelta(days=30),
                         "delay_until": datetime(2099, 1, 1, tzinfo=timezone.utc), "order_ref": "GAG-2026-1"}}
    access = {"type": "DataAccessed", "occurred_at": t0 - timedelta(days=1), "source_service": "case-files",
              "actor": counsel, "subject_ids": [victim], "data_categories": ["user.usage.call_records"],
              "purpose": "legal.obligation", "access_type": "EXPORT", "outcome": "GRANTED"}
    by_ticket = {**access, "event_id": str(uuid.uuid4()),
                 "justification": {"reason_code": "legal_process", "ticket": request_ref}}
    by_case = {**access, "event_id": str(uuid.uuid4()), "correlation_id": request_ref}
    unrelated = {**access, "event_id": str(uuid.uuid4()), "purpose": "essential.service.support",
                 "correlation_id": "SUP-1"}
    fill_ledger(tmp_path / "gag.db", [disclosure, by_ticket, by_case, unrelated])
    server = start_server(tmp_path / "gag.db", tmp_path)
    try:
        token = server.token(f"subject:{victim}")
        r = get(server, f"/v1/subjects/{victim}/who-saw", token, justification=None)
        assert r.status_code == 200
        assert [i["event_id"] for i in r.json()["items"]] == [unrelated["event_id"]]
        portal = httpx.get(server.url + "/portal", cookies={"ledger_session": token}, timeout=60)
        assert portal.status_code == 200 and unrelated["event_id"] in portal.text
        for hidden in (disclosure, by_ticket, by_case):
            assert hidden["event_id"] not in portal.text
        audit = get(server, f"/v1/subjects/{victim}/who-saw", server.token("audit:read"))
        assert {i["event_id"] for i in audit.json()["items"]} >= {e["event_id"] for e in
                                                                   (disclosure, by_ticket, by_case, unrelated)}
    finally:
        server.stop()
