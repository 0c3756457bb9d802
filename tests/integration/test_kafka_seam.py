"""The Kafka seam (ledger/kafka/): both clients behind one contract, on the real broker.

Most tests run once per client (the ``kafka_client`` fixture); the cross-client
ones send with one client and read with the other.
"""

from __future__ import annotations

import socket
import time
from uuid import uuid4

import pytest

from ledger.config import Settings
from ledger.errors import BrokerError, ConfigError, OffsetOutOfRangeError
from ledger.kafka import (
    BEGINNING,
    Acked,
    Partition,
    admin,
    choose,
    client_name,
    event_partitions,
    open_consumer,
    open_producer,
)
from ledger.kafka.topics import TOPIC_CONFIGS, all_topics
from ledger.tlog.chain import leaf_hash
from ledger.wire.record import Record

CLIENTS = ("kafka-python", "confluent")

# Edge cases the leaf hash distinguishes: null vs empty key, value and header value; several headers.
SAMPLES = [
    (None, b"null key", []),
    (b"null value", None, []),
    (b"", b"", [("a", b""), ("b", b"")]),
    (b"cust-1", b"\x00\x01value", [("event_type", b"DataAccessed")]),
    (b"cust-2", b"x" * 70_000, [("h1", b"1"), ("h2", b"2"), ("h1", b"again")]),
]


def _topic(settings: Settings, partitions: int, client: str = "kafka-python") -> str:
    name = f"{settings.topic_prefix}seam{uuid4().hex[:8]}"
    with admin(settings.with_(kafka_client=client)) as cluster:
        cluster.create_topics([name], partitions, 1, TOPIC_CONFIGS)
        cluster.wait_for_topics([name])
    return name


def _send(settings: Settings, topic: str, items, client: str) -> list[Acked]:
    with open_producer(settings.with_(kafka_client=client)) as producer:
        futures = [producer.send(topic, key=k, value=v, headers=h) for k, v, h in items]
        producer.flush(60)
        return [f.result(30) for f in futures]


def _read_all(settings: Settings, topics: list[str] | None, client: str, timeout: float = 30.0) -> list[Record]:
    consumer = open_consumer(settings.with_(kafka_client=client))
    try:
        parts = event_partitions(consumer, settings.topic_prefix, topics)
        consumer.assign({p: BEGINNING for p in parts})
        found: list[Record] = []
        deadline = time.monotonic() + timeout
        while True:
            batch = consumer.poll(10_000, 0.5)
            found += batch
            if not batch and consumer.caught_up(parts):
                break
            assert time.monotonic() < deadline, f"{client}: not caught up within {timeout}s"
        return sorted(found, key=lambda r: (r.topic, r.partition, r.offset))
    finally:
        consumer.close()


def _java_partition(key: bytes, partitions: int) -> int:
    from kafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


def test_choice_follows_the_setting():
    """kafka_client picks the implementation; auto takes confluent-kafka because it is installed here."""
    assert client_name(Settings.load(env={}, kafka_client="kafka-python")) == "kafka-python"
    assert client_name(Settings.load(env={}, kafka_client="confluent")) == "confluent"
    auto = choose(Settings.load(env={}))
    assert auto.name == "confluent" and auto.why.startswith("auto: confluent-kafka")
    assert client_name(Settings.load(env={"LEDGER_KAFKA_CLIENT": "kafka-python"})) == "kafka-python"


def test_unknown_client_is_refused_by_name():
    """A misspelt LEDGER_KAFKA_CLIENT is a ConfigError naming the setting, not a silent default."""
    with pytest.raises(ConfigError, match="kafka_client must be one of"):
        Settings.load(env={"LEDGER_KAFKA_CLIENT": "librdkafka"})


