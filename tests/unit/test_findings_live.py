"""The live findings judge (ledger.audit.findings.live), its state file and its wire format, without a broker.

A ledger is grown the way a writer grows it (batches from one partition after
another, so append order is not recorded order) and revealed to the judge
step by step; what it publishes, minus what it retracts, must equal the batch
``judge_ledger`` answer at the same instant, with the same finding ids. The
broker-side service (publishing, kill -9, restart) is in
tests/integration/test_findings_live_broker.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fill import ingest_records, to_records
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.audit.findings import current
from ledger.audit.findings.live import LiveJudge, finding_message, retraction_message
from ledger.audit.findings.recorded import judge_ledger
from ledger.cli import main
from ledger.dev.simulate import simulate
from ledger.errors import DecodeError, SchemaError, StoreError
from ledger.model import events as ev
from ledger.model.policy import load, loads, published_fields
from ledger.model.times import from_millis, time_text, to_millis
from ledger.store import Ledger
from ledger.store.findings_state import FindingsState
from ledger.wire.codec import default_codec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
TEXT = EXAMPLE.read_text(encoding="utf-8")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
_ids = itertools.count(1)


def published(text: str, at: datetime) -> dict:
    return ev.validate({"type": "PolicyPublished", "occurred_at": at,
                        **published_fields(loads(text, "t.toml"), text, {"id": "dpo-1", "type": "EMPLOYEE",
                                                                         "role": None})})


class Clock:
    """The judge's wall clock, moved by the test (idleness and rebuild spacing are measured on it)."""

    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def writer_order(records: list, rnd: random.Random) -> list:
    """The records as a writer appends them: runs of 1-60 from one partition at a time."""
    queues: dict = {}
    for r in records:
        queues.setdefault((r.topic, r.partition), []).append(r)
    order = []
    while queues:
        k = rnd.choice(sorted(queues))
        n = rnd.randint(1, 60)
        order += queues[k][:n]
        del queues[k][:n]
        if not queues[k]:
            del queues[k]
    return order


def grow(path: Path, events: list, *, seed: int = 0) -> int:
    """Write ``events`` into a new ledger in writer order; the number of entries appended."""
    records = writer_order(list(to_records(events, codec=default_codec())), random.Random(seed))
    ingest_records(path, records, batch=97)
    return len(records)


def follow(path: Path, at: datetime, *, step: int = 100, judge: LiveJudge | None = None, final: bool = True):
    """Reveal the ledger ``step`` entries at a time to a live judge (one second per poll); every message."""
    clock = Clock()
    judge = judge or LiveJudge(clock=clock, idle_after_s=2, rebuild_every_s=3, tick_s=5)
    judge.clock = clock
    messages = []
    with Ledger.open(path) as ledger:
        n = ledger.next_seq() - 1
        for upto in range(step, n + step, step):
            clock.t += 1
            s = judge.step(ledger, at, upto_seq=upto)
            messages += [("Finding", f) for f in s.findings] + [("FindingRetracted", w) for w in s.withdrawn]
            judge.accept(s)
        if final:
            clock.t += 1
            s = judge.step(ledger, at, final=True)
            messages += [("Finding", f) for f in s.findings] + [("FindingRetracted", w) for w in s.withdrawn]
            judge.accept(s)
    return judge, messages


def standing_ids(messages) -> set[str]:
    """What a consumer of the topic holds: findings de-duplicated by id, retractions applied in order."""
    ids: set[str] = set()
    for kind, m in messages:
        if kind == "Finding":
            ids.add(m.finding_id)
        else:
            ids.discard(m.finding.finding_id)
    return ids


def batch_ids(path: Path, at: datetime) -> set[str]:
    """The batch answer for the ledger as it stood at recorded time ``at`` (the live judge's contract:
    what stands at judged_at is `ledger findings --as-of judged_at`; an entry recorded after ``at``
    is not judged yet, however early it says it happened)."""
    with Ledger.open(path) as ledger:
        return {f.finding_id for f in current(judge_ledger(ledger, as_of=at, now=at).results)}


@pytest.fixture(scope="module")
def month():
    return simulate(seed=3, events=4000, subjects=150)


