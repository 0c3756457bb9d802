"""Bare produce and consume rates of both Kafka clients behind the seam (ledger/kafka/), same settings.

    python bench/bench_kafka_clients.py [--events 200000] [--runs 3] [--mix reference]

Produce: pre-encoded events (validated and encoded before the clock starts)
sent through ``open_producer`` with the ledger's delivery settings (acks=all,
one request in flight, 256 KiB batches, linger 5 ms), timed to the last ack.
A raw confluent-kafka ``produce`` loop with the same settings and no futures
shows what the seam's own bookkeeping costs. Consume: the same events, on
fresh topics of 6 partitions, read from the beginning with ``open_consumer``
until caught up, each record turned into a ``ledger.record.Record``. Medians
of ``--runs``; the clients alternate within each run.
"""

from __future__ import annotations

import argparse
import time

from bench_ingest import MIXES, workload_chunk
from common import bench_settings, machine, median, raw_confluent_producer, raw_produce, seam_send

from ledger.kafka import BEGINNING, event_partitions, open_consumer, open_producer
from ledger.produce.producer import wire_record
from ledger.wire.codec import default_codec

CLIENTS = ("kafka-python", "confluent")


def run_produce(settings, wires) -> float:
    producer = open_producer(settings)
    first = wires[0]
    producer.send(first.topic, key=first.key, value=first.value, headers=first.headers).result(30)  # connected
    started = time.perf_counter()
    futures = seam_send(producer, wires)
    producer.flush()
    futures[-1].result(30)
    seconds = time.perf_counter() - started
    producer.close()
    return len(wires) / seconds


def run_raw_confluent(settings, wires) -> float:
    """librdkafka with the seam's producer settings, no delivery futures: the floor under the seam."""
    producer = raw_confluent_producer(settings, wires[0])
    started = time.perf_counter()
    raw_produce(producer, wires)
    producer.flush()
    seconds = time.perf_counter() - started
    return len(wires) / seconds


def run_consume(settings, expected: int) -> float:
    started = time.perf_counter()
    consumer = open_consumer(settings)
    parts = event_partitions(consumer, settings.topic_prefix)
    consumer.assign({p: BEGINNING for p in parts})
    n = 0
    while True:
        n += len(consumer.poll(10_000, 1.0))
        if consumer.caught_up(parts):  # known from the fetches themselves: no idle poll at the end
            break
    seconds = time.perf_counter() - started
    consumer.close()
    if n != expected:
        raise SystemExit(f"{settings.kafka_client}: consumed {n:,} records, expected {expected:,}")
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mix", choices=MIXES, default="reference", help="workload (default: reference)")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    events = workload_chunk(args.mix, 1, args.events)
    codec = default_codec()
    produce: dict[str, list[float]] = {c: [] for c in CLIENTS}
    consume: dict[str, list[float]] = {c: [] for c in CLIENTS}
    raw: list[float] = []
    with bench_settings() as settings:
        wires = [wire_record(e, codec, settings.topic_prefix) for e in events]
        size = sum(len(w.value) for w in wires) / len(wires)
        print(f"workload: {args.mix} mix, {args.events:,} events, {size:,.0f} bytes of Avro an event")
        for run in range(args.runs):
            for client in CLIENTS:
                produce[client].append(run_produce(settings.with_(kafka_client=client), wires))
            raw.append(run_raw_confluent(settings, wires))
            print(f"run {run + 1}: produce kafka-python {produce['kafka-python'][-1]:,.0f}/s, "
                  f"confluent {produce['confluent'][-1]:,.0f}/s, raw librdkafka {raw[-1]:,.0f}/s", flush=True)
    with bench_settings() as settings:  # fresh topics holding exactly one copy of the events
        wires = [wire_record(e, codec, settings.topic_prefix) for e in events]
        run_produce(settings.with_(kafka_client="confluent"), wires)  # plus its one warm-up record
        for run in range(args.runs):
            for client in CLIENTS:
                consume[client].append(run_consume(settings.with_(kafka_client=client), len(wires) + 1))
            print(f"run {run + 1}: consume kafka-python {consume['kafka-python'][-1]:,.0f}/s, "
                  f"confluent {consume['confluent'][-1]:,.0f}/s", flush=True)
    for client in CLIENTS:
        print(f"{client}: produce {median(produce[client]):,.0f} events/s, "
              f"consume {median(consume[client]):,.0f} events/s (medians of {args.runs}, through the seam)")
    print(f"raw librdkafka produce, no futures: {median(raw):,.0f} events/s; the seam's cost: "
          f"{1e6 / median(produce['confluent']) - 1e6 / median(raw):.2f} µs an event")


if __name__ == "__main__":
    main()
