"""Replay of N events from Kafka into a fresh ledger (bulk mode: side tables built at the end).

    python bench/bench_replay.py [--events 1000000] [--no-bulk]

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
from common import bench_settings, machine

from ledger.replay import replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--no-bulk", action="store_true", help="index while loading instead of at the end")
    parser.add_argument("--mix", choices=MIXES, default="simulated", help="workload (default: simulated)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp, bench_settings() as settings:
        produce(settings, args.events, mix=args.mix)
        result = replay(settings, os.path.join(tmp, "replayed.db"), bulk=not args.no_bulk)
        size = os.path.getsize(os.path.join(tmp, "replayed.db")) / 2**20
        mode = "index while loading" if args.no_bulk else "bulk (side tables built at the end)"
        print(f"replay, {mode}: {result.replayed:,} events in {result.seconds:.1f}s = "
              f"{result.replayed / result.seconds:,.0f} events/s (ledger file {size:,.0f} MiB)")


if __name__ == "__main__":
    main()
