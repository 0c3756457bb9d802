"""Producer SDK throughput against the bare client, same settings, both clients and both mixes in one run.

    python bench/bench_producer.py [--events 50000] [--runs 3] [--durable-events 1000]
                                   [--mix both|reference|simulated] [--kafka-client both|confluent|kafka-python|auto]

For each mix and each client behind the seam, each run times the bare
producer (the seam's ``send`` of pre-encoded bytes: no validation, no
encoding) and then the SDK (``AuditProducer.emit`` of the same events), both
with the ledger's delivery settings (acks=all, one request in flight, no
idempotence), each to its last acknowledgement. Runs alternate mixes and
clients, so a busy spell on the shared machine hits them alike; the figures
are medians of ``--runs``. The SDK's own cost is ``1/SDK - 1/bare`` per event:
what validation, encoding and the call add.

Goals (issue 17, confluent-kafka): SDK >= 45,000 events/s on the reference mix
and >= 30,000 on the simulated mix; own cost <= 20 µs an event. Durable mode
(each call committed to SQLite with synchronous=FULL) is measured after the
runs, once per client and mix. ``--mix``: ``reference`` (~200 bytes, 1 to 3
customers) and ``simulated`` (`ledger simulate`, 1.3 KiB, 13.8 customers an
event on average); see bench_ingest.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_ingest import workload_chunk
from common import (
    add_kafka_clients_arg,
    add_mix_arg,
    bench_settings,
    describe_client,
    machine,
    median,
    selected_clients,
    selected_mixes,
)

from ledger.kafka import open_producer
from ledger.produce.producer import AuditProducer, wire_record
from ledger.wire.codec import default_codec

GOALS = {"reference": 45_000, "simulated": 30_000}  # confluent-kafka, events/s (issue 17)
OWN_COST_GOAL = 20.0  # µs an event over the bare client


def run_sdk(settings, events) -> float:
    producer = AuditProducer(settings)
    producer.emit(events[0]).result(30)  # connect outside the timed part
    started = time.perf_counter()
    for event in events:
        producer.emit(event)
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    return len(events) / seconds


def run_bare(settings, wires) -> float:
    producer = open_producer(settings)
    producer.send(wires[0].topic, value=wires[0].value, key=wires[0].key, headers=wires[0].headers).result(30)
    started = time.perf_counter()
    for w in wires:
        producer.send(w.topic, value=w.value, key=w.key, headers=w.headers)
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    return len(wires) / seconds


def run_durable(settings, events) -> tuple[float, float]:
    """Returns (calls/s as the caller sees them, end-to-end delivered/s)."""
    with tempfile.TemporaryDirectory() as tmp:
        producer = AuditProducer(settings, durable=Path(tmp) / "outbox.db")
        started = time.perf_counter()
        for event in events:
            producer.emit(event)
        returned = time.perf_counter() - started
        producer.flush()
        delivered = time.perf_counter() - started
        producer.close()
    return len(events) / returned, len(events) / delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--durable-events", type=int, default=1_000, help="0 skips durable mode")
    add_mix_arg(parser)
    add_kafka_clients_arg(parser)
    args = parser.parse_args()
    mixes, clients = selected_mixes(args.mix), selected_clients(args.kafka_client)

    codec = default_codec()
    workloads = {mix: workload_chunk(mix, 1, args.events) for mix in mixes}
    print(f"machine: {machine()}")
    print(f"started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; {args.events:,} events a pass, "
          f"mixes {', '.join(mixes)}, clients {', '.join(clients)}")
    sdk = {(c, m): [] for c in clients for m in mixes}
    bare = {(c, m): [] for c in clients for m in mixes}
    durable = {}
    with bench_settings() as base:
        for client in clients:
            print(describe_client(base.with_(kafka_client=client)))
        wires = {mix: [wire_record(e, codec, base.topic_prefix) for e in events] for mix, events in workloads.items()}
        for mix in mixes:
            size = sum(len(w.value) for w in wires[mix]) / len(wires[mix])
            print(f"workload: {mix} mix, {size:,.0f} bytes of Avro an event on average")
        for run in range(args.runs):
            for mix in mixes:
                for client in clients:
                    settings = base.with_(kafka_client=client)
                    bare[client, mix].append(run_bare(settings, wires[mix]))
                    sdk[client, mix].append(run_sdk(settings, workloads[mix]))
                    print(f"run {run + 1}, {mix}, {client}: SDK {sdk[client, mix][-1]:,.0f}/s, "
                          f"bare {bare[client, mix][-1]:,.0f}/s", flush=True)
        if args.durable_events:
            for mix in mixes:
                for client in clients:
                    durable[client, mix] = run_durable(base.with_(kafka_client=client),
                                                       workloads[mix][: args.durable_events])
    print(f"finished {time.strftime('%H:%M:%S UTC', time.gmtime())}; medians of {args.runs}:")
    print("| client | mix | SDK events/s | bare events/s | SDK / bare | SDK µs/event | own cost µs/event | "
          "durable calls/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for client in clients:
        for mix in mixes:
            s, b = median(sdk[client, mix]), median(bare[client, mix])
            d = f"{durable[client, mix][0]:,.0f}" if (client, mix) in durable else "–"
            print(f"| {client} | {mix} | {s:,.0f} | {b:,.0f} | {s / b:.2f} | {1e6 / s:.1f} | "
                  f"{1e6 / s - 1e6 / b:.1f} | {d} |")
    if "confluent" in clients:
        for mix in mixes:
            s, b = median(sdk["confluent", mix]), median(bare["confluent", mix])
            own = 1e6 / s - 1e6 / b
            print(f"goal, confluent, {mix}: SDK {s:,.0f}/s against >= {GOALS[mix]:,} "
                  f"({'met' if s >= GOALS[mix] else 'missed'}); own cost {own:.1f} µs against <= {OWN_COST_GOAL:.0f} "
                  f"({'met' if own <= OWN_COST_GOAL else 'missed'})")


if __name__ == "__main__":
    main()
