"""Transactional producers: the writer and replay read committed records only; markers' offsets become gaps.

What the local broker (tansu) lets us test: every consumer the writer and
replay make asks for ``read_committed``; the records of a committed
transaction are ingested; the offsets taken by transaction markers (control
records, never delivered) become gap entries, so every offset stays
accounted for. tansu delivers the records of an *aborted* transaction even to
a read_committed consumer (shared/BROKERS.md), so that they are skipped is
Apache Kafka's behaviour, not tested here (RELIABILITY.md).
"""

from __future__ import annotations

from uuid import uuid4

import kafka
import pytest
from builders import make_event

from ledger.audit.verify import verify_ledger
from ledger.ingest.replay import replay
from ledger.ingest.writer import LedgerWriter
from ledger.produce.producer import wire_record
from ledger.store import Ledger, iter_entries
from ledger.wire.codec import default_codec


@pytest.fixture
def consumers_made(monkeypatch) -> list[dict]:
    """The isolation level of every consumer created meanwhile, by either client behind the seam."""
    from ledger.kafka import confluent, kafka_python

    made = []
    python_construct, confluent_construct = kafka_python._construct, confluent._construct

    def python_recording(cls, settings, options):
        if cls is kafka.KafkaConsumer:
            made.append({"isolation_level": options.get("isolation_level")})
        return python_construct(cls, settings, options)

    def confluent_recording(cls, conf):
        if cls is confluent._Consumer:
            made.append({"isolation_level": conf.get("isolation.level")})
        return confluent_construct(cls, conf)

    monkeypatch.setattr(kafka_python, "_construct", python_recording)
    monkeypatch.setattr(confluent, "_construct", confluent_recording)
    return made


def produce_in_transactions(settings, transactions) -> None:
    """Each inner list is one transaction (committed), all to partition 0 of the events' topics."""
    codec = default_codec()
    producer = kafka.KafkaProducer(**settings.kafka_options(), transactional_id=f"test-{uuid4().hex[:8]}")
    try:
        producer.init_transactions()
        for events in transactions:
            producer.begin_transaction()
            for event in events:
                wire = wire_record(event, codec, settings.topic_prefix)
                producer.send(wire.topic, key=wire.key, value=wire.value, headers=wire.headers, partition=0)
            producer.commit_transaction()
    finally:
        producer.close()


def test_committed_transactions_are_ingested_and_marker_offsets_become_gaps(settings, consumers_made, tmp_path):
    """Two committed transactions on one partition: their records are entries, the commit marker between them
    is a gap entry (the trailing marker is one as soon as a record follows), the ledger verifies, and the writer
    and replay read with isolation_level read_committed."""
    first, second, third = (make_event(n, subject_ids=["cust-0001"]) for n in (1, 2, 3))
    produce_in_transactions(settings, [[first, second], [third]])
    LedgerWriter(settings, group_id=None).run(until_idle=True, install_signals=False)
    access = settings.topic_prefix + "access"
    with Ledger.open(settings.db) as ledger:
        rows = [(e.offset, e.status, e.gap_end, e.event_id) for e in iter_entries(ledger) if e.topic == access]
        assert verify_ledger(ledger).ok
    assert rows == [(0, "entry", None, first["event_id"]), (1, "entry", None, second["event_id"]),
                    (2, "gap", 3, None), (3, "entry", None, third["event_id"])]
    result = replay(settings, tmp_path / "replayed.db", bulk=False)
    assert result.counts["entry"] == 3 and result.counts["gap"] == 1
    assert consumers_made and all(c.get("isolation_level") == "read_committed" for c in consumers_made)