def test_auto_without_confluent_takes_kafka_python_and_says_why(monkeypatch):
    """auto falls back to kafka-python when confluent-kafka is not importable; asking for it then is an error."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "confluent_kafka" else real(name, *a))
    auto = choose(Settings.load(env={}))
    assert auto.name == "kafka-python" and "not installed" in auto.why and "ledger[fast]" in auto.why
    with pytest.raises(ConfigError, match=r"confluent-kafka is not installed.*ledger\[fast\]"):
        choose(Settings.load(env={}, kafka_client="confluent"))


def test_round_trip_returns_records(settings, kafka_client):
    """What a client sends comes back through the same client as Records with every field as sent."""
    client = kafka_client
    topic = _topic(settings, 1)
    before = int(time.time() * 1000)
    acks = _send(settings, topic, SAMPLES, client)
    after = int(time.time() * 1000)
    assert [a.offset for a in acks] == list(range(len(SAMPLES))) and {a.topic for a in acks} == {topic}
    records = _read_all(settings, [topic], client)
    assert [(r.topic, r.partition, r.offset) for r in records] == [(topic, 0, i) for i in range(len(SAMPLES))]
    for record, (key, value, headers) in zip(records, SAMPLES):
        assert (record.key, record.value, record.headers) == (key, value, tuple(headers))
        assert before - 1000 <= record.timestamp <= after + 1000


def test_both_consumers_return_identical_records(settings):
    """The same topics read with either client give equal Record lists, hence equal leaf hashes."""
    topic = _topic(settings, 3)
    items = SAMPLES + [(f"k{i}".encode(), f"v{i}".encode(), [("n", str(i).encode())]) for i in range(500)]
    _send(settings, topic, items[: len(items) // 2], "kafka-python")
    _send(settings, topic, items[len(items) // 2:], "confluent")
    by_client = {client: _read_all(settings, [topic], client) for client in CLIENTS}
    assert len(by_client["kafka-python"]) == len(items)
    assert by_client["kafka-python"] == by_client["confluent"]
    assert [leaf_hash(r) for r in by_client["kafka-python"]] == [leaf_hash(r) for r in by_client["confluent"]]


def test_both_consumers_give_identical_ledgers(settings, tmp_path):
    """A simulated workload read by either client and ingested gives the same leaf hashes and chain heads."""
    from ledger.dev.simulate import simulate
    from ledger.ingest.pipeline import Ingestor
    from ledger.produce.producer import wire_record
    from ledger.store import Ledger
    from ledger.wire.codec import default_codec

    codec = default_codec()
    wires = [wire_record(e, codec, settings.topic_prefix) for e in simulate(seed=5, events=600, subjects=40).events]
    with open_producer(settings.with_(kafka_client="confluent")) as producer:
        for w in wires + wires[:50]:  # repeats too: the ledger marks them duplicates
            producer.send(w.topic, key=w.key, value=w.value, headers=w.headers)
        producer.flush(60)
    heads, leaves = {}, {}
    for client in CLIENTS:
        ledger = Ledger.open(tmp_path / f"{client}.db", readonly=False, create=True)
        try:
            ingestor = Ingestor(ledger)
            ingestor.ingest(_read_all(settings, None, client))
            heads[client] = ledger.heads()
        finally:
            ledger.close()
        import sqlite3

        with sqlite3.connect(tmp_path / f"{client}.db") as conn:
            leaves[client] = conn.execute("SELECT topic, partition, offset, leaf_hash, status FROM entries "
                                          "ORDER BY topic, partition, offset").fetchall()
    assert len(leaves["confluent"]) == 650
    assert leaves["kafka-python"] == leaves["confluent"]
    assert heads["kafka-python"] == heads["confluent"] and heads["confluent"]


def test_null_header_values_read_alike(settings):
    """A null header value (other producers may write one) reads back as None through both clients."""
    from confluent_kafka import Producer

    topic = _topic(settings, 1)
    raw = Producer({"bootstrap.servers": settings.bootstrap_servers})
    raw.produce(topic, b"v", b"k", headers=[("a", None), ("b", b"")])
    assert raw.flush(30) == 0
    by_client = {client: _read_all(settings, [topic], client) for client in CLIENTS}
    assert by_client["kafka-python"] == by_client["confluent"]
    assert by_client["confluent"][0].headers == (("a", None), ("b", b""))


def test_same_key_same_partition_with_either_client(settings):
    """Keys land on the Java client's murmur2 partition whichever client sent them (librdkafka's default would not)."""
    keys = [f"cust-{i:06d}".encode() for i in range(1_200)]
    placed = {}
    for client in CLIENTS:
        topic = _topic(settings, 6)
        acks = _send(settings, topic, [(k, b"v", []) for k in keys], client)
        placed[client] = [a.partition for a in acks]
    expected = [_java_partition(k, 6) for k in keys]
    assert placed["kafka-python"] == expected
    assert placed["confluent"] == expected
    assert len(set(expected)) == 6


def test_highwater_and_caught_up(settings, kafka_client):
    """highwater is None before a fetch; caught up and lag 0 once positions reach it, an empty partition included."""
    client = kafka_client
    topic = _topic(settings, 2)
    acks = _send(settings, topic, [(b"same-key", b"v%d" % i, []) for i in range(50)], client)
    full = Partition(topic, acks[0].partition)
    empty = Partition(topic, 1 - full.partition)
    consumer = open_consumer(settings.with_(kafka_client=client), max_poll_records=20)
    try:
        consumer.assign({full: BEGINNING, empty: BEGINNING})
        assert consumer.highwater(full) is None and not consumer.caught_up([full, empty])
        assert consumer.lag([full, empty]) is None
        assert consumer.position(full) == 0 and consumer.position(empty) == 0
        got: list[Record] = []
        deadline = time.monotonic() + 30
        while not consumer.caught_up([full, empty]):
            batch = consumer.poll(20, 0.5)
            assert len(batch) <= 20
            got += batch
            assert time.monotonic() < deadline
        assert [r.offset for r in got] == list(range(50))
        assert consumer.highwater(full) == 50 and consumer.highwater(empty) == 0
        assert consumer.position(full) == 50 and consumer.lag([full, empty]) == 0
        assert consumer.poll(100, 0.2) == []
    finally:
        consumer.close()


def test_assign_at_a_stored_position(settings, kafka_client):
    """A consumer assigned at offset N returns N first, as the writer's resume from the ledger needs."""
    client = kafka_client
    topic = _topic(settings, 1)
    _send(settings, topic, [(b"k", b"v%d" % i, []) for i in range(30)], client)
    tp = Partition(topic, 0)
    consumer = open_consumer(settings.with_(kafka_client=client))
    try:
        consumer.assign({tp: 17})
        assert consumer.position(tp) == 17
        got: list[Record] = []
        deadline = time.monotonic() + 30
        while not consumer.caught_up([tp]):
            got += consumer.poll(1000, 0.5)
            assert time.monotonic() < deadline
        assert [r.offset for r in got] == list(range(17, 30)) and got[0].value == b"v17"
        consumer.pause(tp)
        assert consumer.paused() == {tp}
    finally:
        consumer.close()


