"""Validation and normalization of event dicts (ledger.events, ledger.validator) and the taxonomy labels."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples import ACTOR, EVENT_ID, sample
from strategies import ANY_EVENT, ANY_TYPED

from ledger.errors import ValidationError
from ledger.model import events, taxonomy

UTC = timezone.utc
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("event_type", events.EVENT_TYPES)
def test_every_field_present_after_validation(event_type):
    """A valid input comes back with "type" first and every schema field, nullable ones None."""
    out = events.validate(sample(event_type))
    names = [f["name"] for f in events.default_validator().schemas[event_type]["fields"]]
    assert list(out) == ["type", *names]
    assert out["type"] == event_type and out["attributes"] == {} and out["trace_id"] is None
    assert out["actor"] == {**ACTOR, "organization": None}
    uuid.UUID(out["event_id"])


def test_validate_returns_a_new_dict_and_leaves_input_alone():
    """Normalization never mutates the caller's mapping."""
    obj = sample("DataShared")
    before = json.dumps(obj, sort_keys=True)
    out = events.validate(obj)
    assert out is not obj and out["recipient"] is not obj["recipient"]
    assert json.dumps(obj, sort_keys=True) == before


def test_event_id_is_filled_and_never_rewritten():
    """A missing or null event_id gets a fresh UUIDv4; a given one must already be canonical (issue 11, defect 2:
    it used to be rewritten from ``{UPPER}`` to lowercase, now it is refused naming the field)."""
    a = events.validate(sample("DataAccessed"))["event_id"]
    b = events.validate({**sample("DataAccessed"), "event_id": None})["event_id"]
    assert a != b and uuid.UUID(a).version == 4 and uuid.UUID(b).variant == uuid.RFC_4122
    assert events.validate({**sample("DataAccessed"), "event_id": EVENT_ID})["event_id"] == EVENT_ID
    assert events.validate({**sample("DataAccessed"), "event_id": uuid.UUID(EVENT_ID)})["event_id"] == EVENT_ID
    for spelling in ("{" + EVENT_ID + "}", EVENT_ID.upper()):
        with pytest.raises(events.ValidationError, match="canonical UUID") as info:
            events.validate({**sample("DataAccessed"), "event_id": spelling})
        assert info.value.field == "event_id"


def test_times_are_normalized_to_aware_utc():
    """ISO strings with Z or an offset and aware datetimes all become UTC datetimes."""
    plus_one = timezone(timedelta(hours=1))
    out = events.validate({**sample("LegalDisclosure"),
                           "occurred_at": datetime(2026, 1, 2, 4, 4, 5, 123456, tzinfo=plus_one)})
    assert out["occurred_at"] == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert out["occurred_at"].tzinfo is UTC
    assert out["request"]["received_at"] == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    assert out["notification"]["due_by"].tzinfo is UTC


def test_country_and_digest_in_another_case_are_refused_not_rewritten():
    """Recipient country must be upper case and document_sha256 lower case; other spellings are refused naming
    the field (issue 11, defect 2: they used to be silently upper-/lower-cased)."""
    obj = sample("LegalDisclosure")
    obj["request"]["document_sha256"] = "ab" * 32
    obj["recipient"]["country"] = "US"
    out = events.validate(obj)
    assert out["request"]["document_sha256"] == "ab" * 32 and out["recipient"]["country"] == "US"
    for field, path, value in (("request", "document_sha256", "AB" * 32), ("recipient", "country", "us")):
        bad = sample("LegalDisclosure")
        bad[field][path] = value
        with pytest.raises(events.ValidationError) as info:
            events.validate(bad)
        assert info.value.field == f"{field}.{path}" and repr(value) in info.value.reason


def test_a_thousand_subjects_are_accepted():
    """The bulk limit is inclusive: exactly 1,000 distinct subject ids validate."""
    ids = [f"cust-{i}" for i in range(1000)]
    assert events.validate({**sample("DataAccessed"), "subject_ids": ids})["subject_ids"] == ids


def test_unknown_but_well_formed_codes_are_accepted():
    """Category and purpose codes are checked for shape, not membership in the taxonomy."""
    out = events.validate({**sample("DataAccessed"), "data_categories": ["user.pets.names"],
                           "purpose": "experimental.new_thing"})
    assert out["data_categories"] == ["user.pets.names"]