def _with_policies(month, second: bool):
    events = list(month.events)
    start = min(e["occurred_at"] for e in events)
    out = [published(TEXT, start - timedelta(days=1)), *events]
    if second:  # a second policy mid-month: honoured from its recorded time
        middle = len(out) // 2
        out.insert(middle, published(TEXT.replace('version = "', 'version = "2-', 1), out[middle - 1]["occurred_at"]))
    return out, max(e["occurred_at"] for e in events) + timedelta(days=30)


@pytest.mark.parametrize("seed, second", [(0, False), (1, True), (2, False)])
def test_the_live_answer_equals_the_batch_answer_and_the_oracle(tmp_path, month, seed, second):
    """Published minus retracted = batch findings at the same instant (same ids) = the simulator's oracle,
    however the writer interleaved the partitions, with a second policy taking over mid-month."""
    events, at = _with_policies(month, second)
    path = tmp_path / "l.db"
    grow(path, events, seed=seed)
    judge, messages = follow(path, at)
    live = standing_ids(messages)
    assert live == set(judge.published) == batch_ids(path, at)
    if not second:
        with Ledger.open(path) as ledger:
            run = judge_ledger(ledger, now=at)
        keys = {(f.rule, f.kind, f.event_ids[0], f.subjects) for f in current(run.results) if f.finding_id in live}
        assert keys == month.expected_findings(at)
    assert judge.rewinds >= 1, "the writer order must have made some entries late"
    assert judge.rebuilds == 1, "late entries are judged from a rewind point, not from the ledger's start"


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), events=st.integers(0, 1500), step=st.integers(1, 400),
       late_days=st.integers(-3, 60))
def test_the_live_answer_equals_the_batch_answer_for_any_workload(tmp_path_factory, seed, events, step, late_days):
    """For any workload, reveal step and judging instant the live answer is the batch answer."""
    w = simulate(seed=seed, events=events, subjects=60)
    start = min((e["occurred_at"] for e in w.events), default=T0)
    at = max((e["occurred_at"] for e in w.events), default=T0) + timedelta(days=late_days)
    at = max(at, start)  # before the policy's entry there is no batch answer to compare with
    path = tmp_path_factory.mktemp("live") / "l.db"
    grow(path, [published(TEXT, start - timedelta(days=1)), *w.events], seed=seed)
    _, messages = follow(path, at, step=step)
    assert standing_ids(messages) == batch_ids(path, at)


# -- hand-built --------------------------------------------------------------------------
def event(kind: str, at: datetime, **fields) -> dict:
    base = {"type": kind, "event_id": str(uuid.UUID(int=next(_ids), version=4)), "occurred_at": at,
            "source_service": "crm", "subject_ids": ["cust-1"],
            "actor": {"id": "emp-1012", "type": "EMPLOYEE", "role": "support_agent"}}
    return ev.validate({**base, **fields})


def email_share(at):
    recipient = {"id": "rcpt-northwind-retail", "name": "Northwind Retail GmbH", "kind": "AFFILIATE", "country": "DE"}
    return event("DataShared", at, actor={"id": "svc-marketing-sync", "type": "SERVICE", "role": "audience_sync"},
                 data_categories=["user.name", "user.contact.email"], purpose="marketing.communications.email",
                 recipient=recipient, agreement_ref="IGA-2022-NW", retention_until=at + timedelta(days=30))


def consent(at, granted=True):
    return event("ConsentChanged", at, actor={"id": "cust-1", "type": "SUBJECT", "role": "customer"},
                 purpose="marketing.communications.email", granted=granted, channel="EMAIL", scope="PARTNERS")


def test_a_consent_recorded_late_but_dated_before_the_share_retracts_the_published_finding(tmp_path):
    """The share is published broken; the consent recorded after it, dated before, retracts it naming the
    consent as the evidence that cleared it."""
    path = tmp_path / "l.db"
    share, late = email_share(T0), consent(T0 - timedelta(hours=1))
    records = list(to_records([published(TEXT, T0 - timedelta(days=1)), share, late], codec=default_codec()))
    records[2] = dataclasses.replace(records[2], timestamp=records[1].timestamp + 60_000)  # recorded a minute after the share
    ingest_records(path, records[:2])
    judge = LiveJudge(idle_after_s=0)
    with Ledger.open(path) as ledger:
        first = judge.step(ledger, T0 + timedelta(days=1))
        judge.accept(first)
        assert [f.rule for f in first.findings] == ["consent.marketing"]
        ingest_records(path, records[2:])
        second = judge.step(ledger, T0 + timedelta(days=1))
    assert second.findings == [] and len(second.withdrawn) == 1
    w = second.withdrawn[0]
    assert w.finding.finding_id == first.findings[0].finding_id and w.cleared_by == (late["event_id"],)
    message = retraction_message(w, second.judged_at)
    assert message["cleared_by"] == [late["event_id"]] and "cleared by a consent" in message["sentence"]


