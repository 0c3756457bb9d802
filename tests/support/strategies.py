"""Hypothesis strategies for events, derived from the newest schemas.

    ANY_EVENT             valid events of every type (what ``events.validate`` accepts unchanged)
    ANY_TYPED             records of the right Avro types whose values the rules may refuse or normalize
    valid_events(type)    valid events of one type; typed_events(type) the loose ones of one type
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

from ledger.model import events

CODES = st.from_regex(r"[a-z][a-z0-9_]{0,6}(\.[a-z][a-z0-9_]{0,6}){1,3}", fullmatch=True)
OFFSETS = st.timedeltas(min_value=timedelta(hours=-14), max_value=timedelta(hours=14)).map(
    lambda d: timezone(timedelta(minutes=d // timedelta(minutes=1))))
TIMES = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=OFFSETS)
# Identifiers: any text but control and format characters (Cc, Cf: the rules refuse them).
IDENTIFIERS = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf")), min_size=1, max_size=12)
ID_FIELDS = ("source_service", "correlation_id", "trace_id", "recorded_by", "reviewed_by", "policy_name")
SPECIAL = {  # fields whose rules Avro cannot express
    "subject_ids": st.lists(IDENTIFIERS, min_size=1, max_size=6, unique=True),
    "id": IDENTIFIERS,
    "data_categories": st.lists(CODES, min_size=1, max_size=4, unique=True),
    "requested_categories": st.lists(CODES, min_size=1, max_size=4, unique=True),
    "purpose": CODES,
    "country": st.sampled_from(["DE", "US", "FR", "IN", "BR"]),
    "document_sha256": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    "record_count": st.integers(min_value=0, max_value=2**63 - 1),
    **{name: IDENTIFIERS for name in ID_FIELDS},
}


# Values of the right Avro type that the rules may refuse or normalize (the typed path's hard cases).
LOOSE = {
    "subject_ids": st.lists(st.sampled_from(["a", "b", "", "c", "d\x00"]), max_size=4),
    "id": st.sampled_from(["x", "x\ny", "x\u202ey", ""]),
    "data_categories": st.lists(st.sampled_from(["user.name", "User.Name", "user", ""]), max_size=3),
    "requested_categories": st.lists(st.sampled_from(["user.name", "user.x", "x"]), max_size=3),
    "purpose": st.sampled_from(["essential.billing", "Essential", ""]),
    "country": st.sampled_from(["de", "DE", "Germany", ""]),
    "document_sha256": st.sampled_from(["AB" * 32, "ab" * 32, "abc"]),
    "record_count": st.integers(min_value=-2, max_value=2),
    **{name: st.sampled_from(["x", "x\u200by", "x\x9by", ""]) for name in ID_FIELDS},
}
LOOSE_UUIDS = st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()),
                        st.sampled_from(["nope", "", "{0b7c0d1e-2f3a-4b5c-8d6e-7f8091a2b3c4}"]))


def _sometimes(valid, loose):
    """Mostly ``valid``, one time in eight ``loose``: a record then breaks one or two rules, not all."""
    return st.one_of(*[valid] * 7, loose)


def _strategy(t, named: dict, field: str = "", loose: bool = False):
    if isinstance(t, list):
        return st.one_of(st.none(), _strategy(next(b for b in t if b != "null"), named, field, loose))
    if field in SPECIAL:
        return _sometimes(SPECIAL[field], LOOSE[field]) if loose else SPECIAL[field]
    if isinstance(t, str):
        text = st.text(min_size=1, max_size=20)
        simple = {"string": _sometimes(text, st.just("")) if loose else text, "boolean": st.booleans(),
                  "long": st.integers(min_value=-2**63, max_value=2**63 - 1)}
        return simple[t] if t in simple else named[t if "." in t else f"ledger.events.{t}"]
    if t.get("logicalType") == "uuid":
        return _sometimes(st.uuids().map(str), LOOSE_UUIDS) if loose else st.uuids().map(str)
    if t.get("logicalType") == "timestamp-micros":
        return TIMES
    if t["type"] == "enum":
        strategy = named[f"ledger.events.{t['name']}"] = st.sampled_from(t["symbols"])
        return strategy
    if t["type"] == "array":
        return st.lists(_strategy(t["items"], named, "", loose), min_size=1, max_size=3)
    if t["type"] == "map":
        return st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)
    if t["type"] == "record":
        fields = {f["name"]: _strategy(f["type"], named, f["name"], loose) for f in t["fields"]}
        strategy = st.fixed_dictionaries(fields)
        strategy = _sometimes(strategy.map(_repair), strategy) if loose else strategy.map(_repair)
        named[f"ledger.events.{t['name']}"] = strategy
        return strategy
    return _strategy(t["type"], named, field, loose)


def _repair(record: dict) -> dict:
    """Apply the notification rules to a generated record that has a status."""
    if "policy_toml" in record:  # PolicyPublished: the digest is the text's (event_rules)
        record["policy_sha256"] = hashlib.sha256(record["policy_toml"].encode("utf-8")).hexdigest()
    if "status" in record and "order_ref" in record:
        if record["status"] == "DELAYED_BY_ORDER" and record["order_ref"] is None:
            record["order_ref"] = "ORD-1"
        if record["status"] not in events.DELAYED:
            record["delay_until"] = None
    return record


def valid_events(event_type: str):
    schema = events.default_validator().schemas[event_type]
    return _strategy(schema, {}).map(lambda obj: {"type": event_type, **obj})


def typed_events(event_type: str):
    """Records of the newest schema's Avro types whose values the rules may refuse or normalize."""
    schema = events.default_validator().schemas[event_type]
    return _strategy(schema, {}, loose=True).map(lambda obj: {"type": event_type, **obj})


ANY_EVENT = st.sampled_from(events.EVENT_TYPES).flatmap(valid_events)
ANY_TYPED = st.sampled_from(events.EVENT_TYPES).flatmap(typed_events)