def test_topics_create_list_and_config(settings, kafka_client):
    """Admin creates topics with their configs, lists them with partition counts, and tolerates re-creation."""
    client = kafka_client
    names = [f"{settings.topic_prefix}adm{uuid4().hex[:6]}{i}" for i in range(2)]
    with admin(settings.with_(kafka_client=client)) as cluster:
        assert cluster.create_topics(names, 4, 1, TOPIC_CONFIGS) == set(names)
        cluster.wait_for_topics(names)
        assert cluster.create_topics(names, 4, 1, TOPIC_CONFIGS) == set()  # already there: not an error
        listed = cluster.topic_partitions()
        assert {n: listed[n] for n in names} == {n: 4 for n in names}
        assert cluster.topic_partitions([names[0], names[0] + "-missing"]) == {names[0]: 4}
        assert cluster.broker_count() >= 1
        assert cluster.topic_config(names[0])["retention.ms"] == "-1"
    consumer = open_consumer(settings.with_(kafka_client=client))
    try:
        assert set(names) <= consumer.topics()
        assert consumer.partitions_for(names[0]) == [0, 1, 2, 3]
        assert consumer.partitions_for(names[0] + "-missing") is None
        with pytest.raises(BrokerError, match="topics missing: .*-missing; create them"):
            event_partitions(consumer, settings.topic_prefix, [names[0], names[0] + "-missing"])
        assert names[0] + "-missing" not in consumer.topics()  # asking created nothing
    finally:
        consumer.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_broker_is_a_clear_broker_error(kafka_client):
    """No broker at the address: BrokerError naming it, within the bootstrap timeout, from every factory."""
    client = kafka_client
    address = f"127.0.0.1:{_closed_port()}"
    settings = Settings.load(env={}, bootstrap_servers=address, kafka_client=client)
    for attempt in (lambda: open_producer(settings, bootstrap_timeout=2),
                    lambda: open_consumer(settings, bootstrap_timeout=2),
                    lambda: admin(settings, timeout=2).__enter__()):
        started = time.monotonic()
        with pytest.raises(BrokerError, match=f"cannot reach Kafka at {address}"):
            attempt()
        assert time.monotonic() - started < 8