def test_a_deadline_that_passes_becomes_a_finding_on_a_tick_without_new_entries(tmp_path):
    """A break-glass access not reviewed within 24 h is no finding before its deadline and one after it,
    judged on the timer with nothing appended in between."""
    path = tmp_path / "l.db"
    glass = event("DataAccessed", T0, data_categories=["user.contact.email"], purpose="essential.service.security",
                  access_type="VIEW", outcome="BREAK_GLASS", correlation_id="inc-1",
                  justification={"reason_code": "incident", "ticket": "INC-1", "note": None})
    ingest_records(path, to_records([published(TEXT, T0 - timedelta(days=1)), glass], codec=default_codec()))
    clock = Clock()
    judge = LiveJudge(idle_after_s=0, tick_s=10, clock=clock)
    with Ledger.open(path) as ledger:
        before = judge.step(ledger, T0 + timedelta(hours=23))
        judge.accept(before)
        clock.t += 5  # within the tick: the time rules are not judged again
        assert judge.step(ledger, T0 + timedelta(hours=25)).findings == []
        clock.t += 10
        after = judge.step(ledger, T0 + timedelta(hours=25))
    assert before.fed == 2 and after.fed == 0
    assert [f.rule for f in before.findings if f.rule.startswith("access.break")] == []
    assert [f.rule for f in after.findings] == ["access.break_glass_review"]
    assert after.findings[0].event_ids == (glass["event_id"],)


def test_a_restart_publishes_only_what_the_state_lacks_with_the_same_ids(tmp_path, month):
    """A judge restarted with everything published publishes nothing; restarted from a state that missed
    some (a crash between flush and commit) it publishes exactly those again, with the same ids."""
    events, at = _with_policies(month, False)
    path = tmp_path / "l.db"
    grow(path, events)
    whole, _ = follow(path, at)
    assert whole.published
    again, messages = follow(path, at, judge=LiveJudge(), final=True)
    assert set(again.published) == set(whole.published)
    with Ledger.open(path) as ledger:
        n = ledger.next_seq() - 1
    restarted = LiveJudge()
    restarted.published = dict(whole.published)
    _, messages = follow(path, at, judge=restarted, step=n)
    assert messages == []
    lost = sorted(whole.published)[::3]
    partial = LiveJudge()
    partial.published = {k: v for k, v in whole.published.items() if k not in lost}
    _, messages = follow(path, at, judge=partial, step=n)
    assert sorted(m.finding_id for kind, m in messages if kind == "Finding") == lost
    assert not [m for kind, m in messages if kind != "Finding"]


def test_without_a_recorded_policy_the_judge_waits_then_judges_from_the_start(tmp_path, month):
    """No policy yet: the step says it is waiting and publishes nothing; once one is recorded, everything
    is judged (the facts before it included), as the batch command judges."""
    path = tmp_path / "l.db"
    events = list(month.events[:800])
    codec = default_codec()
    ingest_records(path, to_records(events, codec=codec))
    judge = LiveJudge(idle_after_s=0)
    at = max(e["occurred_at"] for e in events) + timedelta(days=30)
    with Ledger.open(path) as ledger:
        s = judge.step(ledger, at)
        assert s.waiting and s.empty
        ingest_records(path, to_records([published(TEXT, at - timedelta(days=1))], codec=codec))
        s = judge.step(ledger, at)
        judge.accept(s)
    assert not s.waiting and set(judge.published) == batch_ids(path, at)


# -- the state file ----------------------------------------------------------------------
def test_the_state_file_keeps_published_findings_and_refuses_another_services(tmp_path):
    """Commit adds and removes in one transaction; reopening with another ledger, topic or policy mode is
    refused naming the key, since the findings there were another service's."""
    identity = {"ledger": "/x/ledger.db", "topic": "ledger.findings", "policy": "recorded"}
    state = FindingsState.open(tmp_path / "s", identity)
    state.commit(position="[1]", judged_at="2026-01-01T00:00:00.000000Z", added={"a": {"x": 1}, "b": {"x": 2}},
                 removed=[])
    state.commit(position="[2]", judged_at="2026-01-02T00:00:00.000000Z", added={}, removed=["a"])
    state.close()
    state = FindingsState.open(tmp_path / "s", identity)
    assert state.published() == {"b": {"x": 2}} and state.get("position") == "[2]"
    state.close()
    with pytest.raises(StoreError, match="its policy is 'recorded'"):
        FindingsState.open(tmp_path / "s", {**identity, "policy": "draft abc"})


