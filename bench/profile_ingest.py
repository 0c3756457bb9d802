"""Where the writer's and replay's microseconds go, stage by stage, without a broker in the way.

    python bench/profile_ingest.py [--events 100000] [--mix both|reference|simulated] [--cprofile]
                                   [--fetch]        # also: the confluent-kafka fetch alone, on a local broker

The records are encoded before any clock starts (the same workloads as
bench_ingest.py). Each stage is timed with the calling thread's CPU clock
(``time.thread_time``), so the figures are CPU µs an event, the least
distorted by other work on a shared machine:

* decode: ``codec.decode_as_written`` alone;
* prepare: ``Ingestor.prepare`` (decode, rules, readable JSON, two SHA-256, rows, dedupe);
* commit: ``Ingestor.commit`` (entries, Merkle tiles, side rows, WAL commit), live (writer) and bulk (replay);
* serial wall: prepare + commit on one thread, as replay runs; pipelined wall: ``CommitPipeline`` as the writer runs it.

``--cprofile`` prints the top functions of prepare. ``--fetch`` consumes the
records back through the seam's confluent-kafka consumer and times ``poll``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
import zlib
from pathlib import Path

from bench_ingest import workload_chunk
from common import machine, selected_mixes

from ledger.ingest.pipeline import CommitPipeline, Ingestor
from ledger.produce.producer import wire_record
from ledger.store import Ledger
from ledger.wire.codec import default_codec
from ledger.wire.record import Record

BATCH = 10_000
PARTITIONS = 6


def encoded_records(mix: str, n: int, prefix: str = "ledger.") -> list[Record]:
    codec = default_codec()
    offsets: dict[tuple[str, int], int] = {}
    records = []
    for event in workload_chunk(mix, 1, n):
        w = wire_record(event, codec, prefix)
        where = (w.topic, zlib.crc32(w.key or b"") % PARTITIONS)
        offset = offsets.get(where, 0)
        offsets[where] = offset + 1
        recorded_ms = int(event["occurred_at"].timestamp() * 1000) + 1000  # a second after: no time flag
        records.append(Record(where[0], where[1], offset, recorded_ms, w.key, w.value, tuple(w.headers)))
    return records


def batches(records):
    return [records[i:i + BATCH] for i in range(0, len(records), BATCH)]


def stage_cpu(records, tmp: Path, *, bulk: bool) -> dict[str, float]:
    """CPU µs an event of prepare and commit, run serially on this thread."""
    ledger = Ledger.open(tmp / f"stage-{bulk}.db", readonly=False, create=True)
    try:
        ingestor = Ingestor(ledger)
        if bulk:
            ledger.begin_bulk()
        prep = comm = 0.0
        wall = time.perf_counter()
        for chunk in batches(records):
            t0 = time.thread_time()
            prepared = ingestor.prepare(chunk)
            t1 = time.thread_time()
            ingestor.commit(prepared)
            t2 = time.thread_time()
            prep += t1 - t0
            comm += t2 - t1
        finish = 0.0
        if bulk:
            t0 = time.thread_time()
            ledger.finish_bulk()
            finish = time.thread_time() - t0
        wall = time.perf_counter() - wall
    finally:
        ledger.close()
    n = len(records)
    return {"prepare": prep / n * 1e6, "commit": comm / n * 1e6, "finish_bulk": finish / n * 1e6,
            "serial wall": wall / n * 1e6}


def pipelined_wall(records, tmp: Path) -> float:
    """Wall µs an event with the writer's CommitPipeline (prepare N+1 while N commits)."""
    ledger = Ledger.open(tmp / "pipelined.db", readonly=False, create=True)
    try:
        ingestor = Ingestor(ledger)
        started = time.perf_counter()
        with CommitPipeline(ingestor) as pipeline:
            for chunk in batches(records):
                pipeline.submit(ingestor.prepare(chunk))
            pipeline.wait()
        return (time.perf_counter() - started) / len(records) * 1e6
    finally:
        ledger.close()


def decode_cpu(records) -> float:
    codec = default_codec()
    t0 = time.thread_time()
    for rec in records:
        codec.decode_as_written(rec.value)
    return (time.thread_time() - t0) / len(records) * 1e6


def profile_prepare(records, tmp: Path) -> None:
    ledger = Ledger.open(tmp / "cprofile.db", readonly=False, create=True)
    try:
        ingestor = Ingestor(ledger)
        profile = cProfile.Profile()
        for chunk in batches(records):
            profile.enable()
            prepared = ingestor.prepare(chunk)
            profile.disable()
            ingestor.commit(prepared)
    finally:
        ledger.close()
    pstats.Stats(profile).sort_stats("tottime").print_stats(18)


def fetch_cpu(records) -> tuple[float, float]:
    """The seam's confluent-kafka ``poll`` over the records, CPU and wall µs an event."""
    from common import bench_settings

    from ledger.kafka import BEGINNING, event_partitions, open_consumer, open_producer

    with bench_settings(partitions=PARTITIONS, kafka_client="confluent") as settings:
        producer = open_producer(settings)
        for rec in records:
            producer.send(settings.topic_prefix + rec.topic.removeprefix("ledger."), key=rec.key, value=rec.value,
                          headers=list(rec.headers))
        producer.flush()
        producer.close()
        consumer = open_consumer(settings, max_poll_records=BATCH)
        try:
            partitions = event_partitions(consumer, settings.topic_prefix)
            consumer.assign({tp: BEGINNING for tp in partitions})
            got, cpu = 0, 0.0
            started = time.perf_counter()
            while got < len(records):
                t0 = time.thread_time()
                got += len(consumer.poll(max_records=BATCH, timeout=1.0))
                cpu += time.thread_time() - t0
            wall = time.perf_counter() - started
        finally:
            consumer.close()
    return cpu / got * 1e6, wall / got * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--mix", choices=("both", "reference", "simulated"), default="both")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--fetch", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for mix in selected_mixes(args.mix):
        records = encoded_records(mix, args.events)
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            live = stage_cpu(records, tmp, bulk=False)
            bulk = stage_cpu(records, tmp, bulk=True)
            piped = pipelined_wall(records, tmp)
            print(f"{mix}, {args.events:,} events, load {load}: decode {decode_cpu(records):.1f} µs CPU; "
                  f"prepare {live['prepare']:.1f}; commit live {live['commit']:.1f}, bulk {bulk['commit']:.1f} "
                  f"+ finish_bulk {bulk['finish_bulk']:.1f}; serial wall live {live['serial wall']:.1f}, bulk "
                  f"{bulk['serial wall']:.1f} (replay runs serially); pipelined wall live (writer) {piped:.1f} µs an event",
                  flush=True)
            if args.fetch:
                cpu, wall = fetch_cpu(records)
                print(f"{mix}: confluent-kafka fetch through the seam: {cpu:.1f} µs CPU, {wall:.1f} µs wall an event")
            if args.cprofile:
                profile_prepare(records, tmp)


if __name__ == "__main__":
    main()
