"""Recorded time (issue 12, section 2): implausible record times are flagged, judged against the record itself.

A producer that sets its own Kafka timestamp (CreateTime, or tansu, which
ignores LogAppendTime) can claim any recorded time. These tests write such
records through the Ingestor and check that each is kept as an ``entry``
with its flag in ``reason``, that verify re-derives and lists the flags,
that the auditor report names them, that the limits live in the ledger's
meta, and that no output crashes on an absurd timestamp.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from builders import CODEC, START, make_event, make_record
from hypothesis import given
from hypothesis import strategies as st

from ledger.audit.report import build_report, render
from ledger.audit.verify import verify_ledger
from ledger.cli import main
from ledger.config import Settings
from ledger.errors import ConfigError
from ledger.ingest.pipeline import Ingestor
from ledger.model.timecheck import MAX_TIMESTAMP_MS, PREFIX, TimeLimits, span, time_flag
from ledger.model.times import to_micros, to_millis
from ledger.store import Ledger, iter_entries

UTC = timezone.utc
LIMITS = TimeLimits()  # 5 minutes ahead, 30 days behind
DAY_US = 86_400_000_000


def test_defaults_are_five_minutes_ahead_and_thirty_days_behind():
    """The documented defaults, in Settings and in TimeLimits alike."""
    settings = Settings.load(env={})
    assert (settings.max_clock_skew_s, settings.max_record_lag_s) == (300, 30 * 86_400)
    assert TimeLimits.from_settings(settings) == LIMITS


@pytest.mark.parametrize("ahead_us, flag", [
    (300 * 1_000_000, None),  # exactly the allowed skew: plausible
    (300 * 1_000_000 + 1, "time: occurred_at 5 min after the recorded time (more than the 5 min clock skew allowed)"),
    (3 * DAY_US, "time: occurred_at 3 days after the recorded time (more than the 5 min clock skew allowed)"),
    (-30 * DAY_US, None),
    (-30 * DAY_US - 1, "time: occurred_at 30 days before the recorded time (more than the 30 days lag allowed)"),
    (-400 * DAY_US - 3_600_000_000, "time: occurred_at 400 days 1 h before the recorded time "
                                    "(more than the 30 days lag allowed)"),
])
def test_occurred_at_is_judged_against_its_own_kafka_timestamp(ahead_us, flag):
    """Only the difference between the two times of one record counts, with the bounds themselves allowed."""
    ts = to_millis(START)
    assert time_flag(ts * 1000 + ahead_us, ts, LIMITS) == flag


@pytest.mark.parametrize("ts, flag", [
    (-1, "time: Kafka timestamp -1 ms is before 1970"),
    (2 ** 62, f"time: Kafka timestamp {2 ** 62} ms is after the year 9999"),
    (MAX_TIMESTAMP_MS, None),
    (MAX_TIMESTAMP_MS + 1, f"time: Kafka timestamp {MAX_TIMESTAMP_MS + 1} ms is after the year 9999"),
])
def test_kafka_timestamps_before_1970_or_after_9999_are_flagged(ts, flag):
    """A Kafka timestamp no calendar date can name is flagged whatever occurred_at says."""
    occurred = min(max(ts, 0), MAX_TIMESTAMP_MS) * 1000
    assert time_flag(occurred, ts, LIMITS) == flag


@given(st.integers(-(2 ** 63), 2 ** 63 - 1), st.integers(-(2 ** 63), 2 ** 63 - 1),
       st.integers(0, 10 ** 9), st.integers(0, 10 ** 9))
def test_time_flag_is_total_and_prefixed(occurred_us, ts, skew, lag):
    """Any pair of 64-bit times gives None or a 'time: ' text, never an error, the same every call."""
    limits = TimeLimits(skew, lag)
    flag = time_flag(occurred_us, ts, limits)
    assert flag is None or flag.startswith(PREFIX)
    assert flag == time_flag(occurred_us, ts, limits)


def test_no_limits_in_meta_flags_nothing():
    """A ledger made before the flags (no limits in meta) classifies nothing as implausible."""
    assert TimeLimits.from_meta({}) is None and time_flag(0, -5, None) is None
    assert span(0) == "0 ms" and span(61_000_000) == "1 min 1 s"


def test_limits_come_from_settings_and_the_environment_and_refuse_nonsense():
    """LEDGER_MAX_CLOCK_SKEW_S / LEDGER_MAX_RECORD_LAG_S set the limits; negatives and words are refused."""
    settings = Settings.load(env={"LEDGER_MAX_CLOCK_SKEW_S": "60", "LEDGER_MAX_RECORD_LAG_S": "3600"})
    assert TimeLimits.from_settings(settings) == TimeLimits(60, 3600)
    with pytest.raises(ConfigError, match="max_clock_skew_s"):
        Settings.load(env={"LEDGER_MAX_CLOCK_SKEW_S": "five"})
    with pytest.raises(ConfigError, match="max_record_lag_s"):
        Settings.load(max_record_lag_s=-1)


def hostile_records():
    """Records a producer with its own clock could write: seq 1 plausible, 2..5 each implausible one way."""
    base = to_millis(START)
    return [
        make_record(make_event(1), offset=0, timestamp=base + 60_000),                     # plausible
        make_record(make_event(2, occurred_at=START + timedelta(days=3)), offset=1, timestamp=base),
        make_record(make_event(3), offset=2, timestamp=base + 400 * 86_400_000),           # a year late
        make_record(make_event(4), offset=3, timestamp=2 ** 62),                           # year 146140482
        make_record(make_event(5), offset=4, timestamp=-5),                                # before 1970
    ]


@pytest.fixture
def hostile(tmp_path):
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(path, readonly=False, create=True)
    Ingestor(ledger, codec=CODEC).ingest(hostile_records())
    ledger.close()
    return path


def test_implausible_records_stay_entries_and_carry_their_flag(hostile):
    """Each record is an entry; reason is NULL for the plausible one and names the problem for the others."""
    with Ledger.open(hostile) as ledger:
        rows = [(e.status, e.reason) for e in iter_entries(ledger)]
    assert [s for s, _ in rows] == ["entry"] * 5
    assert rows[0][1] is None
    assert rows[1][1].startswith("time: occurred_at 3 days after the recorded time")
    assert rows[2][1].startswith("time: occurred_at 399 days 23 h before")  # 400 days minus 3 min, cut to hours
    assert rows[3][1] == f"time: Kafka timestamp {2 ** 62} ms is after the year 9999"
    assert rows[4][1] == "time: Kafka timestamp -5 ms is before 1970"


def test_verify_re_derives_and_lists_the_flags(hostile, tmp_path, capsys):
    """verify passes and lists the four flagged records; the CLI summary names them."""
    with Ledger.open(hostile) as ledger:
        report = verify_ledger(ledger, codec=CODEC)
    assert report.ok, [str(p) for p in report.problems]
    assert report.flagged_count == 4 and [p.seq for p in report.flagged] == [2, 3, 4, 5]
    assert main(["verify", "--db", str(hostile)]) == 0
    out = capsys.readouterr().out
    assert "flagged: 4 record(s) with implausible times" in out and "after the year 9999" in out


def test_verify_catches_a_flag_removed_from_an_implausible_record(hostile):
    """Clearing the reason of a flagged entry (to hide a back-dated record) is a verify problem."""
    import sqlite3

    conn = sqlite3.connect(hostile, isolation_level=None)
    conn.execute("DROP TRIGGER entries_no_update")
    conn.execute("UPDATE entries SET reason = NULL WHERE seq = 2")
    conn.close()
    with Ledger.open(hostile) as ledger:
        report = verify_ledger(ledger, codec=CODEC)
    assert [(p.seq, p.what.split(" but ")[0]) for p in report.problems] == [(2, "reason is None")]


def test_the_limits_are_recorded_at_creation_so_a_replay_classifies_alike(tmp_path):
    """A ledger created with other limits keeps them in meta; ingest reads them from there, not from defaults."""
    path = tmp_path / "strict.db"
    ledger = Ledger.open(path, readonly=False, create=True, time_limits=TimeLimits(0, 60))
    assert {k: v for k, v in ledger.meta().items() if k.startswith("time_")} == {
        "time_max_clock_skew_s": "0", "time_max_record_lag_s": "60"}
    one_minute_ahead = make_record(make_event(1), offset=0, timestamp=to_millis(START))  # occurs at START + 1 min
    Ingestor(ledger, codec=CODEC).ingest([one_minute_ahead])
    ledger.close()
    assert time_flag(to_micros(START) + 60_000_000, to_millis(START), LIMITS) is None  # the defaults accept it
    with Ledger.open(path) as ledger:
        (entry,) = list(iter_entries(ledger))
        assert entry.reason == "time: occurred_at 1 min after the recorded time (more than the 0 ms clock skew allowed)"
        assert verify_ledger(ledger, codec=CODEC).ok  # verify judges by the ledger's limits, not the defaults


def test_no_output_crashes_on_absurd_kafka_timestamps(hostile, capsys):
    """who-saw, accesses and the report in every format render timestamps of 2^62 ms and -5 ms."""
    db = str(hostile)
    subject = "cust-0005"  # named by events 4 and 5 (recorded in year 146140482 and at -5 ms)
    for argv in (["who-saw", subject], ["accesses", "--actor", "emp-1"], ["obligations"]):
        for fmt in ("table", "json", "csv"):
            assert main([*argv, "--db", db, "--format", fmt]) == 0
            out, err = capsys.readouterr()
            assert "Traceback" not in err
    assert main(["who-saw", subject, "--db", db, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["recorded_at"] for r in rows} == {"146140482-04-24T15:36:27.904000Z", "1969-12-31T23:59:59.995000Z"}
    with Ledger.open(hostile) as ledger:
        report = build_report(ledger, subject, audience="auditor", generated_at=datetime(2026, 6, 1, tzinfo=UTC))
        subject_report = build_report(ledger, subject, generated_at=datetime(2026, 6, 1, tzinfo=UTC))
    for fmt in ("json", "html", "csv"):
        assert render(report, fmt) and render(subject_report, fmt)
    flagged = [a["message"] for a in report.anomalies if a["kind"] == "implausible_time"]
    assert len(flagged) == 2 and all("time: Kafka timestamp" in m for m in flagged)
    assert "time: Kafka timestamp" in render(report, "html")


def test_a_future_as_of_is_refused_but_now_itself_is_fine(hostile):
    """--as-of may be any past instant up to now; later is refused naming the option."""
    from ledger.audit.query import who_saw
    from ledger.errors import ValidationError

    with Ledger.open(hostile) as ledger:
        assert list(who_saw(ledger, "cust-0001", as_of=datetime.now(UTC)))
        with pytest.raises(ValidationError, match="--as-of"):
            list(who_saw(ledger, "cust-0001", as_of=datetime.now(UTC) + timedelta(minutes=1)))
