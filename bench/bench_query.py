"""who-saw latency on a 1,000,000-entry ledger with 10,000 customers, in-process and through the CLI.

    python bench/bench_query.py                   # builds /tmp/ledger-bench-query.db once, then measures
    python bench/bench_query.py --rebuild         # build the ledger again

The ledger holds single-customer events (80% accesses, 15% shares, 5% legal
disclosures) spread evenly over 10,000 customers (about 100 entries each)
and 90 days, encoded with the real codec and appended through the Ingestor
in batches of 10,000. Every entry has the same service actor, so that
``ledger accesses`` streams all 1,000,000 rows: the memory check.

Printed: who_saw p50/p99 in-process (all of a customer's rows, and with a
one-week window), ``python -c 'import ledger.cli'`` and a fresh
``ledger who-saw`` process p50/p99, and the peak RSS of CLI processes
writing 100 rows and 1,000,000 rows. Targets: p99 < 5 ms in-process, < 300 ms
through the CLI.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPAN_US = 90 * 86_400_000_000
ACTOR = {"id": "svc-bench", "type": "SERVICE", "role": "batch_job", "organization": None}
CATEGORIES = ("user.name", "user.contact.email", "user.contact.phone", "user.usage.call_records",
              "user.financial.billing_history", "user.account.identifiers", "user.location.precise")
RECIPIENTS = [
    {"id": "rcpt-paystream", "name": "PayStream Inc.", "kind": "PAYMENT_PROCESSOR", "country": "US",
     "address": "500 Market St, San Francisco, CA 94105, US"},
    {"id": "rcpt-shipfast", "name": "ShipFast Logistics B.V.", "kind": "PROCESSOR", "country": "NL",
     "address": "Westerdoksdijk 40, 1013 AE Amsterdam, NL"},
    {"id": "rcpt-adreach", "name": "AdReach Media Ltd", "kind": "ADVERTISER", "country": "GB", "address": None},
]
AUTHORITY = {"id": "auth-sta-berlin", "name": "Staatsanwaltschaft Berlin", "kind": "OTHER", "country": "DE",
             "address": "Turmstr. 91, 10559 Berlin, DE"}


def subject_id(i: int) -> str:
    return f"cust-{i:06d}"


def make_event(rng: random.Random, i: int, n: int, subjects: int) -> dict:
    """One valid, normalized event (every field present) for one customer."""
    at = START + timedelta(microseconds=i * SPAN_US // n + rng.randrange(1000))
    roll = rng.random()
    kind = "DataAccessed" if roll < 0.80 else "DataShared" if roll < 0.95 else "LegalDisclosure"
    event = {
        "type": kind, "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "occurred_at": at,
        "source_service": "bench", "actor": dict(ACTOR), "subject_ids": [subject_id(rng.randrange(subjects))],
        "correlation_id": None, "trace_id": "%032x" % rng.getrandbits(128), "recorded_by": None,
        "attributes": {}, "data_categories": rng.sample(CATEGORIES, rng.randint(1, 3)),
        "purpose": "essential.service.support", "legal_basis": "CONTRACT",
        "justification": {"reason_code": "customer_request", "ticket": f"SUP-{i}", "note": None},
    }
    if kind == "DataAccessed":
        event.update(access_type="VIEW", outcome="GRANTED", channel="crm_console", record_count=1)
    elif kind == "DataShared":
        event.update(recipient=dict(rng.choice(RECIPIENTS)), transfer_safeguard=None, agreement_ref=None,
                     consent_ref=None, retention_until=None, purpose="essential.billing")
    else:
        event.update(purpose="legal.obligation", legal_basis="LEGAL_OBLIGATION", reviewed_by="emp-6001",
                     requested_categories=list(event["data_categories"]), recipient=dict(AUTHORITY),
                     request={"id": f"LR-{i}", "kind": "COURT_ORDER", "authority": AUTHORITY["name"],
                              "jurisdiction": "DE", "case_ref": None, "received_at": at - timedelta(days=2),
                              "document_ref": None, "document_sha256": None},
                     notification={"status": "PENDING", "due_by": None, "delay_until": None,
                                   "order_ref": None, "reason": None})
    return event


def build(path: Path, n: int, subjects: int, batch: int = 10_000, bucket_bits: int | None = None) -> None:
    from ledger.ingest.pipeline import Ingestor
    from ledger.kafka.topics import topic_for
    from ledger.store import Ledger
    from ledger.wire.codec import default_codec
    from ledger.wire.record import Record

    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    codec = default_codec()
    codec.validate(make_event(random.Random(0), 0, n, subjects))  # the template is valid
    rng = random.Random(42)
    offsets: dict[tuple[str, int], int] = {}
    started = time.perf_counter()
    sizes = {} if bucket_bits is None else {"bucket_bits": bucket_bits}
    ledger = Ledger.open(path, readonly=False, create=True, **sizes)
    ingestor = Ingestor(ledger, codec=codec)
    chunk = []
    for i in range(n):
        event = make_event(rng, i, n, subjects)
        key = event["subject_ids"][0].encode()
        where = (topic_for(event["type"], "ledger."), zlib.crc32(key) % 3)
        offset = offsets.get(where, 0)
        offsets[where] = offset + 1
        ts = int(event["occurred_at"].timestamp() * 1000) + 2000
        chunk.append(Record(where[0], where[1], offset, ts, key, codec.encode(event),
                            (("event_type", event["type"].encode()),)))
        if len(chunk) == batch:
            ingestor.commit(ingestor.prepare(chunk))
            chunk = []
            if (i + 1) % 100_000 == 0:
                print(f"  built {i + 1:,} entries ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    if chunk:
        ingestor.commit(ingestor.prepare(chunk))
    ledger.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ledger.close()
    print(f"built {n:,} entries in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def line(name: str, ms: list[float], extra: str = "") -> None:
    print(f"{name:<46} p50 {pct(ms, 50):8.2f} ms   p99 {pct(ms, 99):8.2f} ms   max {max(ms):8.2f} ms{extra}")


def in_process(path: Path, subjects: int, samples: int) -> None:
    from ledger.audit import query
    from ledger.store import Ledger

    rng = random.Random(7)
    with Ledger.open(path) as ledger:
        with open(path, "rb") as fh:  # the OS page cache, as on a server that has been answering a while
            while fh.read(1 << 24):
                pass
        for _ in range(300):  # and SQLite's own cache
            list(query.who_saw(ledger, subject_id(rng.randrange(subjects))))
        ms, rows = [], []
        for _ in range(samples):
            s = subject_id(rng.randrange(subjects))
            t = time.perf_counter()
            found = list(query.who_saw(ledger, s))
            ms.append((time.perf_counter() - t) * 1000)
            rows.append(len(found))
        line("who_saw in-process (all rows)", ms, f"   ({statistics.mean(rows):.0f} rows on average)")
        ms = []
        since, until = START + timedelta(days=40), START + timedelta(days=47)
        for _ in range(samples):
            s = subject_id(rng.randrange(subjects))
            t = time.perf_counter()
            list(query.who_saw(ledger, s, since=since, until=until, as_of=START + timedelta(days=60)))
            ms.append((time.perf_counter() - t) * 1000)
        line("who_saw in-process (one week, --as-of)", ms)


def timed_runs(argv: list[str], runs: int) -> list[float]:
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        ms.append((time.perf_counter() - t) * 1000)
    return ms


# A child forked from this (large, cache-warm) process would report our size as its peak:
# a small launcher forks the command instead and reports the command's own peak.
_LAUNCHER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(usage.ru_maxrss)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def peak_rss_mib(argv: list[str]) -> float:
    """Peak resident memory of one run of ``argv`` (from wait4 in a small launcher)."""
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{argv} failed with {out.returncode}: {out.stderr}")
    return int(out.stdout) / 1024


def through_cli(path: Path, subjects: int, runs: int) -> None:
    python = sys.executable
    ledger_cmd = [python, "-m", "ledger"]
    rng = random.Random(9)
    line("python -c 'import ledger.cli'", timed_runs([python, "-c", "import ledger.cli"], runs))
    line("python -c 'import ledger.cli' + build_parser()",
         timed_runs([python, "-c", "import ledger.cli as c; c.build_parser()"], runs))
    for fmt in ("json", "table"):
        ms = []
        for _ in range(runs):
            argv = ledger_cmd + ["who-saw", subject_id(rng.randrange(subjects)), "--db", str(path), "--format", fmt]
            ms += timed_runs(argv, 1)
        line(f"ledger who-saw --format {fmt} (fresh process)", ms)
    small = peak_rss_mib(ledger_cmd + ["who-saw", subject_id(1), "--db", str(path), "--format", "json"])
    t = time.perf_counter()
    big = peak_rss_mib(ledger_cmd + ["accesses", "--actor", ACTOR["id"], "--db", str(path), "--format", "json"])
    seconds = time.perf_counter() - t
    shares = peak_rss_mib(ledger_cmd + ["disclosures", "--db", str(path), "--format", "csv"])
    print(f"peak RSS: who-saw ~100 rows {small:.0f} MiB; accesses 1,000,000 rows as JSON {big:.0f} MiB "
          f"({seconds:.1f} s); disclosures ~200,000 rows as CSV {shares:.0f} MiB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--db", default="/tmp/ledger-bench-query.db", help="cached ledger file")
    parser.add_argument("--rebuild", action="store_true", help="build the ledger even if it exists")
    parser.add_argument("--samples", type=int, default=2000, help="in-process who_saw calls")
    parser.add_argument("--runs", type=int, default=40, help="fresh CLI processes per measurement")
    parser.add_argument("--bucket-bits", type=int, default=None,
                        help="side-table bucket size of a new ledger, as a power of two (default: the store's)")
    args = parser.parse_args(argv)
    path = Path(args.db)
    print(machine())
    if args.rebuild or not _has(path, args.entries, args.bucket_bits):
        build(path, args.entries, args.subjects, bucket_bits=args.bucket_bits)
    print(f"ledger: {path} ({path.stat().st_size / 2**20:,.0f} MiB), {args.entries:,} entries, "
          f"{args.subjects:,} customers")
    in_process(path, args.subjects, args.samples)
    through_cli(path, args.subjects, args.runs)


def _has(path: Path, entries: int, bucket_bits: int | None) -> bool:
    if not path.exists():
        return False
    from ledger.store import Ledger, schema

    try:
        with Ledger.open(path) as ledger:
            wanted = schema.BUCKET_BITS if bucket_bits is None else bucket_bits
            return ledger.count() == entries and ledger.bucket_bits == wanted
    except Exception:
        return False


if __name__ == "__main__":
    main()
