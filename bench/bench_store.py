"""Ingest rate into the ledger file: prepare + commit of pre-encoded records, no Kafka.

    python bench/bench_store.py                  # 200,000 events into an empty ledger
    python bench/bench_store.py --sustained      # 1,000,000 events, rate printed per 100,000
    python bench/bench_store.py --verify         # also time `verify` on the result

Records are encoded with the real codec before the clock starts, so what is
measured is decode + dedupe + chain + SQLite append (the writer's work after a
Kafka fetch). The issue's target: >= 20,000 events/s end to end with one
writer, >= 15,000/s sustained to 1,000,000 entries.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ledger.ingest.pipeline import Ingestor
from ledger.model.events import validate
from ledger.store import Ledger
from ledger.wire.codec import default_codec
from ledger.wire.record import Record

TOPICS = {"DataAccessed": "access", "DataShared": "sharing", "LegalDisclosure": "disclosure",
          "ConsentChanged": "consent"}
MIX = ["DataAccessed"] * 14 + ["DataShared"] * 2 + ["ConsentChanged"] * 3 + ["LegalDisclosure"]
CATEGORIES = ["user.contact.email", "user.contact.phone", "user.financial.account", "user.location.address",
              "user.identity.name", "user.behavior.purchase"]
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def synthetic_event(rng: random.Random, i: int, subjects: int = 10_000) -> dict:
    """A valid event of a realistic mix: mostly accesses, 1-3 subjects out of ``subjects``."""
    etype = rng.choice(MIX)
    ids = sorted({f"cust-{rng.randrange(subjects):07d}" for _ in range(rng.choice((1, 1, 1, 2, 3)))})
    base = {
        "type": etype,
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "occurred_at": START + timedelta(microseconds=i * 997_331),
        "source_service": rng.choice(("support-desk", "billing", "crm", "partner-gw")),
        "actor": {"id": f"emp-{rng.randrange(500):04d}", "type": "EMPLOYEE", "role": "support_agent"},
        "subject_ids": ids,
    }
    if etype == "ConsentChanged":
        return {**base, "purpose": "marketing.email", "granted": rng.random() < 0.7, "channel": "EMAIL",
                "scope": "FIRST_PARTY"}
    common = {**base, "data_categories": rng.sample(CATEGORIES, rng.choice((1, 1, 2))),
              "purpose": "essential.service.support"}
    recipient = {"id": f"partner-{rng.randrange(40):03d}", "name": "Partner", "kind": "PROCESSOR"}
    if etype == "DataAccessed":
        return {**common, "access_type": "VIEW", "outcome": "GRANTED",
                "justification": {"reason_code": "customer_request", "ticket": f"SUP-{i}"}}
    if etype == "DataShared":
        return {**common, "recipient": recipient, "legal_basis": "CONTRACT"}
    return {**common, "recipient": {**recipient, "kind": "REGULATOR"}, "reviewed_by": "legal-7",
            "requested_categories": common["data_categories"],
            "request": {"id": f"REQ-{i}", "kind": "SUBPOENA", "authority": "Court",
                        "received_at": base["occurred_at"] - timedelta(days=3)},
            "notification": {"status": "PENDING"}}


def synthetic_records(n: int, *, seed: int = 7, partitions: int = 6, prefix: str = "ledger.") -> list[Record]:
    """``n`` encoded records spread over the topics' partitions, offsets in order per partition."""
    codec = default_codec()
    rng = random.Random(seed)
    next_offset: dict[tuple[str, int], int] = {}
    records = []
    for i in range(n):
        event = validate(synthetic_event(rng, i))
        key = min(event["subject_ids"]).encode()
        where = (prefix + TOPICS[event["type"]], hash(key) % partitions)
        offset = next_offset.get(where, 0)
        next_offset[where] = offset + 1
        records.append(Record(where[0], where[1], offset, 1_767_225_600_000 + i, key, codec.encode(event),
                              (("event_type", event["type"].encode()),)))
    return records


def run(n: int, batch: int, report_every: int, verify: bool) -> None:
    print(f"encoding {n:,} synthetic events...", file=sys.stderr, flush=True)
    records = synthetic_records(n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        ledger = Ledger.open(path, readonly=False, create=True)
        ingestor = Ingestor(ledger)
        started = window = time.perf_counter()
        done = 0
        for i in range(0, n, batch):
            chunk = records[i : i + batch]
            ingestor.commit(ingestor.prepare(chunk))
            done += len(chunk)
            if report_every and done % report_every == 0:
                now = time.perf_counter()
                print(f"  {done:>9,} entries: {report_every / (now - window):,.0f} events/s in this window")
                window = now
        elapsed = time.perf_counter() - started
        ledger.close()
        wal = Path(f"{path}-wal")
        size = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        print(f"ingest: {n:,} events in {elapsed:.1f} s = {n / elapsed:,.0f} events/s "
              f"(batches of {batch:,}; file {size / 2**20:,.0f} MiB)")
        if verify:
            from ledger.audit.verify import verify_ledger

            with Ledger.open(path) as reader:
                started = time.perf_counter()
                report = verify_ledger(reader)
                elapsed = time.perf_counter() - started
            print(f"verify: {report.checked:,} entries in {elapsed:.1f} s = {report.checked / elapsed:,.0f}/s, "
                  f"{len(report.problems)} problem(s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None, help="events to ingest (default 200,000)")
    parser.add_argument("--sustained", action="store_true", help="1,000,000 events, rate per 100,000")
    parser.add_argument("--batch", type=int, default=10_000, help="records per transaction (default 10,000)")
    parser.add_argument("--verify", action="store_true", help="also time verify on the result")
    args = parser.parse_args(argv)
    n = args.events or (1_000_000 if args.sustained else 200_000)
    run(n, args.batch, 100_000 if args.sustained else 0, args.verify)


if __name__ == "__main__":
    main()
