"""Producer SDK throughput against the bare client, same settings, through the Kafka seam.

    python bench/bench_producer.py [--events 100000] [--runs 3] [--durable-events 5000] [--mix reference]
                                   [--kafka-client auto|confluent|kafka-python]

The bare producer sends pre-encoded bytes (no validation, no encoding) with the
SDK's delivery settings (acks=all, one request in flight, 256 KiB batches), so
the ratio shows what validation + encoding + bookkeeping cost. Goal: SDK
>= 25,000 events/s and >= 0.5 of the bare figure. Durable mode is measured
separately: each call commits to SQLite with synchronous=FULL. ``--mix`` as in
bench_ingest.py: ``simulated`` (1.3 KiB events) or ``reference`` (~200 bytes).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_ingest import MIXES, workload_chunk
from common import add_kafka_client_arg, bench_settings, describe_client, machine, median

from ledger.kafka import open_producer
from ledger.produce.producer import AuditProducer, wire_record
from ledger.wire.codec import default_codec


def run_sdk(settings, events) -> float:
    producer = AuditProducer(settings)
    producer.emit(events[0])  # connect outside the timed part
    producer.flush()
    started = time.perf_counter()
    for event in events:
        producer.emit(event)
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    return len(events) / seconds


def run_bare(settings, wires) -> float:
    producer = open_producer(settings)
    producer.send(wires[0].topic, value=wires[0].value, key=wires[0].key, headers=wires[0].headers)
    producer.flush()
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
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--durable-events", type=int, default=5_000)
    parser.add_argument("--mix", choices=MIXES, default="simulated", help="workload (default: simulated)")
    add_kafka_client_arg(parser)
    args = parser.parse_args()

    events = workload_chunk(args.mix, 1, args.events)
    codec = default_codec()
    print(f"machine: {machine()}")
    print(f"workload: {args.mix} mix, {args.events:,} events")
    sdk, bare = [], []
    with bench_settings(kafka_client=args.kafka_client) as settings:
        print(describe_client(settings))
        wires = [wire_record(e, codec, settings.topic_prefix) for e in events]
        for run in range(args.runs):
            bare.append(run_bare(settings, wires))
            sdk.append(run_sdk(settings, events))
            print(f"run {run + 1}: sdk {sdk[-1]:,.0f} events/s, bare {bare[-1]:,.0f} events/s")
        durable = [run_durable(settings, events[: args.durable_events]) for _ in range(args.runs)]
        from ledger.kafka import client_name

        client = client_name(settings)
    print(f"SDK (validate + encode + send), median of {args.runs}: {median(sdk):,.0f} events/s")
    print(f"bare {client} (the seam's producer), pre-encoded, median of {args.runs}: {median(bare):,.0f} events/s")
    print(f"ratio SDK / bare: {median(sdk) / median(bare):.2f}; "
          f"SDK's own cost: {1e6 / median(sdk) - 1e6 / median(bare):.1f} µs an event over the bare client")
    print(f"durable mode, {args.durable_events:,} events: calls return at "
          f"{median([d[0] for d in durable]):,.0f}/s, delivered at {median([d[1] for d in durable]):,.0f}/s")


if __name__ == "__main__":
    main()