def test_delay_statuses_accept_an_indefinite_delay():
    """A DELAYED status with delay_until null means an indefinite delay and is valid."""
    obj = sample("LegalDisclosure")
    obj["notification"] = {"status": "DELAYED_FRAUD_INVESTIGATION", "reason": "fraud case 12"}
    assert events.validate(obj)["notification"]["delay_until"] is None


def _set(obj: dict, path: str, value) -> dict:
    """Set (or with value ``...`` delete) a dotted path in a copy of ``obj``."""
    obj = json.loads(json.dumps(obj))
    *parents, last = path.split(".")
    target = obj
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return obj


BAD = [
    # (event type, path to change, new value (... = delete), expected field, words in the reason)
    ("DataAccessed", "source_service", ..., "source_service", "required"),
    ("DataAccessed", "source_service", None, "source_service", "null"),
    ("DataAccessed", "source_service", "", "source_service", "empty"),
    ("DataAccessed", "source_service", 42, "source_service", "string"),
    ("DataAccessed", "event_id", "not-a-uuid", "event_id", "UUID"),
    ("DataAccessed", "event_id", 7, "event_id", "UUID"),
    ("DataAccessed", "occurred_at", "2026-01-02T03:04:05", "occurred_at", "UTC offset"),
    ("DataAccessed", "occurred_at", "yesterday", "occurred_at", "ISO-8601"),
    ("DataAccessed", "occurred_at", 1767323045, "occurred_at", "timestamp"),
    ("DataAccessed", "occurred_at", "0001-01-01T00:00:00+01:00", "occurred_at", "range"),
    ("DataAccessed", "actor", "emp-7", "actor", "object"),
    ("DataAccessed", "actor.type", "BOSS", "actor.type", "EMPLOYEE, SERVICE"),
    ("DataAccessed", "actor.id", ..., "actor.id", "required"),
    ("DataAccessed", "actor.colour", "blue", "actor.colour", "unknown"),
    ("DataAccessed", "actor.role", 5, "actor.role", "string"),
    ("DataAccessed", "subject_ids", [], "subject_ids", "1 to 1000"),
    ("DataAccessed", "subject_ids", [f"c{i}" for i in range(1001)], "subject_ids", "correlation_id"),
    ("DataAccessed", "subject_ids", ["a", "b", "c", "a"], "subject_ids[3]", "duplicate"),
    ("DataAccessed", "subject_ids", ["a", ""], "subject_ids[1]", "empty"),
    ("DataAccessed", "subject_ids", ["a", 3], "subject_ids[1]", "string"),
    ("DataAccessed", "subject_ids", "cust-1", "subject_ids", "list"),
    ("DataAccessed", "attributes", {"k": 1}, 'attributes["k"]', "string"),
    ("DataAccessed", "attributes", ["k"], "attributes", "object"),
    ("DataAccessed", "data_categories", [], "data_categories", "at least one"),
    ("DataAccessed", "data_categories", ["User.Email"], "data_categories[0]", "dotted"),
    ("DataAccessed", "data_categories", ["user"], "data_categories[0]", "dotted"),
    ("DataAccessed", "data_categories", ["user.name", "user.name"], "data_categories", "duplicate"),
    ("DataAccessed", "purpose", "support", "purpose", "dotted"),
    ("DataAccessed", "legal_basis", "BECAUSE", "legal_basis", "CONSENT, CONTRACT"),
    ("DataAccessed", "justification", {"ticket": "T-1"}, "justification.reason_code", "required"),
    ("DataAccessed", "access_type", "PEEK", "access_type", "VIEW, QUERY, EXPORT, MODIFY, DELETE"),
    ("DataAccessed", "outcome", None, "outcome", "null"),
    ("DataAccessed", "record_count", -1, "record_count", "negative"),
    ("DataAccessed", "record_count", "12", "record_count", "integer"),
    ("DataAccessed", "record_count", True, "record_count", "integer"),
    ("DataAccessed", "record_count", 2**63, "record_count", "integer"),
    ("DataAccessed", "mood", "happy", "mood", "unknown"),
    ("DataShared", "recipient.kind", "FRIEND", "recipient.kind", "PROCESSOR"),
    ("DataShared", "recipient.country", "Germany", "recipient.country", "ISO 3166"),
    ("DataShared", "consent_ref", "abc", "consent_ref", "UUID"),
    ("DataShared", "retention_until", "2027-01-01", "retention_until", "UTC offset"),
    ("LegalDisclosure", "request.received_at", "2026-01-01T09:00:00", "request.received_at", "UTC offset"),
    ("LegalDisclosure", "request.kind", "LETTER", "request.kind", "SUBPOENA"),
    ("LegalDisclosure", "request.document_sha256", "abc", "request.document_sha256", "64"),
    ("LegalDisclosure", "reviewed_by", ..., "reviewed_by", "required"),
    ("LegalDisclosure", "requested_categories", [], "requested_categories", "at least one"),
    ("LegalDisclosure", "notification.status", "DELAYED_BY_ORDER", "notification.order_ref", "DELAYED_BY_ORDER"),
    ("LegalDisclosure", "notification.delay_until", "2026-06-01T00:00:00Z", "notification.delay_until", "DELAYED"),
    ("LegalDisclosure", "notification.status", "LATER", "notification.status", "PENDING, NOTIFIED"),
    ("NotificationStatusChanged", "order_ref", None, "order_ref", "DELAYED_BY_ORDER"),
    ("NotificationStatusChanged", "disclosure_event_id", ..., "disclosure_event_id", "required"),
    ("NotificationStatusChanged", "reason", None, "reason", "null"),
    ("SubjectNotified", "notified_at", "2026-03-01 00:00", "notified_at", "UTC offset"),
    ("SubjectNotified", "channel", ..., "channel", "required"),
    ("ConsentChanged", "granted", "yes", "granted", "boolean"),
    ("ConsentChanged", "granted", 1, "granted", "boolean"),
    ("ConsentChanged", "channel", "SMS", "channel", "MAIL, PHONE, EMAIL, ONLINE, ANY"),
    ("ConsentChanged", "scope", "WORLD", "scope", "FIRST_PARTY, PARTNERS"),
    ("ConsentChanged", "data_categories", ["user.name"], "data_categories", "unknown"),
]


