"""End-to-end ingest: broker → decoded → chained → committed, against a bare pipeline.

    python bench/bench_ingest.py [--events 200000] [--runs 3] [--sustained 1000000] [--mix reference]
                                 [--kafka-client auto|confluent|kafka-python]

The events are produced once (pre-encoded, bare producer) to fresh topics; each
run then consumes all of them into an empty ledger with the real writer
(`LedgerWriter.run(until_idle=True)`) and, in the same run, with a bare
pipeline: kafka-python consume + fastavro decode + SQLite insert into one table
with subject and actor indexes, no validation, no chaining, no side tables.
Goal: writer >= 20,000 events/s and >= 0.5 of the bare pipeline; >= 15,000
events/s sustained to 1,000,000 entries (`--sustained`).

``--mix simulated`` (the default) is `ledger simulate`: 13.8 customers an event
on average, each an index row. ``--mix reference`` is the issue's calibration
(events of ~300 bytes naming 1 to 3 customers), to compare with its figures.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sqlite3
import tempfile
import time

from bench_store import synthetic_event
from common import add_kafka_client_arg, bench_settings, describe_client, machine, median

from ledger.dev.simulate import simulate
from ledger.ingest.writer import LedgerWriter
from ledger.kafka.topics import event_topics
from ledger.model.events import validate
from ledger.kafka import open_producer
from ledger.produce.producer import wire_record
from ledger.wire.codec import default_codec

MIXES = ("simulated", "reference")


def workload_chunk(mix: str, seed: int, n: int) -> list[dict]:
    """``n`` events of a mix: ``simulated`` is `ledger simulate` (1.3 KiB and 13.8 customers an event on
    average: bulk jobs name up to 300); ``reference`` is the issue's calibration (~300 bytes, 1 to 3)."""
    if mix == "simulated":
        return simulate(seed=seed, events=n, subjects=10_000).events
    rng = random.Random(seed)
    return [validate(synthetic_event(rng, seed + i)) for i in range(n)]


def produce(settings, n: int, seed: int = 1, mix: str = "simulated") -> None:
    started = time.perf_counter()
    codec = default_codec()
    producer = open_producer(settings)
    made = 0
    sizes = 0
    while made < n:  # in chunks, so a million events never sit in memory at once
        chunk = workload_chunk(mix, seed + made, min(100_000, n - made))
        for event in chunk:
            w = wire_record(event, codec, settings.topic_prefix)
            sizes += len(w.value)
            producer.send(w.topic, value=w.value, key=w.key, headers=w.headers)
        made += len(chunk)
    producer.flush()
    producer.close()
    print(f"workload: {mix} mix, {n:,} events, {sizes / n:,.0f} bytes of Avro an event on average; "
          f"produced in {time.perf_counter() - started:.1f}s")


def run_writer(settings, db: str) -> tuple[float, int]:
    writer = LedgerWriter(settings.with_(db=db), group_id=None)
    started = time.perf_counter()
    stats = writer.run(until_idle=True, install_signals=False)
    return time.perf_counter() - started, stats.records


def run_bare(settings, db: str) -> tuple[float, int]:
    """The chosen client's bare consume + fastavro decode + one indexed table; nothing else."""
    from ledger.kafka import client_name

    if client_name(settings) == "confluent":
        return run_bare_confluent(settings, db)
    from fastavro import schemaless_reader
    from kafka import KafkaConsumer, TopicPartition

    codec = default_codec()
    by_fingerprint = {v.fingerprint: v.parsed for vs in codec.all_versions().values() for v in vs}
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, event_id TEXT, subject TEXT, actor TEXT, "
                 "occurred_at INTEGER, value BLOB)")
    conn.execute("CREATE INDEX by_subject ON events (subject, occurred_at)")
    conn.execute("CREATE INDEX by_actor ON events (actor, occurred_at)")
    started = time.perf_counter()
    consumer = KafkaConsumer(**settings.kafka_options(), enable_auto_commit=False, max_poll_records=10_000,
                             fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024)
    tps = [TopicPartition(t, p) for t in event_topics(settings.topic_prefix)
           for p in sorted(consumer.partitions_for_topic(t) or ())]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    n = 0
    while True:
        fetched = consumer.poll(timeout_ms=1000, max_records=10_000)
        rows = []
        for messages in fetched.values():
            for m in messages:
                event = schemaless_reader(io.BytesIO(m.value[10:]), by_fingerprint[m.value[2:10]], None)
                rows.append((str(event["event_id"]), event["subject_ids"][0], event["actor"]["id"],
                             event["occurred_at"].timestamp(), m.value))
        if rows:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO events (event_id, subject, actor, occurred_at, value) VALUES (?,?,?,?,?)",
                             rows)
            conn.execute("COMMIT")
            n += len(rows)
        elif all(consumer.highwater(tp) is not None and consumer.position(tp) >= consumer.highwater(tp)
                 for tp in tps):
            break
    consumer.close()
    conn.close()
    return time.perf_counter() - started, n


