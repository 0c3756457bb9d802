"""/readyz says how far behind Kafka the writer is (real broker), and says so plainly when it cannot know."""

from __future__ import annotations

import socket
import time
from collections import Counter

import pytest

pytest.importorskip("fastapi", reason="the http extra is needed for `ledger serve`")

import httpx
from fill import fill_ledger
from httpkit import start_server
from kafkautil import read_topics

from ledger.dev.simulate import simulate
from ledger.ingest.writer import LedgerWriter
from ledger.produce.producer import AuditProducer
from ledger.store import Ledger


def produce(settings, events) -> None:
    with AuditProducer(settings) as producer:
        for e in events:
            producer.emit(e)
        producer.flush()


def kafka_of(server) -> dict:
    r = httpx.get(server.url + "/readyz", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["kafka"]


def refreshed(server, behind: int, within: float = 5.0) -> dict:
    """The lag answer once it says ``behind``: past the ttl the first answer is the last one (given at once)
    while the new probe runs, then the probe's."""
    deadline = time.monotonic() + within
    while True:
        lag = kafka_of(server)
        if lag["records_behind"] == behind or time.monotonic() > deadline:
            return lag
        time.sleep(0.1)


def test_readyz_reports_each_partitions_lag_behind_the_broker(settings, tmp_path, monkeypatch, kafka_client):
    """Per partition: broker end offset minus the ledger's next offset; cached for a few seconds, then fresh."""
    monkeypatch.setenv("LEDGER_KAFKA_CLIENT", kafka_client)
    events = simulate(seed=2, events=40, subjects=6).events
    produce(settings, events[:25])
    LedgerWriter(settings, group_id=None).run(until_idle=True, install_signals=False)
    produce(settings, events[25:37])  # 12 the writer has not read
    server = start_server(settings.db, tmp_path, bootstrap=settings.bootstrap_servers,
                          topic_prefix=settings.topic_prefix)
    try:
        started = time.monotonic()
        lag = kafka_of(server)
        assert lag["configured"] is True and lag["status"] == "ok", lag
        assert lag["records_behind"] == 12
        with Ledger.open(settings.db) as ledger:
            positions = ledger.positions()
        ends = Counter()
        for r in read_topics(settings):
            ends[(r.topic, r.partition)] = max(ends[(r.topic, r.partition)], r.offset + 1)
        for part in lag["partitions"]:
            where = (part["topic"], part["partition"])
            assert part["next_offset"] == positions.get(where, 0)
            assert part["end_offset"] == ends.get(where, 0), part
            assert part["behind"] == part["end_offset"] - part["next_offset"]
        produce(settings, events[37:])  # 3 more
        if time.monotonic() - started < 4:
            assert kafka_of(server)["records_behind"] == 12  # the cached answer: one probe per few seconds
        time.sleep(max(0.0, started + 5.5 - time.monotonic()))
        assert refreshed(server, 15)["records_behind"] == 15
        LedgerWriter(settings, group_id=None).run(until_idle=True, install_signals=False)
        time.sleep(5.5)
        assert refreshed(server, 0)["records_behind"] == 0
    finally:
        server.stop()


def _ledger(tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    fill_ledger(tmp_path / "ledger.db", simulate(seed=1, events=20, subjects=3).events)
    return tmp_path / "ledger.db"


def test_readyz_says_when_kafka_is_not_configured(tmp_path):
    """No --bootstrap-servers and no LEDGER_BOOTSTRAP_SERVERS: ready, and the JSON says lag is not measured."""
    server = start_server(_ledger(tmp_path), tmp_path, bootstrap=None)
    try:
        lag = kafka_of(server)
        assert lag["configured"] is False and lag["status"] == "not_configured"
        assert "LEDGER_BOOTSTRAP_SERVERS" in lag["message"]
    finally:
        server.stop()


def test_readyz_answers_promptly_when_the_broker_is_unreachable_or_silent(tmp_path):
    """A refused port, and a port that accepts but never answers: /readyz is 200 within seconds, never 500."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the backlog; nothing is ever read or written
    try:
        for bootstrap in ("127.0.0.1:1", f"127.0.0.1:{silent.getsockname()[1]}"):
            server = start_server(_ledger(tmp_path / bootstrap.replace(":", "_")), tmp_path / bootstrap.replace(":", "-"),
                                  bootstrap=bootstrap)
            try:
                for _ in range(2):  # the first asks the broker, the second gets the cached failure
                    started = time.monotonic()
                    r = httpx.get(server.url + "/readyz", timeout=30)
                    assert time.monotonic() - started < 6, bootstrap
                    assert r.status_code == 200 and r.json()["status"] == "ready"
                    lag = r.json()["kafka"]
                    assert lag["configured"] is True and lag["status"] == "unreachable", lag
                    assert bootstrap in lag["message"]
            finally:
                server.stop()
    finally:
        silent.close()


def test_an_expired_lag_answer_is_given_at_once_while_a_new_probe_runs():
    """Past its ttl the last answer comes back at once (a silent broker made the probe take its whole timeout)
    and the probe started then replaces it: only the first request ever waits for the broker."""
    from ledger.config import Settings
    from ledger.http.readiness import KafkaLag

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        lag = KafkaLag(Settings.load(env={}, bootstrap_servers=f"127.0.0.1:{silent.getsockname()[1]}"),
                       timeout=1.0, ttl=0.2)
        started = time.monotonic()
        first = lag.report({})
        assert time.monotonic() - started >= 0.9 and first["status"] == "unreachable"  # the first one waits
        time.sleep(0.3)  # past the ttl
        started = time.monotonic()
        again = lag.report({})
        assert time.monotonic() - started < 0.2, "an expired answer made the request wait for the broker"
        assert again is first
        deadline = time.monotonic() + 10
        while lag.report({})["checked_at"] == first["checked_at"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lag.report({})["checked_at"] > first["checked_at"]  # the background probe replaced it
    finally:
        silent.close()
