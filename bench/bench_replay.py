"""Replay of N events from Kafka into a fresh ledger, bulk mode and indexing while loading.

    python bench/bench_replay.py [--events 1000000] [--mode bulk|live|both] [--mix reference]
                                 [--kafka-client auto|confluent|kafka-python]

Bulk mode builds the side tables and the event-id index at the end; live mode
indexes each batch as it commits, overlapping commits with the next fetch, as
the writer does. Both replay the same produced topics.

Goal (issue 5): 1,000,000 events in under 60 s on a 2-core machine (30 s is the aim).
The events are the simulated workload (about 14 subject index rows per event:
bulk billing and export events name up to a few hundred customers), or with
``--mix reference`` the issue's calibration (~300 bytes, 1 to 3 customers).
"""

from __future__ import annotations

import argparse
import os
import tempfile

from bench_ingest import MIXES, produce
from common import add_kafka_client_arg, bench_settings, describe_client, machine

from ledger.ingest.replay import replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--mode", choices=("bulk", "live", "both"), default="both",
                        help="bulk: index at the end; live: index while loading (default: both)")
    parser.add_argument("--mix", choices=MIXES, default="simulated", help="workload (default: simulated)")
    add_kafka_client_arg(parser)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp, bench_settings(kafka_client=args.kafka_client) as settings:
        print(describe_client(settings))
        produce(settings, args.events, mix=args.mix)
        for mode in ("bulk", "live") if args.mode == "both" else (args.mode,):
            path = os.path.join(tmp, f"replayed-{mode}.db")
            result = replay(settings, path, bulk=mode == "bulk")
            size = os.path.getsize(path) / 2**20
            os.remove(path)
            described = "bulk (indexes built at the end)" if mode == "bulk" else "index while loading"
            print(f"replay, {described}, {args.mix} mix: {result.replayed:,} events in {result.seconds:.1f}s = "
                  f"{result.replayed / result.seconds:,.0f} events/s (ledger file {size:,.0f} MiB)", flush=True)


if __name__ == "__main__":
    main()
