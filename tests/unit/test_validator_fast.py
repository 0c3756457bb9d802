"""The generated fast validator (ledger.model.validator_fast) against the reference closures it stands in for."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples import sample
from strategies import ANY_EVENT, ANY_TYPED

from ledger.dev.simulate import simulate
from ledger.errors import ValidationError
from ledger.model import events
from ledger.model.validator import Validator

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMAS = events.default_validator().schemas
FAST = Validator(SCHEMAS)
REFERENCE = Validator(SCHEMAS, fast=False)


class Text(str):
    """A str subclass: the reference refuses it ("expected a string"), so must the fast path."""


def outcome(validator: Validator, obj):
    """What ``validate`` did, comparable: the result's repr (types and time zones count) or the error's text."""
    try:
        out = validator.validate(obj)
    except ValidationError as err:
        return "error", err.field, err.reason, err.event_type
    if (obj.get("event_id") if isinstance(obj, Mapping) else None) is None:
        out = {**out, "event_id": "<assigned>"}  # a new random id each time
    return "ok", repr(out), [type(v).__name__ for v in out.values()]


def same(obj) -> None:
    assert outcome(FAST, obj) == outcome(REFERENCE, obj)


# Values that take every branch of a generated field test: the fast case, the reference's conversions,
# and what the reference refuses.
ODD_VALUES = [
    None, "", "x", "ü-ß", "line\nbreak", "a\u200bb", "\ud800", Text("cust-1"), 0, -1, 2**63, True, 1.5, b"x",
    [], ["a", "a"], ["a", ""], ["a", 1], [Text("a")], ("a",), {}, {"k": "v"}, {"k": 1}, {1: "v"},
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), datetime(2026, 1, 2, 3, 4, 5),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T03:04:05+01:00",
    uuid.UUID("0b7c0d1e-2f3a-4b5c-8d6e-7f8091a2b3c4"), "0B7C0D1E-2F3A-4B5C-8D6E-7F8091A2B3C4",
    "EMPLOYEE", "GRANTED", "user.contact.email", "DE",
]
_MISSING = object()


def _mutated(obj: dict, path: tuple, value) -> dict:
    out = dict(obj)
    if len(path) == 1:
        if value is _MISSING:
            out.pop(path[0], None)
        else:
            out[path[0]] = value
        return out
    inner = out.get(path[0])
    if isinstance(inner, dict):
        out[path[0]] = _mutated(inner, path[1:], value)
    return out


def _paths(obj: dict, prefix: tuple = ()) -> list[tuple]:
    paths = []
    for key, value in obj.items():
        if key == "type" and not prefix:
            continue
        paths.append((*prefix, key))
        if isinstance(value, dict) and key != "attributes":
            paths.extend(_paths(value, (*prefix, key)))
    return paths


@PROPERTY
@given(ANY_EVENT)
def test_valid_events_come_out_as_the_reference_returns_them(obj):
    """Every valid event, with times in any offset: the same normalized dict (keys, order, types)."""
    same(obj)


@PROPERTY
@given(ANY_TYPED)
def test_loose_events_are_accepted_or_refused_as_the_reference_does(obj):
    """Values of the right type that break a rule: the same error (field and reason) or the same result."""
    same(obj)


@PROPERTY
@given(st.sampled_from(events.EVENT_TYPES).map(sample), st.data())
def test_any_field_set_to_an_odd_value_gives_the_reference_outcome(obj, data):
    """A field (nested too) removed, set to None or to any odd value: the same error or result as the reference."""
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(obj)))
        value = data.draw(st.sampled_from([_MISSING, *ODD_VALUES]))
        obj = _mutated(obj, path, value)
    same(obj)


@pytest.mark.parametrize("event_type", events.EVENT_TYPES)
def test_unknown_fields_and_non_dict_inputs_go_to_the_reference(event_type):
    """An unknown field (top level or nested), a Mapping that is not a dict: the reference's error or result."""
    obj = sample(event_type)
    same({**obj, "extra": 1})
    same({**obj, "actor": {**obj["actor"], "extra": 1}} if "actor" in obj else obj)
    from types import MappingProxyType

    same(MappingProxyType(obj))
    same({**obj, "actor": MappingProxyType(obj["actor"])} if "actor" in obj else obj)


def test_simulated_events_never_leave_the_fast_path():
    """The ordinary inputs take no whole-event reference call (the fast path is what runs, or it would not pay):
    the simulated mix, and the minimal samples (optional fields and event_id left out, times as ISO text)."""
    calls = []
    validator = Validator(SCHEMAS)
    for check in validator._checks.values():
        reference = check.__globals__["_ref"]
        check.__globals__["_ref"] = lambda obj, reference=reference: calls.append(obj) or reference(obj)
    for event in simulate(seed=3, events=2_000, subjects=200).events:
        assert validator.validate(event) == REFERENCE.validate(event)
    for event_type in events.EVENT_TYPES:
        validator.validate(sample(event_type))
    assert calls == []


def test_missing_event_id_is_assigned_and_a_given_one_kept():
    """The fast path fills a missing or null event_id with a new UUIDv4 and never rewrites a given one."""
    obj = events.validate(sample("DataAccessed"))
    given_id = obj["event_id"]
    assert FAST.validate(obj)["event_id"] == given_id
    first = FAST.validate({k: v for k, v in obj.items() if k != "event_id"})["event_id"]
    second = FAST.validate({**obj, "event_id": None})["event_id"]
    assert len({first, second, given_id}) == 3
    assert uuid.UUID(first).version == 4 and str(uuid.UUID(first)) == first


def test_the_result_is_a_new_dict_with_new_lists():
    """Like the reference: changing the input's lists after validation changes nothing in the result."""
    obj = events.validate(sample("DataAccessed"))
    out = FAST.validate(obj)
    obj["subject_ids"].append("cust-9")
    obj["actor"]["id"] = "someone-else"
    assert out["subject_ids"] == ["cust-2", "cust-1"] and out["actor"]["id"] == "emp-7"
