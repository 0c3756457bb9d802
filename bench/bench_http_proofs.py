"""The verifiable-ledger routes over HTTP: checkpoints, receipts, consistency proofs, and /readyz's Kafka lag.

    python bench/bench_http_proofs.py                   # 100,000 entries (built once in /tmp), 3 runs
    python bench/bench_http_proofs.py --entries 1000000

A real `ledger serve` process on loopback over the ledger of bench_query.py, signed once with
`issue_checkpoints` (timed in-process). Sequential requests, one client: the latency of the list of
checkpoints (public), one checkpoint note, the receipt of a random event (audit:read, recorded through
the durable outbox like every read), a consistency proof from a random old size, and /readyz with an
unreachable broker (the first call waits for the probe's timeout; the next ones within 5 s are cached).
Printed: p50/p90/max per route for each run, then the median of the runs' p50s.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from bench.bench_query import build, pct  # noqa: E402
from bench.common import machine  # noqa: E402

ORIGIN = "bench.example/audit"


def timed(client, url: str, runs: int, params=None, headers=None) -> list[float]:
    out = []
    for _ in range(runs):
        p = params() if callable(params) else params
        t = time.perf_counter()
        r = client.get(url() if callable(url) else url, params=p, headers=headers)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text[:300]
    return out


def main() -> int:
    import httpx
    from httpkit import start_server

    from ledger.store.checkpoints import issue_checkpoints
    from ledger.tlog.keyfile import load_signer, write_key_pair

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--subjects", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=50)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-proofs-"))
    db = tmp / "ledger.db"
    t = time.perf_counter()
    build(db, args.entries, args.subjects)
    print(f"{machine()}\nbuilt {args.entries:,} entries in {time.perf_counter() - t:.1f} s")
    key, vkey, _ = write_key_pair(ORIGIN, tmp / "keys")
    t = time.perf_counter()
    issued = issue_checkpoints(db, load_signer(key), key, ORIGIN)
    print(f"issue_checkpoints: {len(issued)} origins in {(time.perf_counter() - t) * 1000:.1f} ms")
    with sqlite3.connect(db) as conn:
        events = [e for (e,) in conn.execute("SELECT event_id FROM event_ids")]
    server = start_server(db, tmp / "server", extra=("--log-vkey", str(vkey), "--log-origin", ORIGIN))
    rng = random.Random(1)
    results: dict[str, list[float]] = {}
    try:
        audit = server.auth(server.token("audit:read"), "bench")
        with httpx.Client(base_url=server.url, timeout=60) as c:
            first = issued[0]
            for run in range(args.runs):
                n = args.requests
                row = {
                    "GET /v1/checkpoints": timed(c, "/v1/checkpoints", n),
                    "GET /v1/checkpoints/{origin}": timed(c, f"/v1/checkpoints/{first.origin}", n),
                    "GET /v1/events/{id}/receipt (recorded)": timed(
                        c, lambda: f"/v1/events/{rng.choice(events)}/receipt", n, headers=audit),
                    "GET /v1/consistency": timed(c, "/v1/consistency", n, headers=audit, params=lambda: {
                        "origin": first.origin, "old_size": rng.randint(1, first.size)}),
                }
                time.sleep(5.5)  # let /readyz's cached answer expire
                ready = timed(c, "/readyz", 1) + timed(c, "/readyz", n - 1)
                row["GET /readyz, first (probe, unreachable broker)"] = ready[:1]
                row["GET /readyz, cached"] = ready[1:]
                print(f"run {run + 1}:")
                for name, ms in row.items():
                    print(f"  {name:<48} p50 {pct(ms, 50):8.2f} ms  p90 {pct(ms, 90):8.2f}  max {max(ms):8.2f}")
                    results.setdefault(name, []).append(pct(ms, 50))
    finally:
        server.stop()
    print(f"median of {args.runs} runs' p50 ({args.entries:,} entries):")
    for name, p50s in results.items():
        print(f"  {name:<48} {statistics.median(p50s):8.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
