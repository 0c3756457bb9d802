"""End-to-end ingest: broker → decoded → chained → committed, against a bare pipeline, both clients.

    python bench/bench_ingest.py [--events 200000] [--runs 3] [--sustained 1000000]
                                 [--mix both|reference|simulated] [--kafka-client both|confluent|kafka-python|auto]

For each mix, the events are produced once (pre-encoded, bare producer) to
fresh topics; each run then consumes all of them, for each client, into an
empty ledger with the real writer (`LedgerWriter.run(until_idle=True)`) and,
in the same run, with that client's bare pipeline: consume + fastavro decode +
SQLite insert into one table with subject and actor indexes, no validation, no
chaining, no side tables. Medians of ``--runs``; clients alternate within a run.
Each run's files are deleted once measured: left in place, the kernel wrote
earlier runs' dirty pages back during later runs, which were then 8-11% slower.
``--bucket-bits`` makes the writer's ledgers with that side-table bucket size
(default: the store's, schema.BUCKET_BITS).

Goals: issue 17, confluent-kafka: writer >= 14,000 events/s (reference mix) and
>= 9,500 (simulated) over 200k events, and >= 0.5 of the bare confluent-kafka
pipeline. Earlier (kafka-python): >= 20,000 events/s; >= 15,000 sustained to
1,000,000 entries (`--sustained`, the first selected client).

``--mix simulated`` is `ledger simulate`: 13.8 customers an event on average,
each an index row. ``--mix reference`` is the issue's calibration (events of
~300 bytes naming 1 to 3 customers), to compare with its figures.
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

from ledger.dev.simulate import simulate
from ledger.ingest.writer import LedgerWriter
from ledger.kafka import open_producer
from ledger.kafka.topics import event_topics
from ledger.model.events import validate
from ledger.produce.producer import wire_record
from ledger.store.ledger import Ledger
from ledger.wire.codec import default_codec

MIXES = ("simulated", "reference")


def workload_chunk(mix: str, seed: int, n: int) -> list[dict]:
    """``n`` events of a mix: ``simulated`` is `ledger simulate` (~440 bytes of Avro and 13.8 customers an
    event on average: bulk jobs name up to 300); ``reference`` is the issue's calibration (~200 bytes, 1 to 3)."""
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


def run_writer(settings, db: str, bucket_bits: int | None = None) -> tuple[float, int]:
    if bucket_bits is not None:  # make the file first; the writer keeps an existing file's bucket size
        Ledger.open(db, readonly=False, create=True, bucket_bits=bucket_bits).close()
    writer = LedgerWriter(settings.with_(db=db), group_id=None)
    started = time.perf_counter()
    stats = writer.run(until_idle=True, install_signals=False)
    return time.perf_counter() - started, stats.records


def remove_sqlite(db: str) -> None:
    """Delete an SQLite file and its WAL and shared-memory files, so its pages stop costing later runs."""
    for path in (db, db + "-wal", db + "-shm"):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


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


WRITER_GOALS = {"reference": 14_000, "simulated": 9_500}  # confluent-kafka, events/s (issue 17)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sustained", type=int, default=0, help="also ingest this many events in one run")
    add_mix_arg(parser)
    add_kafka_clients_arg(parser)
    add_read_ahead_arg(parser)
    parser.add_argument("--bucket-bits", type=int, default=None,
                        help="side-table bucket size of the writer's new ledgers, as a power of two")
    args = parser.parse_args()
    mixes, clients = selected_mixes(args.mix), selected_clients(args.kafka_client)
    print(f"machine: {machine()}")
    print(f"started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; {args.events:,} events, "
          f"mixes {', '.join(mixes)}, clients {', '.join(clients)}")
    writer = {(c, m): [] for c in clients for m in mixes}
    bare = {(c, m): [] for c in clients for m in mixes}
    for mix in mixes:
        with tempfile.TemporaryDirectory() as tmp, bench_settings() as base:
            base = base.with_(read_ahead=args.read_ahead)
            for client in clients:
                print(describe_client(base.with_(kafka_client=client)))
            produce(base, args.events, mix=mix)
            for run in range(args.runs):
                for client in clients:
                    settings = base.with_(kafka_client=client)
                    db = os.path.join(tmp, f"writer-{client}-{run}.db")
                    seconds, n = run_writer(settings, db, args.bucket_bits)
                    remove_sqlite(db)
                    writer[client, mix].append(n / seconds)
                    db = os.path.join(tmp, f"bare-{client}-{run}.db")
                    seconds, m = run_bare(settings, db)
                    remove_sqlite(db)
                    bare[client, mix].append(m / seconds)
                    if n != args.events or m != args.events:
                        raise SystemExit(f"{client}: the writer took {n:,} and the bare pipeline {m:,} records, "
                                         f"expected {args.events:,}")
                    print(f"run {run + 1}, {mix}, {client}: writer {writer[client, mix][-1]:,.0f}/s; "
                          f"bare {bare[client, mix][-1]:,.0f}/s", flush=True)
    print(f"finished {time.strftime('%H:%M:%S UTC', time.gmtime())}; medians of {args.runs}:")
    print("| client | mix | writer events/s | bare pipeline events/s | writer / bare | writer µs/event |")
    print("|---|---|---:|---:|---:|---:|")
    for client in clients:
        for mix in mixes:
            w, b = median(writer[client, mix]), median(bare[client, mix])
            print(f"| {client} | {mix} | {w:,.0f} | {b:,.0f} | {w / b:.2f} | {1e6 / w:.1f} |")
    if "confluent" in clients:
        for mix in mixes:
            w, b = median(writer["confluent", mix]), median(bare["confluent", mix])
            print(f"goal, confluent, {mix}: writer {w:,.0f}/s against >= {WRITER_GOALS[mix]:,} "
                  f"({'met' if w >= WRITER_GOALS[mix] else 'missed'}); writer / bare {w / b:.2f} against >= 0.5 "
                  f"({'met' if w / b >= 0.5 else 'missed'})")
    if args.sustained:
        with tempfile.TemporaryDirectory() as tmp, bench_settings(kafka_client=clients[0]) as settings:
            settings = settings.with_(read_ahead=args.read_ahead)
            produce(settings, args.sustained, mix=mixes[0])
            seconds, n = run_writer(settings, os.path.join(tmp, "sustained.db"), args.bucket_bits)
            print(f"sustained, {clients[0]}, {mixes[0]}: {n:,} events into one ledger in {seconds:.1f}s = "
                  f"{n / seconds:,.0f} events/s")


if __name__ == "__main__":
    main()
