"""What the fault scenarios send: acknowledged workload events, bad records, raw bytes.

Good events go through the producer SDK (``AuditProducer`` or its
``wire_record`` encoding); only the deliberately bad records bypass it.
"""

from __future__ import annotations

import json
import shutil
import time
from io import BytesIO
from pathlib import Path

from fastavro import schemaless_writer

from ledger.errors import BrokerError
from ledger.kafka import open_producer
from ledger.kafka.topics import topic_for
from ledger.produce.producer import AuditProducer, wire_record

BAD_KINDS = ("not-avro", "unknown-fingerprint", "truncated", "invalid-event", "oversized", "null-value")
EVENT_TYPE_OF_TOPIC = {"access": "DataAccessed", "sharing": "DataShared", "disclosure": "LegalDisclosure",
                       "consent": "ConsentChanged"}


def emit_acknowledged(settings, events, *, window: int = 2000, codec=None) -> list[str]:
    """Emit through the SDK until each event is acknowledged; returns the acknowledged ids."""
    with AuditProducer(settings, codec=codec) as producer:
        return acknowledged(producer, events, window=window)


def acknowledged(producer: AuditProducer, events, *, window: int = 2000) -> list[str]:
    """Emit ``events`` in windows and wait for their acks; a failed one is emitted again (at-least-once).

    Returns the ids whose ``Delivery.result()`` returned: what the callers were told was recorded.
    """
    told: list[str] = []
    for start in range(0, len(events), window):
        pending = list(events[start:start + window])
        while pending:
            deliveries = []
            for event in pending:
                try:
                    deliveries.append((event, producer.emit(event)))
                except BrokerError:  # no connection to start from: try this one again
                    time.sleep(0.5)
                    deliveries.append((event, None))
            pending = []
            for event, delivery in deliveries:
                try:
                    if delivery is None:
                        raise BrokerError("not sent")
                    delivery.result(timeout=180)
                    told.append(delivery.event_id)
                except BrokerError:
                    pending.append(event)
    return told


def bad_values(codec, events_by_type: dict[str, dict]) -> dict[str, list[tuple[str, bytes | None]]]:
    """Per event type, one value of each bad kind: ``[(kind, value)]``."""
    out = {}
    for etype, good in events_by_type.items():
        encoded = codec.encode(good)
        newest = codec.versions(etype)[-1]
        invalid = dict(good, subject_ids=[])  # valid Avro, fails validation (no subjects)
        body = BytesIO()
        schemaless_writer(body, newest.parsed, invalid)
        out[etype] = [
            ("not-avro", b"not avro at all"),
            ("unknown-fingerprint", b"\xc3\x01" + b"\xfe" * 8 + encoded[10:]),
            ("truncated", encoded[:-3]),
            ("invalid-event", encoded[:10] + body.getvalue()),
            ("oversized", encoded[:10] + b"x" * (2 * 1024 * 1024)),
            ("null-value", None),
        ]
    return out


def raw_producer(settings):
    return open_producer(settings, max_request_bytes=4 << 20)


def send_bad(settings, codec, sample_events) -> set[tuple[str, int, int]]:
    """One record of each bad kind on every event topic; returns their (topic, partition, offset)."""
    by_type = {}
    for e in sample_events:
        by_type.setdefault(e["type"], e)
    producer = raw_producer(settings)
    try:
        futures = []
        for suffix, etype in EVENT_TYPE_OF_TOPIC.items():
            for _, value in bad_values(codec, {etype: by_type[etype]})[etype]:
                futures.append(producer.send(settings.topic_prefix + suffix, key=b"bad-key", value=value))
        producer.flush()
        return {(m.topic, m.partition, m.offset) for m in (f.result(timeout=60) for f in futures)}
    finally:
        producer.close()


def schemas_with_v2(base: Path, target: Path, event_type: str = "DataAccessed") -> Path:
    """A copy of ``base`` plus a v2 of ``event_type`` adding a nullable field; returns the v2 file."""
    shutil.copytree(base, target)
    v1 = json.loads((target / event_type / "v1.avsc").read_text())
    v1["fields"].append({"name": "fault_suite_note", "type": ["null", "string"], "default": None,
                         "doc": "Added by the fault suite: a version the writer does not know yet."})
    v2 = target / event_type / "v2.avsc"
    v2.write_text(json.dumps(v1, indent=2))
    return v2


def topic_of(event: dict, prefix: str) -> str:
    return topic_for(event["type"], prefix)


__all__ = ["emit_acknowledged", "acknowledged", "bad_values", "send_bad", "raw_producer", "schemas_with_v2", "wire_record",
           "topic_of", "BAD_KINDS"]
