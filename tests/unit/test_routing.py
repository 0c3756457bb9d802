"""Routing checks (ledger/routing.py): topic, event_type header and key, as a pure function."""

from __future__ import annotations

import pytest
from builders import make_event, make_record
from hypothesis import given
from hypothesis import strategies as st

from ledger.ingest.routing import expected_topic, routing_problem
from ledger.kafka.topics import TOPIC_SUFFIX

TYPES = ["DataAccessed", "DataShared", "LegalDisclosure", "ConsentChanged", "SubjectNotified"]


@pytest.mark.parametrize("etype", TYPES)
def test_a_record_routed_as_the_producer_routes_it_passes(etype):
    """Topic of its type, its own event_type header and key min(subject_ids): no problem."""
    assert routing_problem(make_record(make_event(1, etype)), make_event(1, etype)) is None


def test_wrong_topic_is_named_with_the_expected_one():
    """A DataAccessed on the consent topic: the reason names the type, the topic and the right topic."""
    event = make_event(1)
    assert routing_problem(make_record(event, "ledger.consent"), event) == (
        "routing: DataAccessed on topic ledger.consent (expected ledger.access)")


def test_a_header_naming_another_type_contradicts_the_schema():
    """The event_type header must name the schema's type; a null or missing-value header counts as wrong."""
    event = make_event(1)
    record = make_record(event)
    wrong = type(record)(**{**{f: getattr(record, f) for f in record.__slots__},
                            "headers": (("trace", b"x"), ("event_type", b"ConsentChanged"))})
    assert routing_problem(wrong, event) == "routing: header event_type=ConsentChanged contradicts the schema DataAccessed"
    null = type(record)(**{**{f: getattr(record, f) for f in record.__slots__}, "headers": (("event_type", None),)})
    assert "header event_type=<null> contradicts" in routing_problem(null, event)


def test_a_missing_header_is_accepted():
    """The fingerprint names the type; a record without an event_type header is not misrouted."""
    event = make_event(1)
    record = make_record(event)
    bare = type(record)(**{**{f: getattr(record, f) for f in record.__slots__}, "headers": ()})
    assert routing_problem(bare, event) is None


@pytest.mark.parametrize("key,shown", [(b"x", "'x'"), (None, "<null>"), (b"cust-0002", "'cust-0002'"),
                                       (b"\xff", "'\\\\xff'")])
def test_a_key_other_than_the_smallest_subject_is_named(key, shown):
    """Key must be min(subject_ids) in UTF-8 (here cust-0001 of cust-0001, cust-0002)."""
    event = make_event(1)
    record = make_record(event)
    record = type(record)(**{**{f: getattr(record, f) for f in record.__slots__}, "key": key})
    assert routing_problem(record, event) == f"routing: key {shown} (expected 'cust-0001')"


def test_every_wrong_part_is_named_in_one_reason():
    """Topic, header and key all wrong (the issue's example): all three in that order."""
    event = make_event(1)
    record = make_record(event, "ledger.consent", key=b"arbitrary")
    record = type(record)(**{**{f: getattr(record, f) for f in record.__slots__},
                             "headers": (("event_type", b"ConsentChanged"),)})
    assert routing_problem(record, event) == (
        "routing: DataAccessed on topic ledger.consent (expected ledger.access); header event_type=ConsentChanged "
        "contradicts the schema DataAccessed; key 'arbitrary' (expected 'cust-0001')")


@given(st.text(alphabet="abcdefghij.-_", max_size=12), st.sampled_from(TYPES), st.sampled_from(TYPES))
def test_the_prefix_is_read_off_the_topic(prefix, on, etype):
    """Under any prefix, a type's topic is expected exactly where the producer sends it."""
    topic = prefix + TOPIC_SUFFIX[on]
    assert expected_topic(topic, etype) == prefix + TOPIC_SUFFIX[etype]


def test_a_topic_that_is_no_event_topic_is_named():
    event = make_event(1)
    assert routing_problem(make_record(event, "elsewhere"), event) == (
        "routing: DataAccessed on topic elsewhere (expected a topic ending in 'access')")
