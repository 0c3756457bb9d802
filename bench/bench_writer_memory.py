"""Peak memory of the real writer on large records: garbage and valid, 1 MB each.

    python bench/bench_writer_memory.py [--records 300] [--size 1000000] [--batch-max-bytes N] [--kinds garbage,valid]

Produces ``--records`` records of ``--size`` bytes of random garbage (each is
kept as ``rejected`` and copied to the dead-letter topic), then as many valid
events whose free text makes them about as large (plain text, then control
characters, which the stored JSON form writes as six bytes each), to fresh
topics, and events whose attributes map has ~140,000 tiny entries (the most
Python objects per wire byte); then runs
``ledger consume --until-idle`` (a fresh process, the real writer) on each set
into an empty ledger and prints the peak RSS of the writer and its read-ahead
process together (sampled every 20 ms; ``LEDGER_READ_AHEAD=off`` in the
environment measures the writer alone) and of the largest one (``wait4``).
Before issue 12 a batch was bounded by records only: 300 garbage records took
the writer from 136 MB to 1.04 GB. Batches are now bounded by bytes too
(``LEDGER_BATCH_MAX_BYTES``, default 16 MiB).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import bench_settings, machine

from ledger.kafka.topics import topic_for
from ledger.produce.producer import wire_record
from ledger.wire.codec import default_codec

_LAUNCHER = (
    "import os, subprocess, sys, threading, time\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "peak = [0]\n"
    "done = threading.Event()\n"
    "def rss(pid):\n"
    "    try:\n"
    "        for line in open(f'/proc/{pid}/status'):\n"
    "            if line.startswith('VmRSS:'): return int(line.split()[1])\n"
    "    except OSError: pass\n"
    "    return 0\n"
    "def tree(pid):\n"
    "    try: kids = open(f'/proc/{pid}/task/{pid}/children').read().split()\n"
    "    except OSError: kids = []\n"
    "    return [pid] + [k for c in kids for k in tree(int(c))]\n"
    "def watch():\n"
    "    while not done.is_set():  # not p.poll(): it would reap the child before wait4\n"
    "        peak[0] = max(peak[0], sum(rss(q) for q in tree(p.pid)))\n"
    "        time.sleep(0.02)\n"
    "t = threading.Thread(target=watch, daemon=True); t.start()\n"
    "err = p.stderr.read()\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "done.set()\n"
    "sys.stderr.buffer.write(err)\n"
    "print(usage.ru_maxrss, peak[0])\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def peak_rss_mib(argv: list[str], env: dict) -> tuple[float, float, float]:
    """Peak resident memory (MiB) of the largest process, of the writer and its read-ahead process together
    (sampled every 20 ms), and seconds of one run of ``argv``."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{argv} failed with {out.returncode}: {out.stderr}")
    largest, together = (int(v) for v in out.stdout.split())
    return largest / 1024, together / 1024, time.perf_counter() - started


def valid_event(i: int, size: int, hostile: bool = False) -> dict:
    # Free text is kept as sent; control characters take six bytes each in the stored JSON form
    # ("\u0001"), the worst expansion a producer can cause.
    note = ("\x01" * size) if hostile else ("x" * 64 + "\n") * (size // 65)
    if hostile == "map":  # ~200,000 tiny map entries: the most Python objects per wire byte
        return {**valid_event(i, 1000), "attributes": {f"{n:x}": "" for n in range(size // 7)}}
    return {"type": "DataAccessed", "occurred_at": "2026-03-01T00:00:00Z", "source_service": "bench",
            "actor": {"id": f"emp-{i % 50}", "type": "EMPLOYEE"}, "subject_ids": [f"cust-{i:06d}"],
            "data_categories": ["user.contact.email"], "purpose": "essential.service.support",
            "access_type": "VIEW", "outcome": "GRANTED",
            "justification": {"reason_code": "bench", "note": note[: size - 400]}}


def produce(settings, records: int, size: int, kind: str) -> None:
    # Explicit partitions, which the seam does not offer: the bare kafka-python producer (bench is exempt).
    from kafka import KafkaProducer

    producer = KafkaProducer(**settings.kafka_options(), acks="all", max_in_flight_requests_per_connection=1)
    topic = topic_for("DataAccessed", settings.topic_prefix)
    codec = default_codec()
    try:
        for i in range(records):
            if kind == "garbage":
                producer.send(topic, value=os.urandom(size), key=f"k{i}".encode(), partition=i % settings.partitions)
            else:
                hostile = {"valid, control-char text": True, "valid, tiny-entry map": "map"}.get(kind, False)
                wire = wire_record(valid_event(i, size, hostile), codec, settings.topic_prefix)
                producer.send(wire.topic, value=wire.value, key=wire.key, headers=wire.headers)
        producer.flush()
    finally:
        producer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--batch-max-bytes", type=int, default=None)
    parser.add_argument("--kinds", default="garbage,valid,control,map",
                        help="which record sets, comma-separated (default all four)")
    args = parser.parse_args()
    names = {"garbage": "garbage", "valid": "valid", "control": "valid, control-char text",
             "map": "valid, tiny-entry map"}
    kinds = [names[k.strip()] for k in args.kinds.split(",")]
    print(machine())
    print(f"{args.records} records of {args.size:,} bytes, batch_max_bytes "
          f"{args.batch_max_bytes or 'default (16 MiB)'}")
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp, bench_settings(partitions=3, db=str(Path(tmp) / "l.db")) as s:
            produce(s, args.records, args.size, kind)
            env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": s.bootstrap_servers,
                   "LEDGER_TOPIC_PREFIX": s.topic_prefix, "LEDGER_DB": s.db,
                   "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            if args.batch_max_bytes:
                env["LEDGER_BATCH_MAX_BYTES"] = str(args.batch_max_bytes)
            mib, together, seconds = peak_rss_mib([sys.executable, "-m", "ledger", "consume", "--until-idle",
                                                   "--quiet"], env)
            _, idle, _ = peak_rss_mib([sys.executable, "-m", "ledger", "consume", "--until-idle", "--quiet"], env)
            print(f"{kind:25s} writer + read-ahead peak RSS {together:7.1f} MiB (largest process {mib:6.1f}) "
                  f"({seconds:5.1f} s); with nothing to do: {idle:6.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
