"""UUID fields accept exactly the canonical lowercase 8-4-4-4-12 text, on every way in (issue 11, defect 2).

``uuid.UUID()`` used to "normalise" ids: ``+92d68d4-…`` became ``092d68d4-…``,
``8-9-2-d68d45322465f9b77b6e6ce3f292a`` was accepted, and a distinct event was
then de-duplicated against an unrelated one and vanished from who-saw. Now a
UUID string is kept exactly as sent or refused naming the field, whether it
comes through validate (the SDK), ``ledger emit`` or a raw record on a topic.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schema_walk import encode_with_index, full_sample

from ledger.cli.emit import parse
from ledger.errors import DecodeError, ValidationError
from ledger.ingest.pipeline import Ingestor
from ledger.model import events
from ledger.produce.producer import wire_record
from ledger.store import Ledger, iter_entries
from ledger.wire.codec import MAGIC, default_codec
from ledger.wire.record import Record

CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Every UUID field of every schema, as (event type, path): found from the schemas' logical types.
UUID_FIELDS = [("DataAccessed", "event_id"), ("DataShared", "consent_ref"),
               ("NotificationStatusChanged", "disclosure_event_id"), ("SubjectNotified", "disclosure_event_id"),
               ("ConsentChanged", "event_id"), ("LegalDisclosure", "event_id")]
SCHEMAS = events.newest_schemas()


def _uuid_fields(t, path="") -> list[str]:
    if isinstance(t, list):
        return [p for b in t if b != "null" for p in _uuid_fields(b, path)]
    if not isinstance(t, dict):
        return []
    if t.get("logicalType") == "uuid":
        return [path]
    if t.get("type") == "record":
        return [p for f in t["fields"] for p in _uuid_fields(f["type"], f"{path}.{f['name']}".lstrip("."))]
    return []


def _swap_digit(text: str, digit: str) -> str:
    i = next(i for i, c in enumerate(text) if c.isdigit())
    return text[:i] + digit + text[i + 1:]


def _ungroup(text: str, sizes: list[int]) -> str:
    hexdigits = text.replace("-", "")
    out, i = [], 0
    for n in sizes:
        out.append(hexdigits[i:i + n])
        i += n
    return "-".join(out) + hexdigits[i:]


SHAPES = {  # each turns a canonical id into a spelling uuid.UUID() (or a lax regex) might accept
    "plus": lambda u, d: "+" + u[1:],
    "underscore": lambda u, d: u[:8] + "_" + u[9:],
    "leading space": lambda u, d: " " + u,
    "trailing newline": lambda u, d: u + "\n",
    "tab inside": lambda u, d: u[:13] + "\t" + u[14:],
    "0x": lambda u, d: "0x" + u.replace("-", ""),
    "braces": lambda u, d: "{" + u + "}",
    "urn": lambda u, d: "urn:uuid:" + u,
    "no dashes": lambda u, d: u.replace("-", ""),
    "wrong groups": lambda u, d: _ungroup(u, d.draw(st.lists(st.integers(1, 12), min_size=1, max_size=6),
                                                    label="groups")),
    "upper case": lambda u, d: u.upper() if any(c.isalpha() for c in u) else "A" + u[1:],
    "one upper char": lambda u, d: u.replace(next((c for c in u if c in "abcdef"), "0"),
                                             next((c for c in u if c in "abcdef"), "0").upper() or "A", 1)
    if any(c in "abcdef" for c in u) else u[:-1] + "A",
    "non-ASCII digit": lambda u, d: _swap_digit(u, d.draw(st.sampled_from("٣०০０𝟗߂"), label="digit"))
    if any(c.isdigit() for c in u) else u[:-1] + "٣",
    "extra char": lambda u, d: u + d.draw(st.sampled_from("0a-"), label="extra"),
    "missing char": lambda u, d: u[:-1],
}
SPELLINGS = st.one_of(
    st.uuids().map(str),  # canonical
    st.builds(lambda u, shape, d: SHAPES[shape](str(u), d), st.uuids(), st.sampled_from(sorted(SHAPES)), st.data()),
    st.text(alphabet="0123456789abcdefABCDEF-{}+_ x", min_size=30, max_size=40),
)


def _event(event_type: str, path: str, value) -> dict:
    event = full_sample(event_type, SCHEMAS[event_type])
    event[path] = value
    return event


def test_the_list_of_uuid_fields_is_complete():
    """Every field with logicalType uuid in the six schemas is covered below."""
    found = sorted((t, p) for t in events.EVENT_TYPES for p in _uuid_fields(SCHEMAS[t]))
    assert found == sorted({*UUID_FIELDS, *((t, "event_id") for t in events.EVENT_TYPES)})


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(sorted({*UUID_FIELDS, *((t, "event_id") for t in events.EVENT_TYPES)})),
       spelling=SPELLINGS)
def test_validate_and_a_raw_record_accept_exactly_the_canonical_text(field, spelling):
    """validate (the SDK's check) and the decoder of a raw record keep a canonical id as it is and refuse any
    other spelling naming the field; neither ever returns an id that differs from what was sent."""
    event_type, path = field
    canonical = CANONICAL.fullmatch(spelling) is not None
    obj = _event(event_type, path, spelling)
    codec = default_codec()
    raw = MAGIC + codec.newest(event_type).fingerprint + encode_with_index(SCHEMAS[event_type], obj)
    if canonical:
        assert events.validate(obj)[path] == spelling
        assert codec.decode(raw)[path] == spelling == codec.decode_with_fastavro(raw)[path]
        return
    with pytest.raises(ValidationError) as info:
        events.validate(obj)
    assert info.value.field == path and "canonical UUID" in info.value.reason
    for decode in (codec.decode, codec.decode_as_written, codec.decode_with_fastavro):
        with pytest.raises(DecodeError, match=f"is invalid: {re.escape(path)}: .*canonical UUID"):
            decode(raw)


def test_the_issues_examples_are_refused_and_not_deduplicated(tmp_path):
    """The two ids of the issue are refused by validate, and as raw records they are rejected, so a distinct
    event can no longer collide with another one's id and vanish as a repeat."""
    real = "092d68d4-5322-465f-9b77-b6e6ce3f292a"
    for odd in ("+92d68d4-5322-465f-9b77-b6e6ce3f292a", "8-9-2-d68d45322465f9b77b6e6ce3f292a"):
        assert str(uuid.UUID(odd)) in (real, "892d68d4-5322-465f-9b77-b6e6ce3f292a")  # what used to happen
        with pytest.raises(ValidationError, match="canonical UUID"):
            events.validate(_event("DataAccessed", "event_id", odd))
    codec = default_codec()
    schema = SCHEMAS["DataAccessed"]
    values = [MAGIC + codec.newest("DataAccessed").fingerprint + encode_with_index(
        schema, _event("DataAccessed", "event_id", i)) for i in (real, "+92d68d4-5322-465f-9b77-b6e6ce3f292a")]
    ledger = Ledger.open(tmp_path / "l.db", readonly=False, create=True)
    try:
        key = min(_event("DataAccessed", "event_id", real)["subject_ids"]).encode()  # routed as the contract says
        Ingestor(ledger, codec=codec).ingest([Record("ledger.access", 0, n, 1_772_323_200_000, key, v,
                                                     (("event_type", b"DataAccessed"),))
                                              for n, v in enumerate(values)])
        first, second = iter_entries(ledger)
        assert (first.status, first.event_id) == ("entry", real)
        assert second.status == "rejected" and "event_id: '+92d68d4" in second.reason
    finally:
        ledger.close()


def test_the_sdk_and_ledger_emit_refuse_a_non_canonical_id():
    """The SDK's wire_record (what AuditProducer sends) and `ledger emit` refuse an upper-case or braced id."""
    line = {**events.to_json(_event("ConsentChanged", "event_id", "0b7c0d1e-2f3a-4b5c-8d6e-7f8091a2b3c4"))}
    for odd in ("0B7C0D1E-2F3A-4B5C-8D6E-7F8091A2B3C4", "{0b7c0d1e-2f3a-4b5c-8d6e-7f8091a2b3c4}"):
        valid, rejected = parse([json.dumps({**line, "event_id": odd})])
        assert not valid and "event_id" in rejected[0][1] and "canonical UUID" in rejected[0][1]
        with pytest.raises(ValidationError, match="canonical UUID") as info:
            wire_record({**line, "event_id": odd}, default_codec(), "ledger.")
        assert info.value.field == "event_id"
    done = subprocess.run([sys.executable, "-m", "ledger", "emit", "--all-or-nothing", "-"],
                          input=json.dumps({**line, "event_id": odd}) + "\n", capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "event_id" in done.stderr and "canonical UUID" in done.stderr
    assert "Traceback" not in done.stderr
