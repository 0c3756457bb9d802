"""Issue 16's figures: who-saw over HTTP at 200 req/s offered from 20 clients, the cost of recording
each read, and the report page of a customer with 1,000 events, on a 1,000,000-entry ledger.

    python bench/bench_http.py                             # the issue's figures, medians of 3 runs
    python bench/bench_http.py --workers 1,2 --runs 3      # compare server process counts
    python bench/bench_http.py --entries 100000 --duration 10   # a quicker look

The ledger is bench_query.py's (single-customer events over 90 days, about
100 per customer, 10,000 customers) plus one customer with 1,000 events of
their own (``cust-report``), built once under ``build/`` (about 2.5 minutes
for 1,000,000 entries) and reused while its marker file says it is
complete. A local broker (tansu) runs on the same two cores and takes the
recorded reads: every answered read is committed to the server's durable
outbox before it is answered, and its relay delivers it to Kafka meanwhile.

The load (bench/httpload.py, in its own process) is open-loop and bounded:
request i is due at start + i/rate, 20 keep-alive connections take the due
requests in turn, and a latency runs from when its request was due, so a
server that falls behind cannot hide its queue. Each request is the first
page (100 rows) of a random customer's who-saw with an ``audit:read`` token.
Printed per run and as medians: p50/p99/max latency, achieved rate, errors.

The recording cost is measured inside the real server under that load: it
runs with ``--server-timing`` and each answer's ``Server-Timing: record;dur=``
is the wall time of ``ReadRecorder.record`` (validate, encode, the outbox's
group commit with ``synchronous=FULL``). The report figures are wall times
from this process of the customer portal page and the auditor's HTML report
of ``cust-report``. Targets (issue 16): p99 < 100 ms at 200 req/s,
recording < 2 ms, report page < 1 s.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from bench.bench_query import build, make_event, pct, subject_id  # noqa: E402
from bench.common import bench_settings, machine  # noqa: E402

REPORT_SUBJECT = "cust-report"
BUILD_VERSION = 1  # bump when what the build writes changes


def ledger_path(entries: int) -> Path:
    return ROOT / "build" / f"bench-http-{entries}.db"


def ensure_ledger(path: Path, entries: int, subjects: int, report_events: int, rebuild: bool) -> None:
    """Build the ledger unless a complete one of the same shape is there (its marker file says so)."""
    marker = Path(f"{path}.built")
    shape = {"version": BUILD_VERSION, "entries": entries, "subjects": subjects, "report_events": report_events}
    if not rebuild and path.exists() and marker.exists() and json.loads(marker.read_text()) == shape:
        return
    marker.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    build(path, entries, subjects)
    add_report_customer(path, report_events)
    marker.write_text(json.dumps(shape))


def add_report_customer(path: Path, events: int) -> None:
    """``events`` events of REPORT_SUBJECT alone, on topics of their own prefix (offsets start at 0 there)."""
    from fill import ingest_records, to_records  # the tests' writer path, without Kafka

    from ledger.store import Ledger
    from ledger.wire.codec import default_codec

    rng = random.Random(3)
    evs = []
    for i in range(events):
        event = make_event(rng, i, events, 1)
        event["subject_ids"] = [REPORT_SUBJECT]
        evs.append(event)
    with Ledger.open(path) as led:
        bucket_bits = int(led.meta().get("bucket_bits", 16))
    ingest_records(path, to_records(evs, codec=default_codec(), prefix="report."), bucket_bits=bucket_bits)


def who_saw_run(db: Path, settings, tmp: Path, *, workers: int, rate: float, clients: int, duration: float,
                subjects: int, seed: int, plain: bool = False, threads: int | None = None) -> dict:
    from httpkit import start_server

    extra = () if plain else ("--workers", str(workers), "--server-timing")
    if threads is not None:
        extra += ("--threads", str(threads))
    server = start_server(db, tmp, bootstrap=settings.bootstrap_servers, topic_prefix=settings.topic_prefix,
                          extra=extra)
    try:
        if workers > 1:
            wait_for_listeners(int(server.url.rsplit(":", 1)[1]), workers)
        token = server.token("audit:read", holder="emp-bench")
        rng = random.Random(seed)
        paths = [f"/v1/subjects/{subject_id(rng.randrange(subjects))}/who-saw" for _ in range(int(rate * duration))]
        cpu_before = process_cpus(server.proc.pid)
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "httpload.py"), server.url, "--rate", str(rate),
             "--clients", str(clients), "--check-page", "--header", f"Authorization: Bearer {token}",
             "--header", "X-Justification: benchmark"],
            input="\n".join(paths), capture_output=True, text=True, timeout=duration * 20 + 120)
        if done.returncode != 0:
            raise RuntimeError(f"the load failed:\n{done.stderr[-2000:]}")
        result = json.loads(done.stdout)
        cpu_after = process_cpus(server.proc.pid)
        used = {p: cpu_after[p] - cpu_before.get(p, 0.0) for p in cpu_after}
        result["server_cpu_ms_per_request"] = sum(used.values()) * 1000 / len(paths)
        # Per process, busiest first: shows whether the workers shared the connections evenly.
        result["cpu_share"] = sorted((u / max(sum(used.values()), 1e-9) for u in used.values()), reverse=True)
        # The records reach Kafka too: wait a little for the relay, and say what is left.
        deadline = time.monotonic() + 30
        while _pending(server.outbox) and time.monotonic() < deadline:
            time.sleep(0.2)
        result["left_in_outbox"] = _pending(server.outbox)
        return result
    finally:
        server.stop()


def wait_for_listeners(port: int, workers: int, timeout: float = 15.0) -> None:
    """Until ``workers`` sockets listen on ``port`` (one per worker with SO_REUSEPORT), at most ``timeout`` s.

    /healthz answers once the first worker listens; keep-alive connections opened before the others
    listen would all stay with it. A server whose workers share one socket shows one listener: the
    wait then ends at ``timeout``, which gives its workers the same time to start.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                return  # not Linux: nothing to wait on
            listening += sum(1 for line in lines if line.split()[3] == "0A"
                             and int(line.split()[1].rsplit(":", 1)[1], 16) == port)
        if listening >= workers:
            return
        time.sleep(0.2)


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live descendants (the worker processes)."""
    return sum(process_cpus(pid).values())


def process_cpus(pid: int) -> dict[int, float]:
    """CPU seconds of ``pid`` and of each live descendant, by pid."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    found, todo = {}, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            found[p] = (int(fields[11]) + int(fields[12])) / tick
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return found


