"""who-saw over HTTP at a fixed offered load, the cost of recording each read, and the report page's render time.

    python bench/bench_http.py                          # 100,000 entries (built once in /tmp), 200 req/s, 20 clients
    python bench/bench_http.py --entries 1000000        # the issue's figure (the build takes a while, once)

A real `ledger serve` process on loopback over the ledger of bench_query.py
(single-customer events over 90 days, about 100 per customer), and in this
process an open-loop load: request i is due at start + i/rate, 20 clients
take the due requests in turn, and a latency counts from when the request
was due (so a slow server cannot hide its queue: no coordinated omission).
Each request asks for the first page (100 rows) of a random customer's
who-saw with an audit:read token, so each is recorded through the durable
outbox before it is answered (no broker runs: the records wait in the
outbox, which is all an answer waits for).

Printed: p50/p90/p99/max latency, achieved rate and errors; the in-process
cost of one recorded read (ReadRecorder.record, an outbox commit with
synchronous=FULL); and the render time of the customer portal page and the
auditor's HTML report for a customer with 1,000 events. Targets (issue 16):
p99 < 100 ms at 200 req/s from 20 clients on 1,000,000 entries; recording
< 2 ms; the report page < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench.bench_query import build, make_event, pct, subject_id  # noqa: E402
from bench.common import machine  # noqa: E402


def ensure_ledger(path: Path, entries: int, subjects: int, rebuild: bool) -> None:
    if rebuild or not path.exists():
        build(path, entries, subjects)


def one_customer_ledger(path: Path, events: int) -> None:
    """A ledger where cust-000000 has ``events`` events (the report page figure)."""
    from fill import ingest_records, to_records  # the tests' writer path, without Kafka

    from ledger.wire.codec import default_codec

    rng = random.Random(3)
    evs = [make_event(rng, i, events, 1) for i in range(events)]
    ingest_records(path, to_records(evs, codec=default_codec()))


async def load(url: str, token: str, subjects: int, rate: float, clients: int, duration: float):
    import httpx

    total = int(rate * duration)
    rng = random.Random(1)
    ids = [subject_id(rng.randrange(subjects)) for _ in range(total)]
    latencies: list[float] = []
    service: list[float] = []
    errors: dict[int, int] = {}
    next_index = 0
    headers = {"Authorization": f"Bearer {token}", "X-Justification": "benchmark"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        # Warm up the connections and the server's per-thread ledger readers.
        await asyncio.gather(*(client.get(f"/v1/subjects/{ids[i % total]}/who-saw") for i in range(clients)))
        start = time.perf_counter()

        async def worker():
            nonlocal next_index
            while next_index < total:
                i = next_index
                next_index += 1
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent = time.perf_counter()
                r = await client.get(f"/v1/subjects/{ids[i]}/who-saw")
                done = time.perf_counter()
                if r.status_code != 200 or len(r.json()["items"]) == 0:
                    errors[r.status_code] = errors.get(r.status_code, 0) + 1
                latencies.append((done - due) * 1000)
                service.append((done - sent) * 1000)

        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, service, errors, total / elapsed


def recording_cost(tmp: Path, samples: int) -> list[float]:
    from ledger.config import Settings
    from ledger.http.recording import ReadRecorder
    from ledger.http.tokens import Principal

    recorder = ReadRecorder(tmp / "bench-outbox.db", Settings.load(env={}, bootstrap_servers="127.0.0.1:1"))
    p = Principal("jti", frozenset({"audit:read"}), {"id": "emp-bench", "type": "EMPLOYEE", "role": "auditor",
                                                     "organization": "Audit"}, 0)
    out = []
    try:
        for i in range(samples):
            t = time.perf_counter()
            recorder.record(p, [subject_id(i), subject_id(i + 1)], ["user.name", "user.contact.email"],
                            route="/v1/subjects/{subject_id}/who-saw", query="limit=100", request_id=str(i),
                            justification="benchmark")
            out.append((time.perf_counter() - t) * 1000)
    finally:
        recorder.close(timeout=0.1)
    return out


def timed_get(url: str, cookies: dict, params: dict | None = None, runs: int = 5) -> list[float]:
    import httpx

    out = []
    with httpx.Client(cookies=cookies, timeout=60) as client:
        for _ in range(runs):
            t = time.perf_counter()
            r = client.get(url, params=params)
            out.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text[:300]
    return out


def fmt(name: str, ms: list[float]) -> str:
    return (f"{name:<58} p50 {pct(ms, 50):7.1f} ms  p90 {pct(ms, 90):7.1f}  p99 {pct(ms, 99):7.1f}  "
            f"max {max(ms):7.1f}  (n={len(ms)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=100_000, help="ledger size (issue figure: 1000000)")
    ap.add_argument("--subjects", type=int, default=None, help="customers (default entries/100)")
    ap.add_argument("--rate", type=float, default=200.0, help="offered requests per second (default 200)")
    ap.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of load (default 15)")
    ap.add_argument("--report-events", type=int, default=1000, help="events of the report-page customer")
    ap.add_argument("--db", type=Path, default=None, help="ledger file (default /tmp/ledger-bench-http-N.db)")
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    subjects = args.subjects or max(1, args.entries // 100)
    db = args.db or Path(f"/tmp/ledger-bench-http-{args.entries}.db")
    ensure_ledger(db, args.entries, subjects, args.rebuild)

    from httpkit import start_server

    print(f"# bench_http: {machine()}")
    print(f"# ledger {db}: {args.entries:,} entries, {subjects:,} customers; offered {args.rate:g} req/s from "
          f"{args.clients} clients for {args.duration:g} s")
    with tempfile.TemporaryDirectory(prefix="ledger-bench-http-") as tmpdir:
        tmp = Path(tmpdir)
        server = start_server(db, tmp)
        try:
            token = server.token("audit:read", holder="emp-bench")
            latencies, service, errors, achieved = asyncio.run(
                load(server.url, token, subjects, args.rate, args.clients, args.duration))
        finally:
            server.stop()
        print(fmt("who-saw first page over HTTP, from when due", latencies))
        print(fmt("who-saw first page over HTTP, from when sent", service))
        print(f"{'achieved rate':<58} {achieved:7.1f} req/s; errors {errors or 'none'}")
        rec = recording_cost(tmp, 500)
        print(fmt("recording one read (outbox commit, synchronous=FULL)", rec))

        small = tmp / "one-customer.db"
        one_customer_ledger(small, args.report_events)
        (tmp / "s").mkdir()
        server = start_server(small, tmp / "s")
        try:
            subject = subject_id(0)
            portal = timed_get(server.url + "/portal", {"ledger_session": server.token(f"subject:{subject}")})
            report = timed_get(server.url + f"/v1/subjects/{subject}/report",
                               {"ledger_session": server.token("audit:read")},
                               {"format": "html", "audience": "auditor", "justification": "benchmark"})
        finally:
            server.stop()
        print(fmt(f"portal page, customer with {args.report_events:,} events", portal))
        print(fmt(f"HTML report (auditor), customer with {args.report_events:,} events", report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
