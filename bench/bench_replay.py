"""Replay of N events from Kafka into a fresh ledger, both clients and the bare pipeline in the same run.

    python bench/bench_replay.py [--events 1000000] [--runs 1] [--mode bulk|live|both] [--no-bare]
                                 [--mix both|reference|simulated] [--kafka-client both|confluent|kafka-python|auto]

For each mix the events are produced once to fresh topics; then, for each
run and each client, ``replay`` reads all of them into a fresh ledger, and the
client's bare pipeline (bench_ingest.py: consume + fastavro decode + one
indexed table) reads them too, as the yardstick of the same minutes on this
shared machine. Bulk mode builds the side tables and the event-id index at the
end; live mode indexes each batch as it commits, as the writer does.

Goals: issue 17, confluent-kafka: 1,000,000 events in <= 55 s (reference mix)
and <= 105 s (simulated). Issue 5: under 60 s on a 2-core machine. The
simulated mix is `ledger simulate` (about 14 subject index rows an event: bulk
billing and export events name up to a few hundred customers); the reference
mix is the issue's calibration (~300 bytes, 1 to 3 customers).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench_ingest import produce, run_bare
from common import (
    add_kafka_clients_arg,
    add_mix_arg,
    add_read_ahead_arg,
    bench_settings,
    describe_client,
    machine,
    median,
    selected_clients,
    selected_mixes,
)

from ledger.ingest.replay import replay

GOALS = {"reference": 55.0, "simulated": 105.0}  # seconds for 1,000,000 events, confluent-kafka (issue 17)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--mode", choices=("bulk", "live", "both"), default="bulk",
                        help="bulk: index at the end (the default); live: index while loading")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare pipeline")
    add_mix_arg(parser)
    add_kafka_clients_arg(parser)
    add_read_ahead_arg(parser)
    args = parser.parse_args()
    mixes, clients = selected_mixes(args.mix), selected_clients(args.kafka_client)
    modes = ("bulk", "live") if args.mode == "both" else (args.mode,)
    print(f"machine: {machine()}")
    print(f"started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; {args.events:,} events, "
          f"mixes {', '.join(mixes)}, clients {', '.join(clients)}, modes {', '.join(modes)}")
    seconds = {(c, m, mode): [] for c in clients for m in mixes for mode in (*modes, "bare")}
    sizes = {}
    for mix in mixes:
        with tempfile.TemporaryDirectory() as tmp, bench_settings() as base:
            base = base.with_(read_ahead=args.read_ahead)
            for client in clients:
                print(describe_client(base.with_(kafka_client=client)))
            produce(base, args.events, mix=mix)
            for run in range(args.runs):
                for client in clients:
                    settings = base.with_(kafka_client=client)
                    for mode in modes:
                        path = os.path.join(tmp, f"replayed-{client}-{mode}.db")
                        result = replay(settings, path, bulk=mode == "bulk")
                        if result.replayed != args.events:
                            raise SystemExit(f"{client}: replayed {result.replayed:,}, expected {args.events:,}")
                        sizes[mix] = os.path.getsize(path) / 2**20
                        os.remove(path)
                        seconds[client, mix, mode].append(result.seconds)
                        print(f"run {run + 1}, {mix}, {client}, replay {mode}: {result.seconds:.1f}s = "
                              f"{result.replayed / result.seconds:,.0f} events/s (ledger file {sizes[mix]:,.0f} MiB)",
                              flush=True)
                    if not args.no_bare:
                        path = os.path.join(tmp, f"bare-{client}.db")
                        took, n = run_bare(settings, path)
                        os.remove(path)
                        seconds[client, mix, "bare"].append(took)
                        print(f"run {run + 1}, {mix}, {client}, bare pipeline: {took:.1f}s = {n / took:,.0f} events/s",
                              flush=True)
    print(f"finished {time.strftime('%H:%M:%S UTC', time.gmtime())}; medians of {args.runs}:")
    print("| client | mix | " + " | ".join(f"replay {mode}" for mode in modes) + " | bare pipeline | replay / bare |")
    print("|---|---|" + "---:|" * (len(modes) + 2))
    for client in clients:
        for mix in mixes:
            cells = [f"{median(seconds[client, mix, mode]):.1f} s" for mode in modes]
            bare = seconds[client, mix, "bare"]
            ratio = f"{median(bare) / median(seconds[client, mix, modes[0]]):.2f}" if bare else "–"
            print(f"| {client} | {mix} | {' | '.join(cells)} | {f'{median(bare):.1f} s' if bare else '–'} | {ratio} |")
    if "confluent" in clients:
        for mix in mixes:
            took = median(seconds["confluent", mix, modes[0]])
            print(f"goal, confluent, {mix}, {modes[0]}: {took:.1f} s for {args.events:,} events against <= "
                  f"{GOALS[mix]:.0f} s for 1,000,000 ({'met' if took * 1_000_000 / args.events <= GOALS[mix] else 'missed'})")


if __name__ == "__main__":
    main()
