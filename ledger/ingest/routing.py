"""Routing checks: is a decoded record on the topic, with the header and the key, its event type demands?

    problem = routing_problem(record, event)   # None, or "routing: DataAccessed on topic ..."

Routing is part of the contract producers follow (docs/architecture.md,
"Topics"): an event of type T goes to ``{prefix}`` + ``TOPIC_SUFFIX[T]``, its
``event_type`` header (when present) names T, and its key is
``min(subject_ids)`` in UTF-8 (``events.event_key``; validation guarantees at
least one subject). A decoded record that breaks any of these is kept as
``rejected`` with the returned reason and copied to the dead-letter topic, like
an undecodable one: misrouted records are never events. Ingest, ``ledger
reprocess`` and ``verify`` all call this one function.

The prefix is read off the record's own topic (the event-topic suffixes
``access``, ``sharing``, ``disclosure``, ``consent`` are not suffixes of one
another, so it is unambiguous), which keeps the check a pure function of the
stored record: verify needs no setting to re-derive it. A missing
``event_type`` header is accepted (the fingerprint names the type; the header
is a convenience for consumers without the schemas); a header that names
another type, is null or is not UTF-8 contradicts the schema.
"""

from __future__ import annotations

from ledger.kafka.topics import TOPIC_SUFFIX
from ledger.model.events import event_key
from ledger.wire.record import EVENT_TYPE_HEADER, Record, event_type_header

PREFIX = "routing: "
_SUFFIXES = tuple(dict.fromkeys(TOPIC_SUFFIX.values()))
_SHOWN = 80  # characters of a key or header value quoted in a reason


def expected_topic(topic: str, event_type: str) -> str | None:
    """The topic ``event_type`` belongs on under the prefix of ``topic``; None if ``topic`` is no event topic."""
    for suffix in _SUFFIXES:
        if topic.endswith(suffix):
            return topic[: len(topic) - len(suffix)] + TOPIC_SUFFIX[event_type]
    return None


def _quote(value: bytes | None) -> str:
    if value is None:
        return "<null>"
    text = value.decode("utf-8", "backslashreplace")
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def routing_problem(record: Record, event: dict) -> str | None:
    """What is wrong with where ``record`` (which decoded to ``event``) was produced, or None.

    Every failed check is named, in the order topic, header, key, e.g.
    ``routing: DataAccessed on topic ledger.consent (expected ledger.access);
    key 'x' (expected 'cust-1')``.
    """
    etype = event["type"]
    found = []
    want = expected_topic(record.topic, etype)
    if want != record.topic:
        expected = want if want is not None else f"a topic ending in {TOPIC_SUFFIX[etype]!r}"
        found.append(f"{etype} on topic {record.topic} (expected {expected})")
    for name, value in record.headers:
        if name == EVENT_TYPE_HEADER and value != event_type_header(etype)[1]:
            found.append(f"header {EVENT_TYPE_HEADER}={_quote(value)[1:-1] if value is not None else '<null>'} "
                         f"contradicts the schema {etype}")
            break
    key = event_key(event)
    if record.key != key:
        found.append(f"key {_quote(record.key)} (expected {_quote(key)})")
    return PREFIX + "; ".join(found) if found else None