def test_follow_refuses_batch_only_options_and_batch_refuses_live_ones(capsys):
    """--follow with --rule or --as-of, or --state without --follow, exits 2 naming the options."""
    assert main(["findings", "--follow", "--rule", "consent.", "--as-of", "2026-01-01T00:00:00Z"]) == 2
    err = capsys.readouterr().err
    assert "--as-of, --rule cannot be used with --follow" in err
    assert main(["findings", "--state", "x.state", "--until-idle"]) == 2
    assert "--state, --until-idle only with --follow" in capsys.readouterr().err
    assert main(["findings", "--follow", "--tick", "0"]) == 2
    assert "--tick must be a positive" in capsys.readouterr().err


# -- the wire format ---------------------------------------------------------------------
def _messages():
    text = st.text(max_size=40)
    ids = st.lists(st.text(min_size=1, max_size=36), max_size=5)
    at = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))
    finding = st.fixed_dictionaries({
        "finding_id": st.text(alphabet="0123456789abcdef", min_size=32, max_size=32), "rule": text,
        "kind": st.sampled_from(["broken", "not_judgeable"]), "severity": text, "sentence": text, "subjects": ids,
        "event_ids": ids, "policy_sha256": text, "policy_version": text, "judged_at": at})
    retracted = st.fixed_dictionaries({
        "finding_id": text, "rule": text, "sentence": text, "cleared_by": ids, "policy_sha256": text,
        "judged_at": at})
    return st.one_of(st.tuples(st.just("Finding"), finding), st.tuples(st.just("FindingRetracted"), retracted))


@settings(max_examples=200, deadline=None)
@given(item=_messages())
def test_fastavro_and_the_projects_own_avro_agree_byte_for_byte(item):
    """Encoding through fastavro gives the bytes the independent writer in avro_binary gives, and both
    readers return the message unchanged."""
    from ledger.wire.avro_binary import compile_reader, compile_writer
    from ledger.wire.findings_codec import FindingsCodec

    kind, message = item
    codec = FindingsCodec.load()
    data = codec.encode(kind, message)
    schema = codec.newest(kind)
    body = bytearray()
    compile_writer(schema.source)(message, body)
    assert data == b"\xc3\x01" + schema.fingerprint + bytes(body)
    assert codec.decode(data) == (kind, message)
    read, end = compile_reader(schema.source)(bytes(body), 0)
    assert read == message and end == len(body)


def test_a_finding_message_round_trips_and_bad_input_is_refused_by_name():
    """A finding's message decodes to the same fields; a wrong kind is refused naming the type, bytes that
    are not a findings message are a DecodeError keeping the bytes."""
    from ledger.audit.findings.model import Finding
    from ledger.wire.findings_codec import FindingsCodec

    codec = FindingsCodec.load()
    f = Finding("0" * 32, "consent.marketing", "broken", "high", "words", ("cust-1",), ("e1", "e2"), "s" * 64, "1")
    kind, back = codec.decode(codec.encode("Finding", finding_message(f, T0)))
    assert kind == "Finding" and back == {**f.as_json(), "judged_at": T0}
    with pytest.raises(SchemaError, match="Finding does not fit"):
        codec.encode("Finding", {**finding_message(f, T0), "kind": "maybe"})
    with pytest.raises(SchemaError, match="unknown findings message type"):
        codec.encode("Event", {})
    with pytest.raises(DecodeError, match="fingerprint") as err:
        codec.decode(b"\xc3\x01" + b"\x00" * 8 + b"x")
    assert err.value.raw.startswith(b"\xc3\x01")


def test_the_findings_schemas_are_not_event_schemas():
    """The event schema directory holds only event types: the findings schemas live beside it."""
    from ledger.wire.findings_codec import FINDINGS_SCHEMAS

    assert sorted(p.name for p in FINDINGS_SCHEMAS.iterdir() if p.is_dir()) == ["Finding", "FindingRetracted"]
    assert not set(ev.schema_files()) & {"Finding", "FindingRetracted"}
    assert load(EXAMPLE)  # the example still loads: nothing above touched the vocabulary


