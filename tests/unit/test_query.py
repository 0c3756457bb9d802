"""who-saw, disclosures and accesses on a ledger filled from the simulator, checked against its oracle."""

from __future__ import annotations

import inspect
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from fill import cached_ledger, filled, ingest_records, ledger, recorded_by, to_records, workload  # noqa: F401 (fixtures)
from hypothesis import given
from hypothesis import strategies as st

from ledger.audit import query
from ledger.dev.simulate.oracle import by_actor, disclosed_to, touching
from ledger.errors import ValidationError
from ledger.model.times import from_micros, from_millis, iso, parse_time, to_micros
from ledger.store import Ledger

UTC = timezone.utc


def ids(rows) -> list[str]:
    return [r["event_id"] for r in rows]


def multi_subject_event(workload, type_: str) -> dict:
    return next(e for e in workload.events if e["type"] == type_ and len(e["subject_ids"]) > 3)


def midnight_event(workload) -> dict:
    """An event exactly at midnight UTC on the first of a month (the clock snaps one there)."""
    return next(e for e in workload.events
                if e["occurred_at"].day == 1 and e["occurred_at"].month > 1 and e["occurred_at"].hour == 0
                and e["occurred_at"].minute == 0 and e["occurred_at"].second == 0
                and e["occurred_at"].microsecond == 0)


def test_every_record_became_an_entry(filled, workload):
    """The fill helper pushed every simulated event through the Ingestor as an indexed entry."""
    assert filled.counts["entry"] == len(workload.events)
    assert filled.counts["rejected"] == filled.counts["duplicate"] == 0


def test_who_saw_matches_the_oracle_for_busy_quiet_and_unknown_subjects(ledger, workload):
    """who_saw lists exactly the oracle's accesses, shares and disclosures, newest first, ties by event_id."""
    for subject in (workload.a_rich_subject(), "cust-000150", "cust-000077", "no-such-customer"):
        assert ids(query.who_saw(ledger, subject)) == ids(workload.touching(subject))


def test_who_saw_rows_carry_the_fields_an_auditor_needs(ledger, workload):
    """Each row has time, type, actor, purpose, basis, justification, recipient, labelled categories, source, event_id."""
    subject = workload.a_rich_subject()
    rows = list(query.who_saw(ledger, subject))
    assert {r["type"] for r in rows} == set(query.WHO_SAW_TYPES)
    for row in rows:
        for name in ("occurred_at", "type", "actor", "purpose", "legal_basis", "justification",
                     "data_categories", "source_service", "event_id", "labels", "recorded_at"):
            assert name in row
        assert set(row["actor"]) == {"id", "type", "role", "organization"}
        assert len(row["labels"]["data_categories"]) == len(row["data_categories"])
        assert row["occurred_at"].endswith("Z")
        if row["type"] != "DataAccessed":
            assert row["recipient"]["name"]


def test_a_multi_subject_event_shows_for_each_of_its_subjects(ledger, workload):
    """An event naming several customers appears once in each one's history."""
    for type_ in ("DataAccessed", "DataShared", "LegalDisclosure"):
        event = multi_subject_event(workload, type_)
        for subject in event["subject_ids"]:
            assert ids(query.who_saw(ledger, subject)).count(event["event_id"]) == 1


def test_time_window_is_inclusive_at_since_and_exclusive_at_until(ledger, workload):
    """An event exactly at the boundary is in [since, ...) and out of [..., until)."""
    event = midnight_event(workload)
    at = event["occurred_at"]
    subject = event["subject_ids"][0]
    since_rows = ids(query.who_saw(ledger, subject, since=at))
    until_rows = ids(query.who_saw(ledger, subject, until=at))
    if event["type"] in query.WHO_SAW_TYPES:
        assert event["event_id"] in since_rows and event["event_id"] not in until_rows
    assert since_rows == ids(touching(workload.events, subject, at, None))
    assert until_rows == ids(touching(workload.events, subject, None, at))
    # One microsecond later excludes it from `since`; the same instant written with an offset is equal.
    later = ids(query.who_saw(ledger, subject, since=at + timedelta(microseconds=1)))
    assert event["event_id"] not in later
    offset = at.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert ids(query.who_saw(ledger, subject, since=offset)) == since_rows


