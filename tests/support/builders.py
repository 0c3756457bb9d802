"""Builders for ledger-file tests without Kafka: valid events, the Records a writer consumes, a writer.

    event = make_event(3, "DataShared")        # valid, deterministic, fields overridable
    record = make_record(event, offset=7)      # routed as the contract says, encoded with CODEC
    ledger, ingestor = open_writer(tmp_path / "l.db")
    ingestor.ingest([record])

``record_streams`` is a Hypothesis strategy for record streams with gaps, duplicates and conflicts;
``v2_schemas`` copies schemas/ with a DataAccessed v2. Events occur from ``START`` one minute apart.
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import strategies as st

from ledger.ingest.pipeline import Ingestor
from ledger.kafka.topics import topic_for
from ledger.model.events import event_key, schemas_dir
from ledger.store import Ledger
from ledger.wire.codec import Codec, default_codec
from ledger.wire.record import Record

CODEC = default_codec()
START = datetime(2026, 3, 1, tzinfo=timezone.utc)
RECIPIENT = {"id": "rcpt-adreach", "name": "AdReach", "kind": "ADVERTISER"}


def make_event(n: int, etype: str = "DataAccessed", *, codec: Codec = CODEC, **over) -> dict:
    """A valid, deterministic event number ``n`` of ``etype`` (fields overridable)."""
    base = {
        "type": etype,
        "event_id": str(uuid.UUID(int=n + 1)),
        "occurred_at": START + timedelta(minutes=n),
        "source_service": "support-desk",
        "actor": {"id": f"emp-{n % 3}", "type": "EMPLOYEE"},
        "subject_ids": [f"cust-{n:04d}", f"cust-{n + 1:04d}"],
    }
    extra = {
        "DataAccessed": {"data_categories": ["user.contact.email"], "purpose": "essential.service.support",
                         "access_type": "VIEW", "outcome": "GRANTED"},
        "DataShared": {"data_categories": ["user.contact.email", "user.contact.phone"],
                       "purpose": "marketing.advertising", "recipient": RECIPIENT},
        "LegalDisclosure": {"data_categories": ["user.contact.email"], "purpose": "legal.compliance",
                            "recipient": {**RECIPIENT, "id": "rcpt-police", "kind": "OTHER"},
                            "reviewed_by": "legal-1", "requested_categories": ["user.contact.email"],
                            "request": {"id": f"REQ-{n}", "kind": "SUBPOENA", "authority": "Court",
                                        "received_at": START},
                            "notification": {"status": "PENDING"}},
        "ConsentChanged": {"purpose": "marketing.email", "granted": True, "channel": "EMAIL",
                           "scope": "FIRST_PARTY"},
        "SubjectNotified": {"disclosure_event_id": str(uuid.UUID(int=999)), "notified_at": START,
                            "channel": "email"},
    }[etype]
    return codec.validate({**base, **extra, **over})


def make_record(value, topic: str | None = None, partition: int = 0, offset: int = 0, *,
                timestamp: int | None = None, etype: str | None = "DataAccessed", codec: Codec = CODEC,
                key: bytes | None = None) -> Record:
    """A Record carrying ``value`` (an event dict is encoded with ``codec``), routed as the contract says.

    By default an event goes to its type's topic with key ``min(subject_ids)``
    (ledger.routing); other values go to ``ledger.access`` with key ``b"key"``.
    """
    if isinstance(value, dict):
        etype = value["type"]
        topic = topic or topic_for(etype, "ledger.")
        key = event_key(value) if key is None else key
        value = codec.encode(value)
    headers = (("event_type", etype.encode()),) if etype else ()
    return Record(topic or "ledger.access", partition, offset,
                  1_772_323_200_000 + offset if timestamp is None else timestamp,
                  b"key" if key is None else key, value, headers)


def open_writer(path: Path, codec: Codec = CODEC) -> tuple[Ledger, Ingestor]:
    ledger = Ledger.open(path, readonly=False, create=True)
    return ledger, Ingestor(ledger, codec=codec)


def v2_schemas(tmp_path: Path) -> Path:
    """A copy of schemas/ with a DataAccessed v2 that adds an optional field."""
    root = tmp_path / "schemas"
    shutil.copytree(schemas_dir(), root)
    v1 = json.loads((root / "DataAccessed" / "v1.avsc").read_text())
    v1["fields"].append({"name": "review_note", "type": ["null", "string"], "default": None})
    (root / "DataAccessed" / "v2.avsc").write_text(json.dumps(v1))
    return root



@st.composite
def record_streams(draw):
    """Records over three partitions with random gaps, duplicates and conflicts, plus batch cut points."""
    n = draw(st.integers(1, 30))
    offsets = {0: 0, 1: 0, 2: 0}
    records = []
    for i in range(n):
        partition = draw(st.integers(0, 2))
        offsets[partition] += draw(st.sampled_from([0, 0, 0, 1, 3]))
        event = make_event(draw(st.integers(0, n)))  # repeats give duplicates and conflicts
        kind = draw(st.sampled_from(["same"] * 6 + ["other content", "misrouted"]))
        if kind == "other content":  # the same event_id saying something else: a contradiction
            event = make_event(int(event["event_id"][-12:], 16) - 1, source_service="another-desk")
        value = CODEC.encode(event) if draw(st.booleans()) or i % 7 else b"junk"
        records.append(make_record(value, partition=partition, offset=offsets[partition],
                                   key=b"wrong" if kind == "misrouted" else event_key(event),
                                   timestamp=draw(st.integers(0, 50))))  # timestamps need not grow with offsets
        offsets[partition] += 1
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    return records, cuts
