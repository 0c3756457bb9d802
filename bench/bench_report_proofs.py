"""What proofs cost in reports: building them, checking them offline, and `ledger prove` through the CLI.

    python bench/bench_report_proofs.py                   # 5,200 events over 20 customers (~1,000 lines), median of 3
    python bench/bench_report_proofs.py --events 20000 --repeat 1

Builds a ledger through the real ingest path (no broker), signs every partition's checkpoint, takes
the customer with the most events (about 1,000 lines) and prints, each a median of ``--repeat`` runs:

- the auditor's report with a receipt per line: built (``build_report_with_proofs``, one snapshot)
  and verified offline (``verify_report``: every receipt, every line against its record);
- the subject's report, signed: built and signed, then verified (signature, checkpoints, positions);
- ``verify_receipt`` of one receipt in-process: p50 / p99 over the report's receipts;
- ``ledger prove EVENT_ID`` as a new process (what a user waits for), beside ``python -c pass``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))

ORIGIN = "bench.example/audit"


def build(directory: Path, events: int, subjects: int):
    from fill import ingest_records, to_records

    from ledger.dev.simulate import simulate
    from ledger.store.checkpoints import issue_checkpoints
    from ledger.tlog.note import generate_signer
    from ledger.wire.codec import default_codec

    work = simulate(seed=7, events=events, subjects=subjects)
    db = directory / "ledger.db"
    ingest_records(db, list(to_records(work.events, codec=default_codec())), batch=2000)
    log_key = generate_signer(ORIGIN)
    issue_checkpoints(db, log_key, directory / "log.key", ORIGIN)
    counts: dict[str, int] = {}
    for e in work.events:
        for s in e.get("subject_ids") or []:
            counts[s] = counts.get(s, 0) + 1
    return db, log_key, max(sorted(counts), key=counts.get), work.events


CPU: dict[str, list[float]] = {}  # label -> CPU seconds per run (process_time: less swayed by a loaded machine)


def timed(call, label: str | None = None):
    c0, t0 = time.process_time(), time.perf_counter()
    value = call()
    if label:
        CPU.setdefault(label, []).append(time.process_time() - c0)
    return time.perf_counter() - t0, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5_200)
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from ledger.audit.report.proofs import build_report_with_proofs, render_proved
    from ledger.store import Ledger
    from ledger.tlog.note import generate_signer
    from ledger.tlog.receipt import verify_receipt
    from ledger.tlog.report_check import verify_report
    from ledger.wire.codec import default_codec

    with tempfile.TemporaryDirectory() as tmp:
        db, log_key, subject, events = build(Path(tmp), args.events, args.subjects)
        report_key = generate_signer("reports.bench.example/1")
        vkey, rvkey = log_key.verifier().vkey, report_key.verifier().vkey
        codec = default_codec()

        def report(audience, signer=None):
            with Ledger.open(db, readonly=True) as ledger:
                made = build_report_with_proofs(ledger, subject, audience=audience, log_origin=ORIGIN)
            return render_proved(made, signer)

        runs = {"auditor build": [], "auditor verify": [], "subject build": [], "subject verify": []}
        for _ in range(args.repeat):
            t, auditor = timed(lambda: report("auditor"), "auditor build")
            runs["auditor build"].append(t)
            t, result = timed(lambda doc=auditor: verify_report(doc, [vkey], codec=codec), "auditor verify")
            assert result.ok, result.problems[:3]
            runs["auditor verify"].append(t)
            t, signed = timed(lambda: report("subject", report_key))
            runs["subject build"].append(t)
            t, result = timed(lambda doc=signed: verify_report(doc, [vkey], [rvkey], codec=codec))
            assert result.ok, result.problems[:3]
            runs["subject verify"].append(t)
        doc = json.loads(auditor)
        lines = len(doc["timeline"])
        subject_lines = len(json.loads(signed)["timeline"])
        receipts = [v["receipt"] for v in doc["timeline"]]
        cpu = []
        for text in receipts:
            t0 = time.process_time()
            verify_receipt(text, [vkey], codec=codec)
            cpu.append(time.process_time() - t0)
        cpu.sort()

        event_id = next(e["event_id"] for e in events if subject in (e.get("subject_ids") or []))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LEDGER_LOG_ORIGIN": ORIGIN}
        prove, bare = [], []
        for _ in range(args.repeat):
            t, _ = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
            bare.append(t)
            t, out = timed(lambda: subprocess.run([sys.executable, "-m", "ledger", "prove", event_id, "--db", str(db)],
                                                  check=True, capture_output=True, env=env))
            assert out.stdout.startswith(b"c2sp.org/tlog-proof@v1\n")
            prove.append(t)

    med = {k: statistics.median(v) for k, v in runs.items()}
    cpu_med = {k: statistics.median(v) for k, v in CPU.items()}
    size = len(auditor.encode()) / 1e6
    print(f"auditor report with receipts, {lines:,} lines ({size:.1f} MB of JSON): "
          f"built in {med['auditor build']:.2f} s, "
          f"verified offline in {med['auditor verify']:.2f} s (goal < 2 s for 1,000 lines; median of {args.repeat}); "
          f"CPU {cpu_med['auditor build']:.2f} s and {cpu_med['auditor verify']:.2f} s")
    print(f"subject report, signed, {subject_lines:,} lines: built and signed in {med['subject build']:.2f} s, "
          f"verified in {med['subject verify'] * 1e3:.0f} ms")
    p50, p99 = cpu[len(cpu) // 2] * 1e3, cpu[int(len(cpu) * 0.99)] * 1e3
    print(f"verify_receipt in-process: CPU p50 {p50:.2f} ms, p99 {p99:.2f} "
          f"ms over {len(cpu):,} receipts (goal < 5 ms)")
    print(f"ledger prove through the CLI ({args.events:,} events): {statistics.median(prove) * 1e3:.0f} ms wall, "
          f"python -c pass {statistics.median(bare) * 1e3:.0f} ms (goal < 300 ms; median of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