def _bare_table(db: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, event_id TEXT, subject TEXT, actor TEXT, "
                 "occurred_at INTEGER, value BLOB)")
    conn.execute("CREATE INDEX by_subject ON events (subject, occurred_at)")
    conn.execute("CREATE INDEX by_actor ON events (actor, occurred_at)")
    return conn


def run_bare_confluent(settings, db: str) -> tuple[float, int]:
    """confluent-kafka consume + fastavro decode + one indexed table: the same bare pipeline."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
    from fastavro import schemaless_reader

    codec = default_codec()
    by_fingerprint = {v.fingerprint: v.parsed for vs in codec.all_versions().values() for v in vs}
    conn = _bare_table(db)
    started = time.perf_counter()
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "bench-bare",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 8 * 1024 * 1024})
    meta = consumer.list_topics(timeout=10)
    tps = [TopicPartition(t, p, OFFSET_BEGINNING) for t in event_topics(settings.topic_prefix)
           for p in sorted(meta.topics[t].partitions)]
    consumer.assign(tps)
    at_end: set = set()
    n = 0
    while len(at_end) < len(tps):
        rows = []
        for m in consumer.consume(10_000, 1.0):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add((m.topic(), m.partition()))
                continue
            value = m.value()
            event = schemaless_reader(io.BytesIO(value[10:]), by_fingerprint[value[2:10]], None)
            rows.append((str(event["event_id"]), event["subject_ids"][0], event["actor"]["id"],
                         event["occurred_at"].timestamp(), value))
        if rows:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO events (event_id, subject, actor, occurred_at, value) VALUES (?,?,?,?,?)",
                             rows)
            conn.execute("COMMIT")
            n += len(rows)
    consumer.close()
    conn.close()
    return time.perf_counter() - started, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sustained", type=int, default=0, help="also ingest this many events in one run")
    parser.add_argument("--mix", choices=MIXES, default="simulated", help="workload (default: simulated)")
    add_kafka_client_arg(parser)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp, bench_settings(kafka_client=args.kafka_client) as settings:
        print(describe_client(settings))
        produce(settings, args.events, mix=args.mix)
        writer_rates, bare_rates = [], []
        for run in range(args.runs):
            seconds, n = run_writer(settings, os.path.join(tmp, f"writer{run}.db"))
            writer_rates.append(n / seconds)
            seconds, m = run_bare(settings, os.path.join(tmp, f"bare{run}.db"))
            bare_rates.append(m / seconds)
            print(f"run {run + 1}: writer {n:,} records {writer_rates[-1]:,.0f}/s; "
                  f"bare {m:,} records {bare_rates[-1]:,.0f}/s")
        print(f"writer (decode + validate + dedupe + chain + side tables + offsets), median of {args.runs}: "
              f"{median(writer_rates):,.0f} events/s")
        print(f"bare pipeline (consume + decode + one table, two indexes), median of {args.runs}: "
              f"{median(bare_rates):,.0f} events/s")
        print(f"ratio writer / bare: {median(writer_rates) / median(bare_rates):.2f}")
    if args.sustained:
        with tempfile.TemporaryDirectory() as tmp, bench_settings() as settings:
            produce(settings, args.sustained, mix=args.mix)
            seconds, n = run_writer(settings, os.path.join(tmp, "sustained.db"))
            print(f"sustained: {n:,} events into one ledger in {seconds:.1f}s = {n / seconds:,.0f} events/s")


if __name__ == "__main__":
    main()