# -- rewinding, the watermark, the instant judged at ------------------------------------------
def access(at):
    return event("DataAccessed", at, data_categories=["user.contact.email"],
                 purpose="essential.service.operations.support", access_type="VIEW", outcome="GRANTED")


def placed(records, where):
    """``records`` put on the partitions, offsets and recorded times ``where`` gives: [(topic, partition, ms)]."""
    offsets: dict = {}
    out = []
    for r, (topic, part, ms) in zip(records, where, strict=True):
        offset = offsets[(topic, part)] = offsets.get((topic, part), -1) + 1
        out.append(dataclasses.replace(r, topic=topic, partition=part, offset=offset, timestamp=ms))
    return out


def test_a_late_consent_is_judged_from_a_rewind_point_and_retracts_the_finding(tmp_path):
    """A consent recorded before the share but appended after the share was judged arrives behind the
    position: the judge rewinds to a point before it (no re-judging from the start), the share is kept
    and its published finding withdrawn naming the consent; the answer is the batch answer."""
    path = tmp_path / "l.db"
    fillers = [access(T0 - timedelta(hours=3) + timedelta(seconds=i)) for i in range(120)]
    share, granted = email_share(T0), consent(T0 - timedelta(hours=1))
    events = [published(TEXT, T0 - timedelta(days=1)), *fillers, granted, share,
              *[access(T0 + timedelta(seconds=i)) for i in range(10)]]
    records = list(to_records(events, codec=default_codec()))
    late = records.pop(len(fillers) + 1)  # the consent: recorded in its place, appended last
    ingest_records(path, records)
    judge = LiveJudge(idle_after_s=0, point_min=20, point_max=20)
    at = T0 + timedelta(days=1)
    with Ledger.open(path) as ledger:
        first = judge.step(ledger, at)
        judge.accept(first)
        broken = [f for f in first.findings if f.rule == "consent.marketing" and f.event_ids[0] == share["event_id"]]
        assert len(broken) == 1
        ingest_records(path, [late])
        second = judge.step(ledger, at)
        judge.accept(second)
    assert (judge.rebuilds, judge.rewinds) == (1, 1), "rewound to a point, not re-judged from the start"
    assert [w.finding.finding_id for w in second.withdrawn] == [broken[0].finding_id]
    assert second.withdrawn[0].cleared_by == (granted["event_id"],) and second.late == 0
    assert set(judge.published) == batch_ids(path, at)


def test_a_late_entry_older_than_every_rewind_point_rebuilds_from_the_start(tmp_path):
    """With the points kept all after a late entry, the judge falls back to judging afresh, still exactly."""
    path = tmp_path / "l.db"
    share, granted = email_share(T0), consent(T0 - timedelta(hours=1))
    events = [published(TEXT, T0 - timedelta(days=1)), granted, share,
              *[access(T0 + timedelta(seconds=i)) for i in range(200)]]
    records = list(to_records(events, codec=default_codec()))
    late = records.pop(1)
    ingest_records(path, records)
    clock = Clock()
    judge = LiveJudge(idle_after_s=0, point_min=20, point_max=20, points=2, rebuild_every_s=5, clock=clock)
    at = T0 + timedelta(days=1)
    with Ledger.open(path) as ledger:
        judge.accept(judge.step(ledger, at))
        ingest_records(path, [late])
        clock.t += 1
        assert judge.step(ledger, at).late == 1, "a rebuild waits rebuild_every_s after the last"
        clock.t += 5
        judge.accept(judge.step(ledger, at))
    assert (judge.rebuilds, judge.rewinds) == (2, 0)
    assert set(judge.published) == batch_ids(path, at)


class Kafka:
    """What Kafka answers for end offsets in these tests: set by the test (the broker tests use the real one)."""

    def __init__(self, ends):
        self.ends = dict(ends)
        self.asked = 0

    def __call__(self, fetch_from):
        self.asked += 1
        return dict(self.ends)


