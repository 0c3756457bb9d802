"""Every read through `ledger serve` reaches the ledger itself: outbox → Kafka → writer → who-saw (real broker)."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("fastapi", reason="the http extra is needed for `ledger serve`")

import httpx
from httpkit import start_server

from ledger.audit import query
from ledger.dev.simulate import simulate
from ledger.ingest.writer import LedgerWriter
from ledger.produce.outbox_file import pending_count
from ledger.produce.producer import AuditProducer
from ledger.store import Ledger


def run_writer(settings) -> None:
    LedgerWriter(settings, group_id=None).run(until_idle=True, install_signals=False)



def test_every_answered_read_appears_in_the_ledger_as_its_data_accessed(settings, tmp_path):
    """Auditor and customer reads become DataAccessed entries naming the holder; the customer then sees the auditor."""
    workload = simulate(seed=21, events=300, subjects=12)
    with AuditProducer(settings) as producer:
        for event in workload.events:
            producer.emit(event)
        producer.flush()
    run_writer(settings)
    subject = workload.a_rich_subject()
    server = start_server(settings.db, tmp_path, bootstrap=settings.bootstrap_servers,
                          topic_prefix=settings.topic_prefix)
    try:
        audit = server.token("audit:read", holder="emp-aud-1", holder_type="AUTHORITY", role="inspector",
                             organization="Data Protection Authority")
        me = server.token(f"subject:{subject}")
        reads = []
        for path, token, params in (
            (f"/v1/subjects/{subject}/who-saw", audit, {"limit": 10}),
            (f"/v1/subjects/{subject}/report", audit, {"format": "html", "audience": "auditor"}),
            ("/v1/disclosures", audit, {"limit": 5}),
            ("/v1/actors/" + workload.events[0]["actor"]["id"] + "/accesses", audit, {"limit": 5}),
            ("/v1/obligations", audit, {}),
            (f"/v1/subjects/{subject}/who-saw", me, {}),
            ("/portal", me, {}),
        ):
            r = httpx.get(server.url + path, params=params, timeout=60,
                          headers={"Authorization": f"Bearer {token}", "X-Justification": "DPA inquiry 2026-17"})
            assert r.status_code == 200, (path, r.text[:300])
            answered = r.json()["items"] if "json" in r.headers["content-type"] and "items" in r.json() else [1]
            if answered:
                reads.append((r.headers.get("x-request-id") or "", path, token is me))
        deadline = time.monotonic() + 60
        while pending_count(server.outbox) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pending_count(server.outbox) == 0, "the outbox relay did not deliver the recorded reads"
    finally:
        server.stop()
    run_writer(settings)
    with Ledger.open(settings.db) as ledger:
        api_reads = [row for row in query.accesses(ledger, "emp-aud-1")] + \
                    [row for row in query.accesses(ledger, subject) if row["source_service"] == "ledger-api"]
        by_request = {row["attributes"]["request_id"]: row for row in api_reads}
        for request_id, _path, by_subject in reads:
            if not request_id:  # pages carry no X-Request-Id header: matched by route below
                continue
            row = by_request[request_id]
            assert row["type"] == "DataAccessed" and row["outcome"] == "GRANTED"
            assert row["actor"]["type"] == ("SUBJECT" if by_subject else "AUTHORITY")
            assert row["attributes"]["route"].startswith("/v1/")
            if not by_subject:
                assert row["justification"] == {"reason_code": "audit_read", "ticket": None,
                                                 "note": "DPA inquiry 2026-17"}
        assert any(r["attributes"]["route"] == "/portal" for r in api_reads)
        assert len(api_reads) == len(reads)
        # The customer's own who-saw now shows the authority's reads, by role and organisation.
        seen = [r for r in query.who_saw(ledger, subject) if r["source_service"] == "ledger-api"
                and r["actor"]["type"] == "AUTHORITY"]
        assert seen and seen[0]["actor"]["organization"] == "Data Protection Authority"