def _pending(outbox: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(outbox)
    try:
        return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    finally:
        conn.close()


def report_times(db: Path, tmp: Path, runs: int = 5) -> tuple[list[float], list[float]]:
    import httpx
    from httpkit import start_server

    server = start_server(db, tmp)
    try:
        def timed(url, token, params=None):
            out = []
            with httpx.Client(cookies={"ledger_session": token}, timeout=60) as client:
                for _ in range(runs):
                    t = time.perf_counter()
                    r = client.get(url, params=params)
                    out.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, r.text[:300]
            return out

        portal = timed(server.url + "/portal", server.token(f"subject:{REPORT_SUBJECT}"))
        report = timed(server.url + f"/v1/subjects/{REPORT_SUBJECT}/report", server.token("audit:read"),
                       {"format": "html", "audience": "auditor", "justification": "benchmark"})
        return portal, report
    finally:
        server.stop()


def recording_in_process(tmp: Path, threads: int, per_thread: int) -> tuple[list[float], int | None]:
    """``ReadRecorder.record`` wall times from ``threads`` threads at once (1: alone), and the outbox's commits.

    No broker (the records stay in the outbox): this is the cost an answer waits for.
    """
    import threading

    from ledger.config import Settings
    from ledger.http.recording import ReadRecorder
    from ledger.http.tokens import Principal

    recorder = ReadRecorder(tmp / f"outbox-{threads}.db", Settings.load(env={}, bootstrap_servers="127.0.0.1:1"))
    p = Principal("jti", frozenset({"audit:read"}), {"id": "emp-bench", "type": "EMPLOYEE", "role": "auditor",
                                                     "organization": "Audit"}, 0)
    times: list[float] = []
    start = threading.Barrier(threads)

    def work(k: int):
        start.wait()
        for i in range(per_thread):
            t = time.perf_counter()
            recorder.record(p, [subject_id(k * per_thread + i)], ["user.name", "user.contact.email"],
                            route="/v1/subjects/{subject_id}/who-saw", query="limit=100", request_id=f"{k}-{i}",
                            justification="benchmark")
            times.append((time.perf_counter() - t) * 1000)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    commits = getattr(recorder._producer._outbox, "group_commits", None)
    recorder.close(timeout=0.1)
    return times, commits


def line(name: str, ms: list[float]) -> str:
    return (f"  {name:<52} p50 {pct(ms, 50):8.1f} ms  p99 {pct(ms, 99):8.1f}  max {max(ms):8.1f}  (n={len(ms)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000, help="ledger size (default 1,000,000: the issue's)")
    ap.add_argument("--subjects", type=int, default=None, help="customers (default entries/100)")
    ap.add_argument("--rate", type=float, default=200.0, help="offered requests per second (default 200)")
    ap.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load per run (default 20)")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs per configuration; medians printed (default 3; 0: only the in-process figures)")
    ap.add_argument("--workers", default="2", help="server processes, comma-separated to compare (default 2)")
    ap.add_argument("--threads", type=int, default=None, help="the server's --threads (default: its own default)")
    ap.add_argument("--report-events", type=int, default=1000, help="events of the report customer (default 1000)")
    ap.add_argument("--rebuild", action="store_true", help="build the ledger again")
    ap.add_argument("--plain-server", action="store_true",
                    help="start `ledger serve` without --workers/--server-timing (a server from before them)")
    args = ap.parse_args()
    subjects = args.subjects or max(1, args.entries // 100)
    db = ledger_path(args.entries)
    ensure_ledger(db, args.entries, subjects, args.report_events, args.rebuild)
    import os

    print(f"# bench_http: {machine()}; load average {os.getloadavg()[0]:.1f} at start")
    print(f"# ledger {db.relative_to(ROOT)}: {args.entries:,} entries + {args.report_events:,} of {REPORT_SUBJECT}, "
          f"{subjects:,} customers; offered {args.rate:g} req/s from {args.clients} clients for {args.duration:g} s, "
          f"{args.runs} run(s) per configuration; local broker on the same cores")
    with tempfile.TemporaryDirectory(prefix="ledger-bench-http-") as tmpdir, bench_settings(db=str(db)) as settings:
        tmp = Path(tmpdir)
        for workers in [int(w) for w in args.workers.split(",")] if args.runs else []:
            runs = []
            for run in range(args.runs):
                r = who_saw_run(db, settings, tmp / f"w{workers}-r{run}", workers=workers, rate=args.rate,
                                clients=args.clients, duration=args.duration, subjects=subjects, seed=run,
                                plain=args.plain_server, threads=args.threads)
                rec = r["server_timing"].get("record", [float("nan")])
                runs.append(r)
                print(f"workers {workers} run {run + 1}: achieved {r['achieved']:.1f} req/s, errors "
                      f"{r['errors'] or 'none'}; from when due p50 {pct(r['latencies_ms'], 50):.1f} p99 "
                      f"{pct(r['latencies_ms'], 99):.1f} max {max(r['latencies_ms']):.1f} ms; recording p50 "
                      f"{pct(rec, 50):.2f} p99 {pct(rec, 99):.2f} ms; server CPU "
                      f"{r['server_cpu_ms_per_request']:.2f} ms/request (shares "
                      f"{'/'.join(f'{x:.0%}' for x in r['cpu_share'] if x >= 0.01)}); "
                      f"load average {os.getloadavg()[0]:.1f}; "
                      f"{r['left_in_outbox']} read(s) not yet relayed after 30 s", flush=True)

            def med(f, runs=runs):
                return statistics.median(f(r) for r in runs)

            print(f"workers {workers}, medians of {len(runs)}:")
            print(f"  who-saw first page, from when due: p50 {med(lambda r: pct(r['latencies_ms'], 50)):.1f} ms, "
                  f"p99 {med(lambda r: pct(r['latencies_ms'], 99)):.1f} ms, "
                  f"max {med(lambda r: max(r['latencies_ms'])):.1f} ms; achieved {med(lambda r: r['achieved']):.1f} "
                  f"req/s; errors {sum(sum(r['errors'].values()) for r in runs)}; server CPU "
                  f"{med(lambda r: r['server_cpu_ms_per_request']):.2f} ms per request")
            print(f"  recording one read (Server-Timing record): p50 "
                  f"{med(lambda r: pct(r['server_timing'].get('record', [0]), 50)):.2f} ms, p99 "
                  f"{med(lambda r: pct(r['server_timing'].get('record', [0]), 99)):.2f} ms; time in the app p50 "
                  f"{med(lambda r: pct(r['server_timing'].get('app', [0]), 50)):.2f} ms", flush=True)
        for threads, per_thread in ((1, 300), (20, 30)):
            ms, commits = recording_in_process(tmp, threads, per_thread)
            grouped = "" if commits is None else f"; {len(ms) / commits:.1f} records per commit"
            print(line(f"recording one read in-process, {threads} thread(s) at once", ms) + grouped, flush=True)
        (tmp / "report").mkdir()
        portal, report = report_times(db, tmp / "report")
        print(line(f"portal page of {REPORT_SUBJECT} ({args.report_events:,} events)", portal))
        print(line(f"auditor HTML report of {REPORT_SUBJECT}", report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