def test_a_caught_up_partition_does_not_hold_back_while_another_still_delivers(tmp_path):
    """Partition 0 is caught up with Kafka, partition 1 still delivers (its end is ahead of the ledger):
    entries are fed up to just below partition 1's latest record and the step is judged at that watermark,
    which is exactly `ledger findings --as-of <judged_at>`; once partition 1 is caught up too, everything
    up to the instant Kafka was asked (less the allowance) is fed, and nothing arrived late."""
    path = tmp_path / "l.db"
    base = to_millis(T0)
    policy = published(TEXT, T0 - timedelta(days=1))
    zero = [access(T0 + timedelta(seconds=s)) for s in (1, 2, 3, 4, 5)]
    one = [email_share(T0 + timedelta(seconds=s)) for s in (1.5, 2.5, 3.5, 4.5, 5.5)]
    records = placed(list(to_records([policy, *zero, *one], codec=default_codec())),
                     [("ledger.policy", 0, base - 86_400_000)]
                     + [("ledger.access", 0, base + 1000 * s) for s in (1, 2, 3, 4, 5)]
                     + [("ledger.sharing", 1, base + 500 + 1000 * s) for s in (1, 2, 3, 4, 5)])
    ingest_records(path, records[:9])  # partition 1 has delivered 3 of its 5
    kafka = Kafka({("ledger.policy", 0): 1, ("ledger.access", 0): 5, ("ledger.sharing", 1): 5})
    clock = Clock()
    judge = LiveJudge(clock=clock, end_offsets=kafka, idle_after_s=30)
    now = T0 + timedelta(minutes=1)
    with Ledger.open(path) as ledger:
        s = judge.step(ledger, now)
        judge.accept(s)
        assert s.judged_at == T0 + timedelta(seconds=3.499) and s.timed
        assert s.pending == 3 and s.late == 0  # partition 0 at 4 s and 5 s, partition 1 at 3.5 s
        assert set(judge.published) == batch_ids(path, s.judged_at)
        ingest_records(path, records[9:])
        clock.t += 2
        s = judge.step(ledger, now)
        judge.accept(s)
    assert s.judged_at == now - timedelta(seconds=1) and s.pending == 0 and judge.rewinds == 0
    assert set(judge.published) == batch_ids(path, s.judged_at)
    assert kafka.asked == 1, "the end read first already shows partition 1 caught up once the ledger reaches it"


def test_until_idle_judges_an_entry_stamped_ahead_of_the_clock_instead_of_leaving_it_pending(tmp_path):
    """--until-idle's final step judges at the later of the clock and the newest recorded time: a broker
    clock ahead of the service's moves the instant to that entry's time, so the state is
    `--as-of <judged_at>` with nothing left out."""
    path = tmp_path / "l.db"
    ahead = T0 + timedelta(minutes=5)
    records = list(to_records([published(TEXT, T0 - timedelta(days=1)), email_share(ahead)], codec=default_codec()))
    ingest_records(path, records)
    judge = LiveJudge(idle_after_s=0)
    with Ledger.open(path) as ledger:
        s = judge.step(ledger, T0)
        assert s.pending == 1, "while following, an entry stamped ahead of the clock waits for it"
        judge.accept(s)
        s = judge.step(ledger, judge.final_instant(T0), final=True)
        judge.accept(s)
    assert s.pending == 0 and s.judged_at == from_millis(records[-1].timestamp) > T0
    assert judge.published and set(judge.published) == batch_ids(path, s.judged_at)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), cut=st.floats(0, 1))
def test_a_cloned_judge_is_independent_and_judges_as_the_original(seed, cut):
    """Feeding the rest to a clone gives what the uninterrupted judge gives, and leaves the original as it was."""
    from ledger.audit.findings.recorded import LedgerJudge

    w = simulate(seed=seed, events=400, subjects=20)
    texts = [json.dumps(ev.to_json(e), sort_keys=True) for e in w.events]
    at = max(e["occurred_at"] for e in w.events) + timedelta(days=10)
    k = int(cut * len(texts))
    whole = LedgerJudge(loads(TEXT, "t.toml"), draft=True)
    expected = [r for t in texts for r in whole.feed(t)] + whole.finish(at)
    original = LedgerJudge(loads(TEXT, "t.toml"), draft=True)
    head = [r for t in texts[:k] for r in original.feed(t)]
    before = original.finish(at)
    copy = original.clone()
    tail = [r for t in texts[k:] for r in copy.feed(t)] + copy.finish(at)
    assert head + tail == expected
    assert original.finish(at) == before


