"""The fault suite's independent checker: the ledger file against the broker and the producers.

    outcome = check(settings, Expected(told=ids, bad=offsets))
    outcome.assert_ok()

It counts with plain ``sqlite3`` and a Kafka client used directly, never with the
ledger's own store, verify or Kafka-seam code, so a bug there cannot hide itself. It
reads the broker with the OTHER client than the one under test (``other_client``):
confluent-kafka when the writer used kafka-python, kafka-python when it used
confluent-kafka, so a client bug shared by writer and checker cannot cancel out.

* lost: an event id producers were told was recorded with no ``entry`` row;
* duplicated: an event id with more than one ``entry`` row;
* phantom: an ``entry`` whose event id no producer ever emitted;
* every offset accounted for: each record the broker holds on an event topic
  is one ledger row with the same bytes, gap rows cover only offsets the
  broker does not hold, rows and gaps tile ``0..end`` per partition, and the
  writer's stored position is that end;
* every bad record rejected, nothing else rejected, and each rejected record
  in the dead-letter topic (counted once per source offset);
* optionally, per key, the order in which each producer's calls returned.

Then it runs ``verify_ledger`` (the product's own verifier) and reports it.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition

TOPIC_SUFFIXES = ("access", "sharing", "disclosure", "consent")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def event_topics(prefix: str) -> list[str]:
    return [prefix + s for s in TOPIC_SUFFIXES]


def event_id_in(value: bytes | None) -> str | None:
    """The event id carried by single-object bytes, read without a schema.

    Every event schema starts with ``event_id``, a 36-character string: byte 10
    is its zigzag length (0x48) and the UUID text follows.
    """
    if value is None or len(value) < 47 or value[:2] != b"\xc3\x01" or value[10] != 0x48:
        return None
    text = bytes(value[11:47])
    return text.decode("ascii") if _UUID.fullmatch(text) else None


@dataclass(frozen=True)
class BrokerRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    digest: bytes | None  # SHA-256 of the value; None for a null value
    event_id: str | None
    headers: tuple


def other_client(kafka_client: str) -> str:
    """The client the checker reads with: not the one under test (``auto`` means confluent-kafka)."""
    return "kafka-python" if kafka_client in ("confluent", "auto") else "confluent"


def read_topics(bootstrap: str, topics: list[str], timeout: float = 120.0, *,
                client: str = "kafka-python") -> list[BrokerRecord]:
    """Every record the broker holds on ``topics``, from offset 0 to the high watermark."""
    if client == "confluent":
        return _read_topics_confluent(bootstrap, topics, timeout)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                             auto_offset_reset="earliest", max_partition_fetch_bytes=8 << 20,
                             fetch_max_bytes=64 << 20)
    try:
        tps = []
        for topic in topics:
            tps += [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        found: list[BrokerRecord] = []
        deadline = time.monotonic() + timeout
        while True:
            batch = consumer.poll(timeout_ms=500)
            for messages in batch.values():
                found += [BrokerRecord(m.topic, m.partition, m.offset, m.key,
                                       None if m.value is None else hashlib.sha256(m.value).digest(),
                                       event_id_in(m.value), tuple(m.headers)) for m in messages]
            done = all(consumer.highwater(tp) is not None and consumer.position(tp) >= consumer.highwater(tp)
                       for tp in tps)
            if done and not batch:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topics} to their end within {timeout}s")
    finally:
        consumer.close()


def _read_topics_confluent(bootstrap: str, topics: list[str], timeout: float) -> list[BrokerRecord]:
    """``read_topics`` with confluent-kafka: to the end each fetch reports (partition EOF), not ListOffsets."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError
    from confluent_kafka import TopicPartition as CTP

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "faultcheck", "enable.auto.commit": False,
                         "enable.partition.eof": True, "auto.offset.reset": "error",
                         "isolation.level": "read_committed"})
    try:
        meta = consumer.list_topics(timeout=30)
        tps = [CTP(t, p, OFFSET_BEGINNING) for t in topics for p in sorted(meta.topics[t].partitions)]
        consumer.assign(tps)
        at_end: set[tuple[str, int]] = set()
        found: list[BrokerRecord] = []
        deadline = time.monotonic() + timeout
        while len(at_end) < len(tps):
            for m in consumer.consume(10_000, 0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add((m.topic(), m.partition()))
                        continue
                    raise AssertionError(f"faultcheck: fetch failed: {m.error()}")
                at_end.discard((m.topic(), m.partition()))
                value = m.value()
                found.append(BrokerRecord(m.topic(), m.partition(), m.offset(), m.key(),
                                          None if value is None else hashlib.sha256(value).digest(),
                                          event_id_in(value), tuple(m.headers() or ())))
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topics} to their end within {timeout}s")
        return found
    finally:
        consumer.close()


