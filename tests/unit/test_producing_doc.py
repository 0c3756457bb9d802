"""docs/producing.md stays true: its fingerprints, patterns, topics and header name are the code's (issue 11, defect 8)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import fastavro

from ledger.kafka.topics import TOPIC_SUFFIX
from ledger.model import events
from ledger.model.event_rules import _COUNTRY, _SHA256
from ledger.model.taxonomy import CODE_PATTERN
from ledger.model.validator import _UUID_CANONICAL
from ledger.wire.codec import default_codec, schema_fingerprint
from ledger.wire.record import EVENT_TYPE_HEADER

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "producing.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| (\w+) \| (v\d+) \| `([0-9a-f]{16})` \| `([0-9a-f ]{23})` \| `([0-9a-f ]{23})` \|$", re.M)


def _apache_fingerprint(source: dict) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import avro.schema

        return bytes(avro.schema.parse(json.dumps(source)).fingerprint("CRC-64-AVRO"))


def test_every_schema_version_has_its_fingerprints_listed():
    """One row per released schema version: the 64-bit CRC-64-AVRO value, its little-endian wire bytes (what the
    codec and fastavro compute) and what Apache avro-python computes instead; and that last one does differ."""
    rows = {(t, v): (value, wire, apache) for t, v, value, wire, apache in ROW.findall(DOC)}
    expected = {}
    for event_type, versions in default_codec().all_versions().items():
        for sv in versions:
            wire = sv.fingerprint
            assert wire == bytes.fromhex(fastavro.schema.fingerprint(sv.canonical_form, "CRC-64-AVRO"))
            apache = _apache_fingerprint(sv.source)
            assert apache != wire  # the warning in the doc is still needed
            expected[(event_type, sv.label)] = (f"{int.from_bytes(schema_fingerprint(sv.canonical_form), 'little'):016x}", wire.hex(" "),
                                                apache.hex(" "))
    assert rows == expected


def test_the_documented_patterns_are_the_validators():
    """The UUID, code, country and digest patterns in the doc are the ones validation uses."""
    for pattern in (_UUID_CANONICAL, CODE_PATTERN, _COUNTRY, _SHA256):
        assert f"`{pattern.pattern.replace('(?:', '(')}`" in DOC, pattern.pattern
    assert CODE_PATTERN.pattern.replace("(?:", "(") == r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+"
    assert f"1 to {events.MAX_SUBJECTS:,}" in DOC


def test_the_documented_topics_and_header_are_the_codes():
    """Each event type's topic suffix and the event_type header name match ledger.topics and ledger.ingest."""
    table = dict(re.findall(r"^\| ([\w, ]+) \| `\{prefix\}(\w+)` \|$", DOC, re.M))
    documented = {t.strip(): suffix for types, suffix in table.items() for t in types.split(",")}
    assert documented == TOPIC_SUFFIX
    assert f"**`{EVENT_TYPE_HEADER}`**" in DOC and "murmur2_random" in DOC


def test_the_doc_is_linked_from_the_readmes():
    """README.md and schemas/README.md point outside teams to docs/producing.md."""
    assert "docs/producing.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "../docs/producing.md" in (ROOT / "schemas" / "README.md").read_text(encoding="utf-8")
