"""Out-of-range enum and union indexes are refused by every decode path, naming the field (issue 11, defect 1).

fastavro picks a symbol or a union branch by indexing a Python list, so a
garbled index of -1 used to decode as the *last* symbol (a DataAccessed
``outcome`` became BREAK_GLASS) once a second schema version made the codec
read older records through fastavro's resolving reader. Every path — the
compiled reader, the resolving reader, the writer's-own-schema reader used by
ingest, and the fastavro reference path of the tests — must refuse it.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schema_walk import Site, encode_with_index, every_site, full_sample, newer_schemas

from ledger.errors import DecodeError
from ledger.ingest.pipeline import Ingestor
from ledger.model import events
from ledger.store import Ledger, iter_entries
from ledger.wire.codec import MAGIC, Codec, default_codec
from ledger.wire.record import Record

SCHEMAS = events.newest_schemas()
SITES = every_site()


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory) -> Codec:
    """A codec in which every event type has a v2, so v1 records go through schema resolution."""
    return Codec.load(newer_schemas(tmp_path_factory.mktemp("v2")))


def _paths(codec: Codec):
    return {"compiled/newest": codec.decode, "as written (ingest)": codec.decode_as_written,
            "fastavro reference": codec.decode_with_fastavro}


def _out_of_range(size: int):
    return st.one_of(st.integers(-2**40, -1), st.integers(size, 2**40), st.sampled_from([-1, -2, size, size + 1]))


def _v1_bytes(event_type: str, site: Site | None, index: int = 0) -> bytes:
    v1 = default_codec().versions(event_type)[0]
    event = full_sample(event_type, SCHEMAS[event_type])
    return MAGIC + v1.fingerprint + encode_with_index(v1.source, event, site, index)


def test_every_site_is_written_by_the_full_samples():
    """The property below covers every enum and union of every schema: the sample sets every optional field."""
    assert {s.kind for _, s in SITES} == {"enum", "union"} and len(SITES) > 60
    for event_type in events.EVENT_TYPES:
        data = _v1_bytes(event_type, None)
        assert default_codec().decode(data) == full_sample(event_type, SCHEMAS[event_type])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(site=st.sampled_from(SITES), data=st.data())
def test_an_out_of_range_index_is_refused_by_every_decode_path(upgraded, site, data):
    """Any index outside the symbols or branches (negative included) is a DecodeError naming the field, with
    only v1 installed and with a v2 installed (where v1 records are read through fastavro's resolution)."""
    event_type, where = site
    index = data.draw(_out_of_range(where.size), label="index")
    raw = _v1_bytes(event_type, where, index)
    for label, codec in (("v1 only", default_codec()), ("v2 installed", upgraded)):
        for name, decode in _paths(codec).items():
            with pytest.raises(DecodeError) as info:
                decode(raw)
            reason = info.value.reason
            assert f"{where.path}: {where.kind}" in reason and f"index {index} " in reason, (label, name, reason)
            assert "out of range" in reason and info.value.raw == raw


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(site=st.sampled_from([s for s in SITES if s[1].kind == "enum"]), data=st.data())
def test_every_in_range_enum_index_still_decodes_to_its_symbol(upgraded, site, data):
    """The guard refuses only what is out of range: each symbol's index reads back as that symbol everywhere."""
    event_type, where = site
    index = data.draw(st.integers(0, where.size - 1), label="index")
    raw = _v1_bytes(event_type, where, index)
    try:
        expected = default_codec().decode(raw)
    except DecodeError as err:  # a symbol a rule forbids here (e.g. a status without its order): refused alike
        for codec in (default_codec(), upgraded):
            for decode in _paths(codec).values():
                with pytest.raises(DecodeError):
                    decode(raw)
        assert "out of range" not in err.reason
        return
    for codec in (default_codec(), upgraded):
        for name, decode in _paths(codec).items():
            got = decode(raw)
            got.pop("review_note", None)  # the v2 reader adds its new field
            assert got == expected, name


def test_the_issues_case_a_garbled_outcome_is_rejected_not_break_glass(tmp_path, upgraded):
    """The measured case: a v1 DataAccessed with outcome index -1, ingested with a v2 installed, is stored as
    ``rejected`` naming ``outcome`` (it used to be an entry with outcome BREAK_GLASS)."""
    raw = _v1_bytes("DataAccessed", Site("enum", "outcome", 3), -1)
    ledger = Ledger.open(tmp_path / "l.db", readonly=False, create=True)
    try:
        Ingestor(ledger, codec=upgraded).ingest(
            [Record("ledger.access", 0, 0, 1_772_323_200_000, b"k", raw, (("event_type", b"DataAccessed"),))])
        (entry,) = list(iter_entries(ledger))
        assert entry.status == "rejected" and entry.json is None
        assert "outcome: enum AccessOutcome index -1 " in entry.reason
    finally:
        ledger.close()
