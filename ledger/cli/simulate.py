"""`ledger simulate`: emit a realistic, seeded workload to Kafka."""

from __future__ import annotations

import argparse
import time
from collections import Counter

from . import settings_from

EPILOG = """\
The workload is a telecom / online retailer: support staff viewing accounts
with tickets, denied and break-glass accesses, billing jobs and exports,
shares with a payment processor, shipper, advertiser and affiliates, consent
changes, subpoenas and court orders (some under gag orders later extended or
lifted, some delayed for fraud investigations) and the notices that follow.
The same seed always produces the same events.

example:
  ledger simulate --seed 7 --events 20000 --subjects 500
"""


def register(subparsers, common) -> None:
    p = subparsers.add_parser("simulate", parents=[common], help="emit a realistic seeded workload",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--events", type=int, default=10_000, help="how many events (default 10000)")
    p.add_argument("--subjects", type=int, default=500, help="how many customers (default 500)")
    p.add_argument("--durable", metavar="OUTBOX", help="go through a local outbox file (durable mode)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ledger.dev.simulate import simulate
    from ledger.produce.producer import AuditProducer

    workload = simulate(seed=args.seed, events=args.events, subjects=args.subjects)
    started = time.monotonic()
    with AuditProducer(settings_from(args), durable=args.durable) as producer:
        for event in workload.events:
            producer.emit(event)
        producer.flush()
    seconds = time.monotonic() - started
    counts = Counter(e["type"] for e in workload.events)
    print(f"sent {len(workload.events):,} events in {seconds:.1f}s ({len(workload.events) / seconds:,.0f}/s): "
          + ", ".join(f"{t} {n:,}" for t, n in sorted(counts.items())))
    rules = Counter(rule for rule, *_ in workload.truth.found)
    print(f"of which {sum(rules.values()):,} break examples/policy.toml on purpose (the oracle's record): "
          + ", ".join(f"{r} {n:,}" for r, n in sorted(rules.items())))
    return 0