@pytest.mark.parametrize(("event_type", "path", "value", "field", "words"), BAD,
                         ids=[f"{b[0]}:{b[1]}={str(b[2])[:20]}" for b in BAD])
def test_validation_error_names_the_field(event_type, path, value, field, words):
    """Each bad input raises ValidationError whose field is the dotted path and whose reason says why."""
    with pytest.raises(ValidationError) as info:
        events.validate(_set(sample(event_type), path, value))
    err = info.value
    assert (err.field, err.event_type) == (field, event_type)
    assert words in err.reason
    assert str(err).startswith(f"{event_type}.{field}: ")


def test_naive_datetime_is_refused():
    """A datetime without tzinfo is refused naming the field, never assumed to be UTC."""
    with pytest.raises(ValidationError) as info:
        events.validate({**sample("SubjectNotified"), "notified_at": datetime(2026, 3, 1)})
    assert info.value.field == "notified_at" and "UTC offset" in info.value.reason


@pytest.mark.parametrize(("obj", "reason"), [
    ({"occurred_at": "2026-01-01T00:00:00Z"}, "required"),
    ({"type": "DataLeaked"}, "not one of"),
    ({"type": 3}, "not one of"),
])
def test_type_is_required_and_known(obj, reason):
    """The "type" key must name one of the six event types."""
    with pytest.raises(ValidationError) as info:
        events.validate(obj)
    assert info.value.field == "type" and reason in info.value.reason


def test_non_mapping_is_refused():
    """Something that is not an object at all is refused clearly."""
    with pytest.raises(ValidationError, match="expected an object"):
        events.validate(["DataAccessed"])


def test_to_json_formats_times_and_round_trips_through_validate():
    """to_json writes microsecond UTC times with Z; validating the JSON form gives the same event."""
    event = events.validate(sample("LegalDisclosure"))
    doc = events.to_json(event)
    assert doc["occurred_at"] == "2026-01-02T03:04:05.123456Z"
    assert doc["request"]["received_at"] == "2026-01-01T08:00:00.000000Z"
    assert doc["type"] == "LegalDisclosure"
    assert events.validate(json.loads(json.dumps(doc))) == event


def test_derive_event_id_is_stable_and_content_based():
    """The derived id ignores event_id and spelling differences but changes with the content."""
    obj = sample("DataAccessed")
    first = events.derive_event_id(obj)
    assert uuid.UUID(first).version == 5
    assert events.derive_event_id({**obj, "event_id": EVENT_ID}) == first
    assert events.derive_event_id({**obj, "occurred_at": "2026-01-02T04:04:05.123456+01:00"}) == first
    assert events.derive_event_id({**obj, "trace_id": None}) == first
    assert events.derive_event_id({**obj, "subject_ids": ["cust-3"]}) != first