def dlq_sources(bootstrap: str, prefix: str, client: str = "kafka-python") -> list[tuple[str, int, int]]:
    """The source (topic, partition, offset) of every dead-letter copy, repeats included."""
    sources = []
    for rec in read_topics(bootstrap, [prefix + "dlq"], client=client):
        headers = dict(rec.headers)
        sources.append((headers["source_topic"].decode(), int(headers["source_partition"]),
                        int(headers["source_offset"])))
    return sources


@dataclass
class Expected:
    """What the producers were told, and what the scenario injected."""

    told: set[str]  # event ids whose call returned as recorded (ack, or durable emit)
    may_appear: set[str] = field(default_factory=set)  # emitted but never confirmed (killed, not acked)
    bad: set[tuple[str, int, int]] = field(default_factory=set)  # offsets that must be rejected
    dlq_extra: set[tuple[str, int, int]] = field(default_factory=set)  # copied once, since reprocessed
    emit_orders: list[list[str]] = field(default_factory=list)  # per producer, in return order


@dataclass
class Outcome:
    events: int = 0
    lost: int = 0
    duplicated: int = 0
    phantom: int = 0
    rejected: int = 0
    dlq_offsets: int = 0
    dlq_copies: int = 0
    repeats: int = 0  # rows kept as duplicate/conflict/contradiction: redeliveries and injected repeats
    problems: list[str] = field(default_factory=list)
    verify_ok: bool | None = None
    verify_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.verify_ok is not False

    def assert_ok(self) -> None:
        assert self.ok, "\n".join(self.problems[:20] + [f"verify: {p}" for p in self.verify_problems[:10]])


def _ledger_rows(db: str) -> tuple[list[tuple], dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT topic, partition, offset, kind, gap_end, status, event_id, key, value FROM entries ORDER BY seq"
        ).fetchall(), dict(((t, p), n) for t, p, n in conn.execute(
            "SELECT topic, partition, max(next_offset) FROM offsets GROUP BY topic, partition"))
    finally:
        conn.close()