def test_health_is_a_recent_commit_of_the_state_file(tmp_path, capsys):
    """--health exits 1 naming the reason for a missing state or an old commit, 0 for a recent one, and
    never creates the file it checks."""
    path = tmp_path / "ledger.db.findings-state"
    assert main(["findings", "--health", "--state", str(path)]) == 1
    assert "unhealthy: no findings state" in capsys.readouterr().out and not path.exists()
    identity = {"ledger": "/x/ledger.db", "topic": "ledger.findings", "policy": "recorded"}
    state = FindingsState.open(path, identity)
    assert main(["findings", "--health", "--state", str(path)]) == 1
    assert "no commit yet" in capsys.readouterr().out
    now = datetime.now(UTC)
    state.commit(position="[1]", judged_at=time_text(now - timedelta(seconds=3)), added={}, removed=[],
                 committed_at=time_text(now))
    assert main(["findings", "--health", "--state", str(path)]) == 0
    assert "healthy: last commit 0 s ago" in capsys.readouterr().out
    state.commit(position="[1]", judged_at=time_text(now - timedelta(minutes=5)), added={}, removed=[],
                 committed_at=time_text(now - timedelta(minutes=2)))
    state.close()
    assert main(["findings", "--health", "--state", str(path), "--max-age", "60"]) == 1
    assert "more than --max-age 60 s" in capsys.readouterr().out


def test_a_partition_kafka_says_is_behind_holds_the_mark_while_the_writer_delivers_others():
    """Waiting its turn in a backlog longer than idle_after_s, a partition behind Kafka's end still holds
    the watermark while another partition delivers; once every partition is silent (the writer is down)
    it stops holding, and without Kafka's word a silent partition stops holding on its own."""
    from ledger.audit.findings.watermark import Watermark

    clock = Clock()
    mark = Watermark(idle_after_s=10, allowance_ms=1000, clock=clock)
    mark.ends({("a", 0): 100, ("b", 0): 100}, read_at_ms=50_000)
    mark.saw("a", 0, 20_000)
    mark.saw("b", 0, 30_000)
    stored = {("a", 0): 40, ("b", 0): 60}
    assert mark.bound(60_000, stored) == 19_999
    clock.t = 15
    mark.saw("b", 0, 31_000)  # b delivers, a waits its turn
    assert mark.bound(60_000, stored) == 19_999
    clock.t = 30  # nothing delivered for 15 s
    assert mark.bound(60_000, stored) == 60_000
    stored = {("a", 0): 100, ("b", 0): 100}  # both caught up: held at the instant Kafka was asked
    assert mark.bound(60_000, stored) == 49_000
    mark.forget_ends()
    mark.saw("b", 0, 32_000)
    assert mark.bound(60_000, stored) == 31_999, "without Kafka's word only the partition that delivers holds"


def test_a_read_cut_short_by_the_read_limit_does_not_count_a_partition_caught_up(tmp_path):
    """Kafka's end is reached in the ledger file, but the judge has read only part of it (read_limit):
    the watermark compares with what was read, so every step's state is `--as-of <judged_at>` and
    nothing arrives late."""
    path = tmp_path / "l.db"
    base = to_millis(T0)
    policy = published(TEXT, T0 - timedelta(days=1))
    shares = [email_share(T0 + timedelta(seconds=s)) for s in range(40)]
    where = [("ledger.policy", 0, base - 86_400_000)] + [("ledger.sharing", s % 2, base + 1000 * s) for s in range(40)]
    records = placed(list(to_records([policy, *shares], codec=default_codec())), where)
    ingest_records(path, records[:5])
    kafka = Kafka({("ledger.policy", 0): 1, ("ledger.sharing", 0): 20, ("ledger.sharing", 1): 20})
    clock = Clock()
    judge = LiveJudge(clock=clock, end_offsets=kafka, idle_after_s=30, read_limit=6, ends_every_s=0)
    now = T0 + timedelta(minutes=5)
    with Ledger.open(path) as ledger:
        judge.accept(judge.step(ledger, now))
        ingest_records(path, records[5:])
        for _ in range(10):
            clock.t += 1
            s = judge.step(ledger, now)
            judge.accept(s)
            assert s.late == 0 and set(judge.published) == batch_ids(path, s.judged_at)
    assert s.judged_at == now - timedelta(seconds=1) and judge.rewinds == 0