def test_event_key_is_the_smallest_subject():
    """The Kafka key is min(subject_ids) in UTF-8."""
    event = events.validate({**sample("DataAccessed"), "subject_ids": ["zoë", "b", "ä"]})
    assert events.event_key(event) == b"b"


def test_taxonomy_labels_and_fallback():
    """Known codes have labels; a well-formed unknown code is its own label."""
    for code in ("user.contact.email", "user.financial.payment_card", "user.communications.content",
                 "user.usage.call_records", "user.device.identifiers"):
        assert taxonomy.category_label(code) != code
    for code in ("essential.service.support", "essential.billing", "security.fraud_prevention",
                 "marketing.advertising", "legal.obligation"):
        assert taxonomy.purpose_label(code) != code
    assert taxonomy.category_label("user.pets.names") == "user.pets.names"
    assert taxonomy.purpose_label("x.y") == "x.y"
    assert all(taxonomy.is_code(c) for c in [*taxonomy.DATA_CATEGORIES, *taxonomy.PURPOSES])
    assert len(taxonomy.DATA_CATEGORIES) >= 20


# --- the typed path (values the Avro reader produced) --------------------------------


@PROPERTY
@given(ANY_TYPED)
def test_typed_check_passes_only_what_validate_returns_unchanged(record):
    """typed_check(r) is True only if validate(r) == r; a record validate refuses never passes it."""
    check = events.default_validator().typed_check(record["type"])
    try:
        normalized = events.validate(record)
    except ValidationError:
        assert not check(record)
        return
    if check(record):
        assert normalized == record


@PROPERTY
@given(ANY_EVENT)
def test_typed_check_passes_every_valid_event(obj):
    """A validated event passes typed_check, so decoding a valid record never runs the full validator."""
    event = events.validate(obj)
    assert events.default_validator().typed_check(event["type"])(event)


def test_known_codes_cache_is_bounded_and_exact(monkeypatch):
    """Codes are remembered only after matching the pattern, and only up to the bound."""
    from ledger.model import event_rules

    monkeypatch.setattr(event_rules, "_KNOWN_CODES", set())
    monkeypatch.setattr(event_rules, "_MAX_KNOWN_CODES", 3)
    for code in ("a.b", "a.c", "a.d", "a.e"):
        assert events.validate({**sample("DataAccessed"), "data_categories": [code]})["data_categories"] == [code]
    for _ in range(2):
        with pytest.raises(ValidationError, match="dotted"):
            events.validate({**sample("DataAccessed"), "data_categories": ["a.b", "Bad.Code"]})
    assert len(event_rules._KNOWN_CODES) == 3 and "a.e" not in event_rules._KNOWN_CODES
    assert all(taxonomy.CODE_PATTERN.fullmatch(code) for code in event_rules._KNOWN_CODES)


OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@PROPERTY
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS | st.just(UTC)))
def test_time_text_is_the_json_form_of_a_time(when):
    """time_text gives the text to_json always gave: UTC, six fractional digits, Z."""
    expected = when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    assert events.time_text(when) == expected == events.to_json({"t": when})["t"]
    assert events.time_text(when.astimezone(UTC)) == expected


@pytest.mark.parametrize("field, value, where", [
    ("source_service", "svc\ud800", "source_service"),
    ("subject_ids", ["cust-1", "\udc00"], "subject_ids[1]"),
    ("attributes", {"k": "v\ud800"}, 'attributes["k"]'),
    ("attributes", {"k\ud800": "v"}, 'attributes["k\\ud800"]'),
])
def test_unpaired_surrogates_are_refused_naming_the_field(field, value, where):
    """Avro strings are UTF-8, which cannot hold an unpaired surrogate: validation says where, before encoding."""
    from builders import make_event

    event = {**events.to_json(make_event(1, "DataShared")), field: value}
    with pytest.raises(events.ValidationError, match="unpaired surrogate") as caught:
        events.validate(event)
    assert caught.value.field.endswith(where)


def test_assigned_event_ids_are_version_4_uuids_unique_across_threads_and_a_forked_child():
    """Ids come from os.urandom in batches per thread: no repeats between threads, nor between a forked
    child and its parent (the child forgets the parent's unused bytes)."""
    import os
    import threading
    import uuid

    from ledger.model.validator import _new_event_id

    _new_event_id()  # this thread now holds unused random bytes
    seen: list[str] = []

    def take():
        seen.extend(_new_event_id() for _ in range(500))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = seen + [_new_event_id() for _ in range(500)]
    assert len(set(ids)) == len(ids) == 2500
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, _new_event_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    assert child != _new_event_id()