def test_exposures_at_month_boundaries_split_exactly(ledger, workload):
    """Consecutive month windows partition a subject's history without loss or overlap."""
    subject = workload.a_rich_subject()
    edges = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3, 4, 5)]
    parts = [ids(query.who_saw(ledger, subject, since=a, until=b)) for a, b in zip(edges, edges[1:])]
    assert sum(reversed(parts), []) == ids(workload.touching(subject))  # newest month first
    for (a, b), part in zip(zip(edges, edges[1:]), parts):
        assert part == ids(touching(workload.events, subject, a, b))


def test_who_saw_filters_by_type_actor_and_purpose(ledger, workload):
    """--type, --actor and --purpose (with dotted children) narrow the oracle's list the same way."""
    subject = workload.a_rich_subject()
    expected = workload.touching(subject)
    got = ids(query.who_saw(ledger, subject, types=["LegalDisclosure", "DataShared"]))
    assert got == ids(e for e in expected if e["type"] in ("LegalDisclosure", "DataShared"))
    actor = Counter(e["actor"]["id"] for e in expected).most_common(1)[0][0]
    assert ids(query.who_saw(ledger, subject, actor=actor)) == ids(e for e in expected if e["actor"]["id"] == actor)
    got = ids(query.who_saw(ledger, subject, purpose="essential"))
    assert got == ids(e for e in expected if e["purpose"].startswith("essential."))
    assert got and ids(query.who_saw(ledger, subject, purpose="essentia")) == []


def test_unknown_type_and_naive_time_are_refused_with_the_option_named(ledger):
    """A bad --type or a time without an offset raises ValidationError naming the option."""
    with pytest.raises(ValidationError, match="--type"):
        list(query.who_saw(ledger, "x", types=["ConsentChanged"]))
    with pytest.raises(ValidationError, match="--since.*offset"):
        list(query.who_saw(ledger, "x", since="2026-01-01T00:00:00"))


def test_disclosures_match_the_oracle_by_recipient_kind_and_window(ledger, workload):
    """disclosures lists the oracle's shares and legal disclosures, with a subject count per row."""
    assert ids(query.disclosures(ledger)) == ids(disclosed_to(workload.events))
    for recipient in ("rcpt-adreach", "auth-fbi"):
        assert ids(query.disclosures(ledger, recipient=recipient)) == ids(workload.disclosed_to(recipient))
    assert ids(query.disclosures(ledger, kind="REGULATOR")) == ids(workload.disclosed_to(recipient_kind="REGULATOR"))
    a, b = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    got = list(query.disclosures(ledger, kind="OTHER", since=a, until=b))
    assert ids(got) == ids(disclosed_to(workload.events, None, a, b, "OTHER"))
    assert all(r["subject_count"] == len(r["subject_ids"]) for r in got)


def test_disclosure_summary_counts_events_and_distinct_customers(ledger, workload):
    """The per-recipient summary counts events and distinct customers as the oracle's list implies."""
    summary = {g["recipient"]["id"]: g for g in query.summarize_disclosures(query.disclosures(ledger))}
    expected = disclosed_to(workload.events)
    for rid in {e["recipient"]["id"] for e in expected}:
        mine = [e for e in expected if e["recipient"]["id"] == rid]
        assert summary[rid]["events"] == len(mine)
        assert summary[rid]["subject_count"] == len({s for e in mine for s in e["subject_ids"]})
        assert summary[rid]["first"] == iso(min(e["occurred_at"] for e in mine))


def test_accesses_list_everything_an_actor_did_denied_and_break_glass_included(ledger, workload):
    """accesses matches the oracle for busy actors, and includes denied and break-glass attempts."""
    actors = Counter(e["actor"]["id"] for e in workload.events if e["type"] == "DataAccessed"
                     and e["outcome"] != "GRANTED")
    for actor, _ in actors.most_common(3):
        rows = list(query.accesses(ledger, actor))
        assert ids(rows) == ids(workload.by_actor(actor))
        assert {r["outcome"] for r in rows if r["type"] == "DataAccessed"} & {"DENIED", "BREAK_GLASS"}
    actor = actors.most_common(1)[0][0]
    a = datetime(2026, 2, 1, tzinfo=UTC)
    assert ids(query.accesses(ledger, actor, since=a, types=["DataAccessed"])) == ids(
        by_actor(workload.events, actor, a, None, ("DataAccessed",)))


