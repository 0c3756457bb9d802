"""Every decode path against an independent Avro implementation, Apache ``avro`` (issue 11, item 4).

Bodies are written by Apache avro's own DatumWriter from valid events of every
schema, then kept, mutated (bytes replaced, inserted, deleted) or truncated.
Each body is read by Apache avro (DatumReader, with the same writer and reader
schemas) and by each of the ledger's decode paths — the compiled reader
(``decode``), the writer's-own-schema reader ingest uses (``decode_as_written``)
and the fastavro path (``decode_with_fastavro``) — with only v1 installed and
with a v2 of every type installed (where v1 records go through fastavro's
schema resolution). The verdicts must agree, and so must the VALUES:

* Apache rejects → every ledger path rejects.
* Apache accepts → each path returns the same values (the event minus
  ``type``; the v2 reader adds its defaulted field as Apache's does), or
  rejects for one of the reasons where the ledger is deliberately stricter:

  - a validation rule Avro cannot express (``... is invalid: <field>: ...``:
    canonical UUIDs, non-empty strings, dotted codes, 1-1,000 unique
    subjects, an upper-case country, a lowercase digest, the notification rules);
  - bytes left after the record (Apache reads one datum and stops; a Kafka
    value is exactly one record);
  - a boolean byte other than 0 or 1 (Apache reads any byte but 1 as false).

``LEDGER_SLOW=1`` runs many more examples.
"""

from __future__ import annotations

import io
import json
import os
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schema_walk import NEW_FIELD, full_sample, newer_schemas
from strategies import valid_events

from ledger.errors import DecodeError
from ledger.model import events
from ledger.wire.codec import HEADER_SIZE, MAGIC, Codec, default_codec

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import avro.errors
    import avro.io
    import avro.schema

EXAMPLES = 4000 if os.environ.get("LEDGER_SLOW") == "1" else 150
STRICTER = ("is invalid: ", "trailing byte(s) after", "boolean byte")


def _apache(source: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # logical-type warnings of Apache's parser
        return avro.schema.parse(json.dumps(source))


@pytest.fixture(scope="module")
def codecs(tmp_path_factory) -> dict[str, Codec]:
    return {"v1 only": default_codec(), "v2 installed": Codec.load(newer_schemas(tmp_path_factory.mktemp("v2")))}


def _apache_body(event: dict) -> bytes:
    """``event`` written by Apache avro with the v1 schema of its type: an encoder independent of ours."""
    v1 = default_codec().versions(event["type"])[0]
    out = io.BytesIO()
    avro.io.DatumWriter(_apache(v1.source)).write({k: v for k, v in event.items() if k != "type"},
                                                  avro.io.BinaryEncoder(out))
    return out.getvalue()


def _apache_read(body: bytes, writer: dict, reader: dict):
    """(value, None) when Apache avro reads one datum and every byte; (None, why) otherwise."""
    stream = io.BytesIO(body)
    try:
        value = avro.io.DatumReader(_apache(writer), _apache(reader)).read(avro.io.BinaryDecoder(stream))
    except (avro.errors.AvroException, ValueError, TypeError, IndexError, OverflowError, EOFError, KeyError) as err:
        return None, f"{type(err).__name__}: {err}"
    return value, None if stream.tell() == len(body) else "trailing"


def _mutate(body: bytes, data) -> bytes:
    how = data.draw(st.sampled_from(["keep", "replace", "insert", "delete", "truncate", "several"]), label="how")
    out = bytearray(body)
    steps = data.draw(st.integers(2, 5), label="steps") if how == "several" else 1
    for _ in range(steps if how != "keep" else 0):
        kind = how if how != "several" else data.draw(st.sampled_from(["replace", "insert", "delete"]))
        if kind == "truncate":
            return bytes(out[:data.draw(st.integers(0, max(len(out) - 1, 0)), label="cut")])
        at = data.draw(st.integers(0, max(len(out) - 1, 0)), label="at")
        byte = data.draw(st.one_of(st.integers(0, 255), st.sampled_from([0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF])),
                         label="byte")
        if kind == "replace" and out:
            out[at] = byte
        elif kind == "insert":
            out.insert(at, byte)
        elif kind == "delete" and out:
            del out[at]
    return bytes(out)


def _paths(codec: Codec, event_type: str):
    """(name, decode, reader schema JSON for Apache) of every ledger decode path for a v1 record."""
    v1, newest = codec.versions(event_type)[0], codec.newest(event_type)
    return [("decode (newest reader)", codec.decode, newest.source),
            ("decode_as_written (ingest)", codec.decode_as_written, v1.source),
            ("decode_with_fastavro", codec.decode_with_fastavro, newest.source)]


ANY_V1_EVENT = st.sampled_from(events.EVENT_TYPES).flatmap(valid_events)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(event=ANY_V1_EVENT, data=st.data())
def test_every_decode_path_agrees_with_apache_avro_on_values(codecs, event, data):
    """Valid, mutated and truncated bodies of every schema: equal values where Apache avro reads one, a
    rejection where it rejects, and a rejection for a documented stricter reason otherwise (module doc)."""
    body = _mutate(_apache_body(event), data)
    event_type = event["type"]
    v1 = default_codec().versions(event_type)[0]
    raw = MAGIC + v1.fingerprint + body
    for label, codec in codecs.items():
        for name, decode, reader in _paths(codec, event_type):
            expected, why = _apache_read(body, v1.source, reader)
            try:
                got = decode(raw)
            except DecodeError as err:
                assert err.raw == raw
                if expected is not None or why == "trailing":
                    assert any(s in err.reason for s in STRICTER), (label, name, err.reason, expected)
                    if why == "trailing":
                        assert "trailing" in err.reason or "is invalid" in err.reason or "boolean" in err.reason
                continue
            assert why is None, (label, name, "ledger accepted what Apache avro rejects", why, got)
            assert {k: v for k, v in got.items() if k != "type"} == expected, (label, name)
            assert got["type"] == event_type


def test_an_unmutated_body_reads_the_same_everywhere(codecs):
    """The baseline of the property: each schema's valid event reads back equal in Apache avro and ours."""
    for event_type in events.EVENT_TYPES:
        event = full_sample(event_type, events.newest_schemas()[event_type])
        body = _apache_body(event)
        assert body == default_codec().encode(event)[HEADER_SIZE:]  # two encoders, one byte string
        raw = MAGIC + default_codec().versions(event_type)[0].fingerprint + body
        for codec in codecs.values():
            for name, decode, reader in _paths(codec, event_type):
                expected, why = _apache_read(body, default_codec().versions(event_type)[0].source, reader)
                assert why is None and {k: v for k, v in decode(raw).items() if k != "type"} == expected, name
                if reader["fields"][-1] == NEW_FIELD:
                    assert expected[NEW_FIELD["name"]] is None  # the v2 reader's default, in both