def check(settings, expected: Expected, *, verify: bool = True, codec=None, broker_records=None,
          so_far: bool = False) -> Outcome:
    """Compare the ledger at ``settings.db`` with the broker and ``expected``; see the module docstring.

    ``so_far``: the writer stopped before the end; judge only the records below
    its stored position in each partition (the rest is still to be read).
    """
    problems: list[str] = []
    rows, positions = _ledger_rows(settings.db)
    reader = other_client(settings.kafka_client)
    records = broker_records if broker_records is not None else read_topics(
        settings.bootstrap_servers, event_topics(settings.topic_prefix), client=reader)
    if so_far:
        records = [r for r in records if r.offset < positions.get((r.topic, r.partition), 0)]
        below = {r.event_id for r in records}
        expected = Expected(told=expected.told & below, may_appear=expected.may_appear,
                            bad={b for b in expected.bad if b[2] < positions.get(b[:2], 0)},
                            dlq_extra=expected.dlq_extra, emit_orders=expected.emit_orders)
    out = Outcome(events=len(expected.told), problems=problems)

    entry_ids: Counter = Counter()
    repeat_ids: list[str] = []
    rejected: set[tuple[str, int, int]] = set()
    ledger_records: dict[tuple[str, int, int], tuple] = {}
    cover: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    gaps: list[tuple[str, int, int, int]] = []
    for topic, partition, offset, kind, gap_end, status, event_id, key, value in rows:
        where = (topic, partition, offset)
        if kind == "gap":
            cover[(topic, partition)].append((offset, gap_end))
            gaps.append((topic, partition, offset, gap_end))
            continue
        cover[(topic, partition)].append((offset, offset + 1))
        if where in ledger_records:
            problems.append(f"{where}: two ledger rows for one offset")
        ledger_records[where] = (status, key, None if value is None else hashlib.sha256(value).digest())
        if status == "rejected":
            rejected.add(where)
        elif status in ("entry", "duplicate", "conflict", "contradiction"):
            carried = event_id_in(value)
            if carried != event_id:
                problems.append(f"{where}: event_id column {event_id} but the bytes carry {carried}")
            if status == "entry":
                entry_ids[event_id] += 1
            else:
                repeat_ids.append(event_id)
        else:
            problems.append(f"{where}: unexpected status {status!r} on a record row")

    # Producers' view: lost, duplicated, phantom.
    lost = expected.told - set(entry_ids)
    duplicated = {e for e, n in entry_ids.items() if n > 1}
    phantom = set(entry_ids) - expected.told - expected.may_appear
    out.lost, out.duplicated, out.phantom = len(lost), len(duplicated), len(phantom)
    out.repeats = len(repeat_ids)
    problems += [f"lost: event {e} was acknowledged but has no entry" for e in sorted(lost)[:10]]
    problems += [f"duplicated: event {e} has {entry_ids[e]} entries" for e in sorted(duplicated)[:10]]
    problems += [f"phantom: entry {e} was never emitted" for e in sorted(phantom)[:10]]
    orphans = [e for e in repeat_ids if entry_ids[e] != 1]
    problems += [f"repeat of {e} has no single first entry" for e in orphans[:10]]

    # Broker's view: every offset accounted for, same bytes.
    broker = {(r.topic, r.partition, r.offset): r for r in records}
    missing = sorted(set(broker) - set(ledger_records))
    extra = sorted(set(ledger_records) - set(broker))
    problems += [f"offset {w} is on the broker but not in the ledger" for w in missing[:10]]
    problems += [f"offset {w} is in the ledger but not on the broker" for w in extra[:10]]
    for where in set(broker) & set(ledger_records):
        r = broker[where]
        _, key, digest = ledger_records[where]
        if (key, digest) != (r.key, r.digest):
            problems.append(f"offset {where}: the ledger's key/value differ from the broker's")
    for (topic, partition), spans in cover.items():
        spans.sort()
        end = 0
        for start, stop in spans:
            if start != end:
                problems.append(f"{topic}[{partition}]: offsets {end}..{start - 1} not accounted for"
                                if start > end else f"{topic}[{partition}]: offset {start} covered twice")
            end = max(end, stop)
        if positions.get((topic, partition)) != end:
            problems.append(f"{topic}[{partition}]: stored position {positions.get((topic, partition))}, "
                            f"ledger rows end at {end}")
    for topic, partition, start, stop in gaps:
        held = [o for o in range(start, stop) if (topic, partition, o) in broker]
        if held:
            problems.append(f"{topic}[{partition}]: a gap row covers offset {held[0]}, which the broker holds")

    # Bad records: rejected, nothing else, and in the DLQ once per source offset.
    out.rejected = len(rejected)
    problems += [f"bad record {w} is not rejected" for w in sorted(expected.bad - rejected)[:10]]
    problems += [f"record {w} was rejected but is not a bad record" for w in sorted(rejected - expected.bad)[:10]]
    copies = dlq_sources(settings.bootstrap_servers, settings.topic_prefix, reader)
    if so_far:  # a batch whose commit failed may have been copied already; it will be read again
        copies = [c for c in copies if c[2] < positions.get(c[:2], 0)]
    out.dlq_copies, out.dlq_offsets = len(copies), len(set(copies))
    wanted_dlq = rejected | expected.dlq_extra
    problems += [f"rejected {w} has no dead-letter copy" for w in sorted(wanted_dlq - set(copies))[:10]]
    problems += [f"dead-letter copy of {w}, which is not rejected" for w in sorted(set(copies) - wanted_dlq)[:10]]

    # Per-key order of each producer's events, by first arrival.
    if expected.emit_orders:
        first: dict[str, tuple[tuple, int]] = {}  # event id -> ((topic, key), offset of first arrival)
        for (topic, _partition, offset), r in sorted(broker.items()):
            if r.event_id is not None and r.event_id not in first:
                first[r.event_id] = ((topic, r.key), offset)
        for order in expected.emit_orders:
            last: dict[tuple, tuple[int, str]] = {}
            for event_id in order:
                if event_id not in first:
                    continue  # reported as lost above
                key, offset = first[event_id]
                if key in last and last[key][0] > offset:
                    problems.append(f"key {key}: {event_id} arrived before {last[key][1]}, emitted earlier")
                last[key] = (offset, event_id)

    if verify:
        _verify(settings.db, codec, out)
    return out


def _verify(db: str, codec, out: Outcome) -> None:
    from ledger.audit.verify import verify_ledger
    from ledger.store import Ledger

    with Ledger.open(db) as ledger:
        report = verify_ledger(ledger, codec=codec)
    out.verify_ok = report.ok
    out.verify_problems = [str(p) for p in report.problems]