def test_queries_are_generators(ledger):
    """Queries stream from a cursor instead of building lists."""
    assert inspect.isgenerator(query.who_saw(ledger, "cust-000001"))
    assert inspect.isgenerator(query.disclosures(ledger))
    assert inspect.isgenerator(query.accesses(ledger, "emp-1001"))


def test_as_of_answers_as_the_ledger_stood_at_a_recorded_time(ledger, workload, filled):
    """With --as-of T only entries recorded by T count: back-dated entries recorded later stay out."""
    backdated = [e for e in workload.events if filled.recorded[e["event_id"]] - e["occurred_at"].timestamp() * 1000 > 60_000]
    assert backdated, "the workload should hold back-dated entries"
    event = backdated[0]
    as_of_ms = filled.recorded[event["event_id"]] - 1
    seen = recorded_by(workload, filled, as_of_ms)
    as_of = from_millis(as_of_ms)
    subject = event["subject_ids"][0]
    got = ids(query.who_saw(ledger, subject, as_of=as_of))
    assert got == ids(touching(seen, subject))
    assert event["event_id"] not in got or event["type"] not in query.WHO_SAW_TYPES
    assert ids(query.disclosures(ledger, as_of=as_of)) == ids(disclosed_to(seen))


def test_a_replayed_ledger_gives_the_same_answers(ledger, workload):
    """A ledger that ingested the same records partition by partition (other seq order) answers identically."""
    replayed = cached_ledger(workload, ("query",), by_partition=True)
    with Ledger.open(replayed.path) as other:
        subject = workload.a_rich_subject()
        as_of = datetime(2026, 2, 15, tzinfo=UTC)
        assert list(query.who_saw(other, subject, as_of=as_of)) == list(query.who_saw(ledger, subject, as_of=as_of))
        assert list(query.disclosures(other)) == list(query.disclosures(ledger))


def test_duplicates_and_conflicts_never_show_twice(tmp_path, workload):
    """An event re-sent on its partition (duplicate) or on another one (conflict) is listed once."""
    from ledger.wire.codec import default_codec

    events = workload.events[:300]
    records = list(to_records(events, codec=default_codec()))
    target = next(r for r in records if r.topic == "ledger.access")
    last = {}
    for r in records:
        last[(r.topic, r.partition)] = max(last.get((r.topic, r.partition), -1), r.offset)
    other = (target.partition + 1) % 3
    again = [
        type(target)(target.topic, target.partition, last[(target.topic, target.partition)] + 1,
                     target.timestamp + 5, target.key, target.value, target.headers),
        type(target)(target.topic, other, last.get((target.topic, other), -1) + 1,
                     target.timestamp + 9, target.key, target.value, target.headers),
    ]
    path = tmp_path / "dups.db"
    counts = ingest_records(path, records + again)
    assert counts["duplicate"] == 1 and counts["conflict"] == 1
    event_id = default_codec().decode(target.value)["event_id"]
    event = next(e for e in events if e["event_id"] == event_id)
    with Ledger.open(path) as led:
        for subject in event["subject_ids"]:
            assert ids(query.who_saw(led, subject)).count(event["event_id"]) == 1
        assert ids(query.accesses(led, event["actor"]["id"])).count(event["event_id"]) == 1



@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                               timezone(timedelta(hours=-8))])))
def test_times_round_trip_through_text_and_integers(moment):
    """Any aware time survives ISO text, microseconds and (to the millisecond) the Kafka clock."""
    assert parse_time(iso(moment)) == moment == parse_time(moment.isoformat())
    assert from_micros(to_micros(moment)) == moment
    ms = to_micros(moment) // 1000
    assert query.iso_millis(ms) == iso(from_millis(ms))
