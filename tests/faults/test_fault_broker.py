"""The broker crashes and outages: durable storage keeps the promise, memory storage gets a clear stop."""

from __future__ import annotations

import random
import threading
import time

from faultcheck import Expected, check
from faultkit import WriterProcess, catch_up, record, scale
from traffic import acknowledged, emit_acknowledged

from ledger.config import Settings
from ledger.dev.broker import LocalBroker
from ledger.dev.simulate import simulate
from ledger.kafka.topics import create_topics
from ledger.produce.producer import AuditProducer


class PacedProducer(threading.Thread):
    """Emits a workload through the SDK in small acknowledged windows, spread over ``seconds``."""

    def __init__(self, settings, events, seconds: float, window: int = 200):
        super().__init__(daemon=True)
        self.settings, self.events, self.window = settings, events, window
        self.pause = seconds / max(1, len(events) / window)
        self.told: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with AuditProducer(self.settings) as producer:
                for start in range(0, len(self.events), self.window):
                    self.told += acknowledged(producer, self.events[start:start + self.window])
                    time.sleep(self.pause)
        except BaseException as err:  # reported by the test
            self.error = err


def test_broker_killed_and_restarted_on_durable_storage(durable_broker, s3_settings):
    """SIGKILLing the S3-backed broker while producers and the writer run loses and repeats nothing."""
    events, crashes = scale(3_000, 20_000), scale(2, 8)
    workload = simulate(seed=31, events=events, subjects=scale(100, 600))
    producer = PacedProducer(s3_settings, workload.events, seconds=scale(6, 40))
    writer = WriterProcess(s3_settings).start()
    rng = random.Random(5)
    try:
        producer.start()
        for _ in range(crashes):
            time.sleep(rng.uniform(1.0, 2.5))
            durable_broker.kill()
            time.sleep(rng.uniform(0.2, 2.0))
            durable_broker.restart()
            writer.supervise()
        producer.join(timeout=600)
        assert producer.error is None, producer.error
        writer.supervise()
        assert writer.stop() == 0, writer.stderr()
    finally:
        writer.close()
    catch_up(s3_settings)

    outcome = check(s3_settings, Expected(told=set(producer.told)))
    note = writer.exit_note()
    record("broker SIGKILL + restart (S3)", f"{crashes} broker SIGKILLs", outcome, note)
    outcome.assert_ok()
    assert not writer.crashes(), writer.crashes()[0]


def test_broker_unreachable_while_durable_producers_emit(durable_broker, s3_settings, tmp_path):
    """Events emitted in durable mode while the broker is down all arrive once, in order per key, once it is back."""
    events, outages = scale(3_000, 15_000), scale(2, 6)
    down_seconds = scale(2.0, 5.0)
    workload = simulate(seed=41, events=events, subjects=scale(100, 600))
    chunks = _contiguous(workload.events, 2 * outages + 1)
    writer = WriterProcess(s3_settings).start()
    told: list[str] = []
    how = []
    try:
        with AuditProducer(s3_settings, durable=tmp_path / "outbox.db") as producer:
            for i, chunk in enumerate(chunks):
                outage = i % 2 == 1
                if outage:  # alternate a clean stop and a crash
                    how.append("stop" if len(how) % 2 == 0 else "kill")
                    durable_broker.stop() if how[-1] == "stop" else durable_broker.kill()
                for event in chunk:
                    producer.emit(event)
                    told.append(event["event_id"])
                if outage:
                    time.sleep(down_seconds)
                    durable_broker.start()
                    writer.supervise()
            producer.flush(timeout=300)
        writer.supervise()
        assert writer.stop() == 0, writer.stderr()
    finally:
        writer.close()
    catch_up(s3_settings)

    outcome = check(s3_settings, Expected(told=set(told), emit_orders=[told]))
    note = "; ".join(filter(None, ["per-key order kept", writer.exit_note()]))
    record("broker unreachable, durable producer (S3)",
           f"{outages} outages of {down_seconds:g}s ({how.count('stop')} stop, {how.count('kill')} kill)",
           outcome, note)
    outcome.assert_ok()
    assert not writer.crashes(), writer.crashes()[0]


def _contiguous(items: list, parts: int) -> list[list]:
    size = -(-len(items) // parts)
    return [items[i:i + size] for i in range(0, len(items), size)]


def test_memory_broker_losing_its_data_stops_the_writer(tmp_path):
    """A memory broker that restarts empty cannot keep the promise: the writer refuses to continue and says why."""
    from faultcheck import event_topics, read_topics
    from faultkit import ledger_cli

    read, unread = scale(1_000, 10_000), scale(300, 3_000)
    workload = simulate(seed=51, events=read + unread, subjects=scale(50, 300))
    with LocalBroker(port=0) as broker:
        settings = Settings.load(env={}, bootstrap_servers=broker.bootstrap, topic_prefix="mem.",
                                 db=str(tmp_path / "ledger.db"), partitions=3)
        create_topics(settings)
        told = emit_acknowledged(settings, workload.events[:read])
        catch_up(settings)
        held = read_topics(settings.bootstrap_servers, event_topics(settings.topic_prefix))
        lost_by_broker = emit_acknowledged(settings, workload.events[read:])  # acked, never read by the writer
        broker.kill()
        broker.start()  # memory storage: empty
        create_topics(settings)
        emit_acknowledged(settings, simulate(seed=52, events=read + unread + 100, subjects=50).events)
        stopped = ledger_cli(settings, "consume", "--until-idle", "--quiet", timeout=120)
        # The checker compares the ledger with what the broker held before it lost its data.
        outcome = check(settings, Expected(told=set(told)), broker_records=held)
    record("broker crash on memory storage", "1 broker SIGKILL, restarted empty", outcome,
           f"writer refused to continue (exit {stopped.returncode}): broker lost data",
           lost=f"n/a: broker lost {len(lost_by_broker)}")
    assert stopped.returncode != 0
    assert "Refusing to continue" in stopped.stderr, stopped.stderr
    outcome.assert_ok()