def test_too_large_record_is_refused_at_send(settings, kafka_client):
    """A record above the request limit is a BrokerError at send, not a silent drop."""
    client = kafka_client
    topic = _topic(settings, 1)
    with open_producer(settings.with_(kafka_client=client)) as producer:
        with pytest.raises(BrokerError, match=f"could not send to {topic}"):
            producer.send(topic, key=b"k", value=b"x" * (2 * 1024 * 1024))
        with pytest.raises(BrokerError, match="needs a key or a value"):
            producer.send(topic, key=None, value=None)
        with pytest.raises(BrokerError, match="a header value must be bytes"):
            producer.send(topic, key=b"k", value=b"v", headers=[("h", None)])
        big = producer.send(topic, key=b"k", value=b"ok")
        producer.flush(30)
        assert big.done() and big.result(1).offset == 0


def test_kafka_python_offset_out_of_range_is_mapped(monkeypatch, settings):
    """kafka-python's OffsetOutOfRangeError becomes OffsetOutOfRangeError naming the partition and offset."""
    from kafka import TopicPartition
    from kafka.errors import OffsetOutOfRangeError as KafkaOOR

    consumer = open_consumer(settings.with_(kafka_client="kafka-python"))
    try:
        def poll(**_):
            raise KafkaOOR({TopicPartition("t.access", 2): 41})

        monkeypatch.setattr(consumer._client, "poll", poll)
        with pytest.raises(OffsetOutOfRangeError, match=r"t\.access\[2\] offset 41 is out of range") as caught:
            consumer.poll(10, 0.1)
        assert (caught.value.topic, caught.value.partition, caught.value.offset) == ("t.access", 2, 41)
    finally:
        consumer.close()


class _FakeError:
    def __init__(self, code, retriable=False):
        self._code, self._retriable = code, retriable

    def code(self):
        return self._code

    def retriable(self):
        return self._retriable

    def str(self):
        return f"error {self._code}"


class _FakeMessage:
    def __init__(self, error):
        self._error = error

    def error(self):
        return self._error

    def topic(self):
        return "t.access"

    def partition(self):
        return 2

    def offset(self):
        return 41


def test_confluent_fetch_errors_are_mapped(monkeypatch, settings):
    """librdkafka's offset-reset error is OffsetOutOfRangeError; retriable ones are left to its retries; others BrokerError."""
    from confluent_kafka import KafkaError

    consumer = open_consumer(settings.with_(kafka_client="confluent"))
    try:
        real = consumer._client
        batches = iter([[_FakeMessage(_FakeError(KafkaError._AUTO_OFFSET_RESET))]])
        monkeypatch.setattr(consumer, "_client", type("C", (), {"consume": lambda self, n, t: next(batches, [])})())
        with pytest.raises(OffsetOutOfRangeError, match=r"t\.access\[2\] offset 41 is out of range"):
            consumer.poll(10, 0.1)
        batches = iter([[_FakeMessage(_FakeError(KafkaError._TRANSPORT, retriable=True))]])
        assert consumer.poll(10, 0.1) == []
        batches = iter([[_FakeMessage(_FakeError(KafkaError.TOPIC_AUTHORIZATION_FAILED))]])
        with pytest.raises(BrokerError, match=r"fetch failed: t\.access\[2\]"):
            consumer.poll(10, 0.1)
    finally:
        consumer._client = real
        consumer.close()


