"""Where one audited call's microseconds go: the producer SDK stage by stage, against a real broker.

    python bench/profile_producer.py [--events 30000] [--mix simulated|reference|both]
                                     [--kafka-client confluent|kafka-python] [--cprofile]

Each stage of ``AuditProducer.emit`` runs over every event in its own tight
loop (perf_counter around the loop, so the timer costs nothing per event),
best of ``--repeat`` passes, in µs an event:

* validate: ``codec.validate`` of the caller's dict (times, ids, rules)
* route: topic, Kafka key and the event-type header
* encode: the Avro single-object encoding of the validated event
* frame: the size check (with the header's decode, which emit does not do)
* send: the seam producer's ``send`` of the pre-encoded record, and the raw
  client call under it (confluent: ``produce`` without a delivery callback)
* deliver: the time ``flush`` spends beyond the raw client's own flush
  (delivery callbacks and their futures)

then the whole ``emit`` (wall time, and the calling thread's CPU time: the
gap is the other vCPU's work, librdkafka's threads and the broker, slowing
this one) and ``data_accessed(**fields)`` (a fresh kwargs dict
per call, no ``event_id``: the SDK assigns one, as in a service) end to end.
``--cprofile`` adds a cProfile of the emit loop (its own overhead inflates the
small functions, so read it for the shape, the spans for the figures).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from bench_ingest import MIXES, workload_chunk
from common import bench_settings, machine, raw_confluent_producer, raw_produce, seam_send

from ledger.kafka import open_producer
from ledger.model.events import event_key
from ledger.produce.producer import AuditProducer, _route, encoded, wire_record
from ledger.wire.codec import default_codec


def best(repeat: int, run) -> float:
    """The fastest of ``repeat`` passes of ``run()`` (which returns (seconds, n)), in µs an item."""
    return min(seconds / n for seconds, n in (run() for _ in range(repeat))) * 1e6


def timed(loop) -> tuple[float, int]:
    started = time.perf_counter()
    n = loop()
    return time.perf_counter() - started, n


def stages(settings, events: list[dict], repeat: int) -> dict[str, float]:
    codec = default_codec()
    prefix = settings.topic_prefix
    validated = [codec.validate(e) for e in events]
    wires = [wire_record(e, codec, prefix) for e in events]
    out: dict[str, float] = {}

    def validate():
        for e in events:
            codec.validate(e)
        return len(events)

    def route():
        for e in validated:
            _route(e["type"], prefix), event_key(e)
        return len(validated)

    def encode():
        for e in validated:
            codec.encode(e)
        return len(validated)

    def frame():
        limit = codec.max_record_bytes
        for w in wires:
            overhead = _route(w.headers[0][1].decode(), prefix).overhead
            overhead + len(w.key) + len(w.value) > limit or len(w.value) > limit
        return len(wires)

    out["validate"] = best(repeat, lambda: timed(validate))
    out["route"] = best(repeat, lambda: timed(route))
    out["encode"] = best(repeat, lambda: timed(encode))
    out["frame"] = best(repeat, lambda: timed(frame))
    out["encoded (validate+route+encode+frame)"] = best(
        repeat, lambda: timed(lambda: sum(1 for e in events if encoded(e, codec, prefix))))

    producer = open_producer(settings)
    producer.send(wires[0].topic, key=wires[0].key, value=wires[0].value, headers=wires[0].headers)
    producer.flush()
    sends, flushes = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        seam_send(producer, wires)
        sent = time.perf_counter()
        producer.flush()
        sends.append((sent - started) / len(wires) * 1e6)
        flushes.append((time.perf_counter() - sent) / len(wires) * 1e6)
    producer.close()
    out["send (the seam's, pre-encoded)"] = min(sends)
    out["flush after send (seam)"] = min(flushes)
    if settings.kafka_client == "confluent":
        raw_send, raw_flush = raw_confluent(settings, wires, repeat)
        out["  raw produce, no callback"] = raw_send
        out["  raw flush, no callbacks"] = raw_flush
        out["deliver: seam send+flush over raw"] = min(sends) + min(flushes) - raw_send - raw_flush
    return out


def raw_confluent(settings, wires, repeat: int) -> tuple[float, float]:
    producer = raw_confluent_producer(settings, wires[0])
    sends, flushes = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        raw_produce(producer, wires)
        sent = time.perf_counter()
        producer.flush()
        sends.append((sent - started) / len(wires) * 1e6)
        flushes.append((time.perf_counter() - sent) / len(wires) * 1e6)
    return min(sends), min(flushes)


def end_to_end(settings, events: list[dict], repeat: int, profile: bool) -> dict[str, float]:
    accessed = [{k: v for k, v in e.items() if k not in ("type", "event_id")}
                for e in events if e["type"] == "DataAccessed"]
    out = {}
    with AuditProducer(settings) as audit:
        audit.emit(events[0]).result(30)

        def emit():
            for e in events:
                audit.emit(e)
            audit.flush()
            return len(events)

        def data_accessed():
            for fields in accessed:
                audit.data_accessed(**fields)
            audit.flush()
            return len(accessed)

        out["emit, end to end (incl. flush)"] = best(repeat, lambda: timed(emit))

        def emit_thread_cpu():  # the calling thread's CPU only: what the other vCPU's work does not add
            started = time.thread_time()
            emit()
            return time.thread_time() - started, len(events)

        out["emit, the calling thread's CPU time"] = best(repeat, emit_thread_cpu)
        if accessed:
            out[f"data_accessed(**fields), {len(accessed):,} DataAccessed"] = best(
                repeat, lambda: timed(data_accessed))
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            emit()
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mix", choices=(*MIXES, "both"), default="both")
    parser.add_argument("--kafka-client", choices=("confluent", "kafka-python"), default="confluent")
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for mix in MIXES if args.mix == "both" else (args.mix,):
        events = workload_chunk(mix, 1, args.events)
        with bench_settings(kafka_client=args.kafka_client) as settings:
            figures = {**stages(settings, events, args.repeat),
                       **end_to_end(settings, events, args.repeat, args.cprofile)}
        print(f"\n{mix} mix, {args.events:,} events, {args.kafka_client}, µs an event (best of {args.repeat}):")
        for name, us in figures.items():
            print(f"  {name:<50} {us:7.2f}")


if __name__ == "__main__":
    main()
