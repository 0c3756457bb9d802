"""The readable JSON form of an entry is byte for byte canonical_json(to_json(event)), however it is computed."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import ANY_EVENT, ANY_TYPED

from ledger.model import events
from ledger.store.index import entry_columns, micros, readable_json

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(event) -> str:
    return events.canonical_json(events.to_json(event))


@PROPERTY
@given(ANY_EVENT)
def test_json_column_is_canonical_json_of_to_json(obj):
    """For generated events of every type the JSON column is exactly canonical_json(to_json(event))."""
    event = events.validate(obj)
    cols = entry_columns(event)
    assert cols["json"] == reference(event) == readable_json(event)
    assert (cols["event_id"], cols["type"], cols["occurred_at"]) == (event["event_id"], event["type"],
                                                                     micros(event["occurred_at"]))


@PROPERTY
@given(ANY_TYPED)
def test_json_form_of_any_typed_record(record):
    """Records that only have the schema's types (empty strings, odd codes, upper-case UUIDs) give the same text."""
    assert readable_json(record) == reference(record)


TRICKY = ['"', "\\", "\n", "\x00", "\x1f", "é", "€", "😀", "\u2028", "a", "/"]
TRICKY_TEXT = st.text(alphabet=st.sampled_from(TRICKY), max_size=8)


@PROPERTY
@given(ANY_EVENT, TRICKY_TEXT, st.dictionaries(TRICKY_TEXT, TRICKY_TEXT, max_size=3))
def test_escaping_matches_the_json_module(obj, text, attributes):
    """Quotes, backslashes, control characters and non-ASCII text are escaped exactly as json.dumps escapes them."""
    event = events.validate(obj)
    event = {**event, "source_service": text, "attributes": attributes}
    if "subject_ids" in event:  # PolicyPublished has none
        event["subject_ids"] = [text, "x" + text]
    assert readable_json(event) == reference(event)


def _changed(event: dict, change) -> dict:
    event = copy.deepcopy(event)
    change(event)
    return event


SHAPES = [  # events not shaped as the newest schema says: the generic encoder must take over
    ("extra key", lambda e: e.update(extra=1)),
    ("missing key", lambda e: e.pop("trace_id")),
    ("extra key in a record", lambda e: e["actor"].update(colour="blue")),
    ("missing key in a record", lambda e: e["actor"].pop("role")),
    ("record as None", lambda e: e.update(actor=None)),
    ("tuple for a list", lambda e: e.update(subject_ids=("a", "b"))),
    ("int in a string field", lambda e: e.update(source_service=7)),
    ("None in a required field", lambda e: e.update(purpose=None)),
    ("bool for a long", lambda e: e.update(record_count=True)),
    ("float for a long", lambda e: e.update(record_count=1.5)),
    ("unknown enum symbol", lambda e: e.update(access_type="PEEK")),
    ("time in another zone", lambda e: e.update(occurred_at=e["occurred_at"].astimezone(timezone(timedelta(hours=5))))),
    ("string for a time", lambda e: e.update(occurred_at="2026-01-01T00:00:00Z")),
    ("attributes in a list", lambda e: e.update(attributes=[])),
    ("nested attributes", lambda e: e.update(attributes={"b": "2", "a": {"z": 1, "y": [None, 2.5]}})),
]


@pytest.mark.parametrize(("label", "change"), SHAPES, ids=[s[0] for s in SHAPES])
def test_events_of_another_shape_fall_back_to_the_generic_form(label, change):
    """An event that is not shaped as its schema says (an older version, a caller's dict) gets the same text."""
    event = _changed(events.validate({
        "type": "DataAccessed", "occurred_at": "2026-01-01T00:00:00Z", "source_service": "crm",
        "actor": {"id": "a", "type": "SYSTEM", "role": "r"}, "subject_ids": ["c1"], "trace_id": "t",
        "data_categories": ["user.name"], "purpose": "essential.billing", "access_type": "QUERY",
        "outcome": "DENIED", "record_count": 3}), change)
    assert readable_json(event) == reference(event)


