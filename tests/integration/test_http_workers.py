"""`ledger serve --workers 2` on a real broker (both answer, cursors cross them, every read reaches Kafka once); --server-timing."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the http extra is needed for `ledger serve`")

import httpx
from fill import fill_ledger
from httpkit import start_server
from kafkautil import read_topics

from ledger.dev.simulate import simulate
from ledger.produce.outbox_file import pending_count
from ledger.wire.codec import default_codec


def worker_pids(parent: int) -> list[int]:
    """uvicorn's worker processes: the parent's children started by multiprocessing's spawn."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def established_sockets(port: int) -> set[str]:
    """Inodes of the ESTABLISHED TCP sockets whose local port is ``port`` (the server's side of each connection)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                found.add(fields[9])
    return found


def sockets_of(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out



def test_two_workers_answer_follow_each_others_cursors_and_record_every_read_once(settings, tmp_path):
    workload = simulate(seed=8, events=600, subjects=8)
    db = fill_ledger(tmp_path / "ledger.db", workload.events).path
    subject = workload.a_rich_subject()
    server = start_server(db, tmp_path / "serve", bootstrap=settings.bootstrap_servers,
                          topic_prefix=settings.topic_prefix, extra=("--workers", "2"))
    try:
        deadline = time.monotonic() + 30
        while len(worker_pids(server.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(worker_pids(server.proc.pid)) == 2
        headers = server.auth(server.token("audit:read", holder="emp-workers"))
        request_ids = []
        for _ in range(20):  # a new connection per request: the kernel hands them to either worker
            first = httpx.get(f"{server.url}/v1/subjects/{subject}/who-saw", params={"limit": 2},
                              headers=headers, timeout=30)
            assert first.status_code == 200, first.text[:300]
            cursor = first.json()["next_cursor"]
            assert cursor
            second = httpx.get(f"{server.url}/v1/subjects/{subject}/who-saw",
                               params={"limit": 2, "cursor": cursor}, headers=headers, timeout=30)
            assert second.status_code == 200, second.text[:300]  # a cursor is good on any worker
            assert {r["event_id"] for r in first.json()["items"]}.isdisjoint(
                r["event_id"] for r in second.json()["items"])
            request_ids += [first.headers["x-request-id"], second.headers["x-request-id"]]
        deadline = time.monotonic() + 60
        while pending_count(server.outbox) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pending_count(server.outbox) == 0, "the shared outbox was not relayed"
    finally:
        server.stop()
    codec = default_codec()
    recorded = [codec.decode(m.value) for m in read_topics(settings)]
    ours = [e["attributes"]["request_id"] for e in recorded
            if e["type"] == "DataAccessed" and e["actor"]["id"] == "emp-workers"]
    assert sorted(ours) == sorted(request_ids)  # every answered read once, whichever worker answered it


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the kernel's socket table (Linux)")
def test_two_workers_each_take_connections_of_their_own_and_both_answer(tmp_path):
    """Each worker listens on its own SO_REUSEPORT socket: of 24 keep-alive connections opened at once, both
    workers hold some (with one shared socket one worker could take them all), and every one is answered."""
    workload = simulate(seed=10, events=200, subjects=4)
    db = fill_ledger(tmp_path / "ledger.db", workload.events).path
    subject = workload.a_rich_subject()
    server = start_server(db, tmp_path / "serve", extra=("--workers", "2"))
    clients = [httpx.Client(timeout=30) for _ in range(24)]
    try:
        deadline = time.monotonic() + 30
        while len(worker_pids(server.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = worker_pids(server.proc.pid)
        assert len(workers) == 2
        headers = server.auth(server.token("audit:read", holder="emp-workers"))
        answers = []

        def ask(client):
            answers.append(client.get(f"{server.url}/v1/subjects/{subject}/who-saw", params={"limit": 1},
                                      headers=headers).status_code)

        threads = [threading.Thread(target=ask, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == [200] * len(clients)
        port = int(server.url.rsplit(":", 1)[1])
        connections = established_sockets(port)
        held = [len(sockets_of(pid) & connections) for pid in workers]
        assert sum(held) == len(clients), held  # every kept-alive connection is held by one of the two
        assert min(held) >= 1, f"one worker took every connection: {held}"
    finally:
        for c in clients:
            c.close()
        server.stop()
    assert server.proc.returncode == 0, server.log_text()[-2000:]
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "a worker outlived the server"


def test_server_timing_is_sent_only_when_asked_for_and_names_the_recording(tmp_path):
    """--server-timing: each answer carries record;dur= (when a read was recorded) and app;dur=; without it, nothing."""
    workload = simulate(seed=9, events=200, subjects=4)
    db = fill_ledger(tmp_path / "ledger.db", workload.events).path
    subject = workload.a_rich_subject()
    for flag, expected in ((("--server-timing",), True), ((), False)):
        server = start_server(db, tmp_path / f"serve{len(flag)}", extra=flag)
        try:
            headers = server.auth(server.token("audit:read"))
            r = httpx.get(f"{server.url}/v1/subjects/{subject}/who-saw", headers=headers, timeout=30)
            assert r.status_code == 200
            timing = r.headers.get("server-timing")
            if not expected:
                assert timing is None
                continue
            spans = dict(item.strip().split(";dur=") for item in timing.split(","))
            assert set(spans) == {"record", "app"}
            assert 0 < float(spans["record"]) <= float(spans["app"])
            health = httpx.get(f"{server.url}/healthz", timeout=30)
            assert health.headers["server-timing"].startswith("app;dur=")  # nothing recorded: app alone
        finally:
            server.stop()


def test_two_workers_serve_tls_with_the_certificate_given(tmp_path):
    """--workers 2 --certfile/--keyfile: each worker's own socket speaks TLS with that certificate."""
    import ssl
    import subprocess
    import sys

    from httpkit import ROOT, free_port
    from witnesskit import self_signed_certificate

    from ledger.http.tokens import write_keypair

    db = fill_ledger(tmp_path / "ledger.db", simulate(seed=11, events=50, subjects=2).events).path
    cert, key = self_signed_certificate(tmp_path)
    _, public = write_keypair(tmp_path / "api.key")
    port = free_port()
    env = dict(os.environ, LEDGER_BOOTSTRAP_SERVERS="127.0.0.1:1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ledger", "serve", "--db", str(db), "--listen",
                                 f"127.0.0.1:{port}", "--token-key", str(public), "--workers", "2",
                                 "--outbox", str(tmp_path / "outbox.db"), "--certfile", str(cert),
                                 "--keyfile", str(key)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        deadline, answered = time.monotonic() + 60, None
        while time.monotonic() < deadline and answered is None:
            try:
                answered = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=context, timeout=2)
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answered is not None and answered.status_code == 200, (tmp_path / "server.log").read_text()
        while len(worker_pids(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(worker_pids(proc.pid)) == 2
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)  # plain HTTP is not served
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0