def test_doctor_says_which_client_and_why(tmp_path):
    """`ledger doctor` names the client in use and the reason, without contacting Kafka."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "ledger", "doctor", "--kafka-client", "kafka-python"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "kafka client: kafka-python" in run.stdout and "why: kafka_client is kafka-python" in run.stdout
    run = subprocess.run([sys.executable, "-m", "ledger", "doctor"], capture_output=True, text=True)
    assert "kafka client: confluent" in run.stdout and "why: auto:" in run.stdout


def test_doctor_connect_lists_through_the_chosen_client(settings, kafka_client):
    """`ledger doctor --connect` reaches the cluster through the client it names and counts the prefix's topics."""
    client = kafka_client
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "ledger", "doctor", "--connect", "--kafka-client", client,
                          "--bootstrap-servers", settings.bootstrap_servers, "--topic-prefix", settings.topic_prefix],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert f"kafka client: {client}" in run.stdout
    assert f"{len(all_topics(settings.topic_prefix))} under {settings.topic_prefix!r}" in run.stdout  # every topic create_topics makes


def test_the_writer_gives_identical_ledgers_with_either_client(settings, kafka_client, tmp_path):
    """The same topics consumed by `ledger consume --kafka-client X --until-idle` give identical ledgers.

    Through the real writer (positions, batching, continuity check, DLQ), not only the Ingestor:
    the entries (leaf hashes, statuses, offsets), the chain heads and the stored positions are equal,
    and bad records are rejected alike.
    """
    if kafka_client != "kafka-python":
        pytest.skip("compares both clients in one run (under the kafka-python parameter)")
    import os
    import sqlite3
    import subprocess
    import sys

    from ledger.dev.simulate import simulate
    from ledger.produce.producer import wire_record
    from ledger.wire.codec import default_codec

    codec = default_codec()
    wires = [wire_record(e, codec, settings.topic_prefix) for e in simulate(seed=9, events=400, subjects=30).events]
    with open_producer(settings.with_(kafka_client="kafka-python")) as producer:
        for w in wires + wires[:25]:  # repeats: marked duplicates
            producer.send(w.topic, key=w.key, value=w.value, headers=w.headers)
        producer.send(wires[0].topic, key=b"bad", value=b"not avro", headers=[])  # rejected, copied to the DLQ
        producer.flush(60)
    found = {}
    for client in CLIENTS:
        db = tmp_path / f"{client}.db"
        env = {**os.environ, "LEDGER_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
               "LEDGER_TOPIC_PREFIX": settings.topic_prefix, "LEDGER_DB": str(db)}
        env.pop("LEDGER_KAFKA_CLIENT", None)
        run = subprocess.run([sys.executable, "-m", "ledger", "consume", "--kafka-client", client, "--until-idle"],
                             env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        with sqlite3.connect(db) as conn:
            entries = conn.execute("SELECT topic, partition, offset, leaf_hash, status FROM entries "
                                   "ORDER BY topic, partition, offset").fetchall()
        from ledger.store import Ledger

        ledger = Ledger.open(db)
        try:
            found[client] = (entries, ledger.heads(), ledger.positions())
        finally:
            ledger.close()
    assert len(found["confluent"][0]) == 426
    assert {status for *_, status in found["confluent"][0]} >= {"entry", "duplicate", "rejected"}
    assert found["kafka-python"] == found["confluent"]