def test_non_json_values_still_raise_type_error():
    """A value the JSON form cannot hold (bytes) raises TypeError as before, whichever path meets it."""
    event = events.validate({
        "type": "ConsentChanged", "occurred_at": "2026-01-01T00:00:00Z", "source_service": "web",
        "actor": {"id": "c1", "type": "SUBJECT"}, "subject_ids": ["c1"], "purpose": "marketing.email",
        "granted": True, "channel": "EMAIL", "scope": "FIRST_PARTY"})
    with pytest.raises(TypeError):
        readable_json({**event, "notice_version": b"v1"})
    with pytest.raises(TypeError):
        reference({**event, "notice_version": b"v1"})
    naive = {**event, "occurred_at": datetime(2026, 1, 1)}  # to_json reads a naive time as local time
    assert readable_json(naive) == reference(naive)


PRINTABLE_TRICKY = st.text(alphabet=st.sampled_from([t for t in TRICKY if t.isprintable() or t == "\u2028"]),
                           max_size=8)


@PROPERTY
@given(st.lists(ANY_EVENT, min_size=1, max_size=4), PRINTABLE_TRICKY, st.booleans())
def test_side_rows_expanded_in_sqlite_equal_the_python_derivation(tmp_path_factory, objs, text, bulk):
    """The store expands index rows inside SQLite; verify derives the same rows in Python: they must agree,
    for any text (quotes, escapes, non-ASCII, NUL), in a batch and in a bulk load, and each row is filed
    under its seq's bucket (the seqs straddle a bucket boundary)."""
    from ledger.store import AppendBatch, Ledger, iter_side_rows
    from ledger.store.index import SIDE_TABLE_NAMES, index_row, side_rows

    bucket_bits = 1  # buckets of two entries: a batch of up to four crosses one or two boundaries
    first = 3

    evs = [events.validate(o) for o in objs]
    tricky = {"subject_ids": ["x" + text, "y" + text]} if "subject_ids" in evs[0] else {}  # not PolicyPublished
    evs[0] = events.validate({**events.to_json(evs[0]), **tricky,
                              "actor": {**events.to_json(evs[0])["actor"], "id": "a" + text}})
    ledger = Ledger.open(tmp_path_factory.mktemp("sides") / "l.db", readonly=False, create=True,
                         bucket_bits=bucket_bits)
    try:
        if bulk:
            ledger.begin_bulk()
        with ledger.atomic() as conn:
            ledger._insert_rows(conn, AppendBatch(index=[index_row(seq, e, micros(e["occurred_at"]))
                                                         for seq, e in enumerate(evs, first)]))
        if bulk:
            ledger.finish_bulk()
        for table in SIDE_TABLE_NAMES:
            expected = sorted(((r[1], r[0]) + r[2:] + (seq >> bucket_bits,) for seq, e in enumerate(evs, first)
                               for r in side_rows(seq, e)[table]))
            stored = [(r[1], r[0]) + tuple(r[2:]) for r in iter_side_rows(ledger, table)]
            assert stored == expected, table
    finally:
        ledger.close()


@pytest.mark.parametrize("field", ["subject_ids", "actor", "recipient"])
@pytest.mark.parametrize("char", ["\x00", "\n", "\x7f"])
def test_identifiers_with_control_characters_are_refused(field, char):
    """Subject, actor and recipient ids key the indexes and fill report columns: no control characters."""
    from builders import make_event

    event = events.to_json(make_event(1, "DataShared"))
    if field == "subject_ids":
        event["subject_ids"] = ["cust-1", f"cust{char}2"]
        where = "subject_ids[1]"
    else:
        event[field] = {**event[field], "id": f"x{char}y"}
        where = f"{field}.id"
    with pytest.raises(events.ValidationError, match=rf"{re.escape(where)}: .*control character"):
        events.validate(event)
