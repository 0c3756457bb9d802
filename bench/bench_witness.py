"""What a witness round trip costs: `ledger witness serve` as a process, add-checkpoint over loopback.

    python bench/bench_witness.py                 # 300 requests per run, median of 3 runs
    python bench/bench_witness.py --requests 100 --repeat 1

Prints, per run and as the median of the runs:

- ``healthz``: GET /healthz on one keep-alive connection, p50 / p99 (the HTTP stack alone: the
  baseline measured in the same run, since the machine is shared and noisy);
- ``add-checkpoint``: a consistent growth of one origin per request (old size = the last
  cosigned, with its consistency proof), raw HTTP on one keep-alive connection, p50 / p99: parse,
  verify the log's Ed25519 signature and the proof, cosign, commit the state (SQLite WAL,
  synchronous FULL);
- ``client cosign``: the same through ledger.tlog.witness_client.WitnessClient.cosign, which also
  verifies the returned cosignature;
- the ratio of the add-checkpoint p50 to the healthz p50.

Every request body and checkpoint is made before timing starts.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))

import tlog_fixtures as fx  # noqa: E402 - after the sys.path lines above
from witnesskit import SyntheticLog, start_witness  # noqa: E402

from ledger.tlog.witness_client import WitnessClient  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def timed(conn, method: str, path: str, body: bytes | None, want: int) -> float:
    start = time.perf_counter()
    conn.request(method, path, body=body)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    if response.status != want:
        raise SystemExit(f"{method} {path}: {response.status}, expected {want}")
    return elapsed


def one_run(requests: int, tmp: Path, run: int) -> dict[str, float]:
    witness = start_witness(tmp / f"run{run}")
    try:
        port = int(witness.url.rsplit(":", 1)[1])
        step = 7
        raw_log = SyntheticLog(f"{fx.LOG_ORIGIN}/bench{run}/0", n=step * requests + 1)
        client_log = SyntheticLog(f"{fx.LOG_ORIGIN}/bench{run}/1", n=step * requests + 1)
        bodies = [raw_log.request(0, 1)] + [raw_log.request(step * i or 1, step * (i + 1)) for i in range(requests)]
        notes = [(client_log.checkpoint(step * (i + 1)), step * i or 1, step * (i + 1)) for i in range(requests)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        health = [timed(conn, "GET", "/healthz", None, 200) for _ in range(requests)]
        timed(conn, "POST", "/add-checkpoint", bodies[0], 200)
        adds = [timed(conn, "POST", "/add-checkpoint", body, 200) for body in bodies[1:]]
        conn.close()
        client = WitnessClient(witness.url, [fx.WITNESS_KEY.verifier()])
        client.cosign(client_log.checkpoint(1), 1, 0, [], lambda old: [])
        cosigns = []
        for note, old, size in notes:
            proof = client_log.reader.consistency_proof(old, size)
            start = time.perf_counter()
            client.cosign(note, size, old, proof, lambda o, size=size: client_log.reader.consistency_proof(o, size))
            cosigns.append(time.perf_counter() - start)
        client.close()
    finally:
        witness.stop()
    return {
        "healthz p50 ms": percentile(health, 50) * 1e3, "healthz p99 ms": percentile(health, 99) * 1e3,
        "add-checkpoint p50 ms": percentile(adds, 50) * 1e3, "add-checkpoint p99 ms": percentile(adds, 99) * 1e3,
        "client cosign p50 ms": percentile(cosigns, 50) * 1e3, "client cosign p99 ms": percentile(cosigns, 99) * 1e3,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{args.requests} requests per run, {args.repeat} run(s)")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.repeat):
            result = one_run(args.requests, Path(tmp), run)
            runs.append(result)
            print(f"run {run + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()))
    medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print("median: " + ", ".join(f"{k} {v:.2f}" for k, v in medians.items()))
    print(f"add-checkpoint p50 / healthz p50: {medians['add-checkpoint p50 ms'] / medians['healthz p50 ms']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
