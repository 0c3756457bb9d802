"""`make demo` simulates a month ending just before the run, so verify finds nothing recorded late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger.dev.demo import DEMO_DAYS, recent_window
from ledger.dev.simulate import simulate
from ledger.model.timecheck import TimeLimits, time_flag
from ledger.model.times import to_micros, to_millis

LIMITS = TimeLimits()  # what a new ledger records: 30 days late at most, 5 minutes early at most


@pytest.mark.parametrize("now", [
    datetime(2026, 12, 3, 0, 0, tzinfo=UTC),  # just after midnight
    datetime(2026, 12, 3, 23, 59, 59, 999_999, tzinfo=UTC),  # the last instant of the day
    datetime(2026, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=5))),  # late February in UTC
], ids=["midnight", "end-of-day", "other-offset"])
def test_every_demo_event_is_recorded_in_time_whenever_the_demo_runs(now):
    """Each simulated event, recorded at ``now``, is neither more than 30 days late nor in the future."""
    start = recent_window(now)
    workload = simulate(seed=7, events=3000, subjects=100, start=start, days=DEMO_DAYS)
    recorded_ms = to_millis(now)
    flags = [time_flag(to_micros(e["occurred_at"]), recorded_ms, LIMITS) for e in workload.events]
    assert [f for f in flags if f is not None] == []
    assert max(e["occurred_at"] for e in workload.events) < now.astimezone(UTC).replace(hour=0, minute=0, second=0,
                                                                                      microsecond=0)


def test_the_window_is_a_month_ending_the_day_before_the_run():
    """recent_window: midnight UTC 29 days before today's, so 28 whole days end at yesterday's end."""
    start = recent_window(datetime(2026, 12, 3, 10, 0, tzinfo=UTC))
    assert start == datetime(2026, 11, 4, tzinfo=UTC)
    assert start + timedelta(days=DEMO_DAYS) == datetime(2026, 12, 2, tzinfo=UTC)
    assert recent_window(datetime(2026, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=5)))) == datetime(
        2026, 1, 30, tzinfo=UTC)  # 2026-02-28T20:30Z: today is the 28th in UTC


def test_the_demo_workload_depends_only_on_the_seed_and_the_day():
    """Two runs on the same day give the same events; another seed gives other events."""
    morning, evening = datetime(2026, 12, 3, 8, tzinfo=UTC), datetime(2026, 12, 3, 22, tzinfo=UTC)
    a = simulate(seed=7, events=500, subjects=50, start=recent_window(morning), days=DEMO_DAYS).events
    b = simulate(seed=7, events=500, subjects=50, start=recent_window(evening), days=DEMO_DAYS).events
    assert a == b
    c = simulate(seed=8, events=500, subjects=50, start=recent_window(morning), days=DEMO_DAYS).events
    assert a != c
