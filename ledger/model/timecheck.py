"""Implausible record times, judged against the record's own Kafka timestamp (never the wall clock).

    limits = TimeLimits.from_meta(ledger.meta())       # recorded in the ledger when it was created
    time_flag(occurred_at_us, timestamp_ms, limits)    # None, or "time: occurred_at 3 days after ..."

A producer sets ``occurred_at`` and, on a topic with CreateTime (or on a
broker that ignores LogAppendTime, such as tansu 0.6), the Kafka timestamp
too. A record is *flagged*, not refused, when

* its Kafka timestamp is below 0 or after the year 9999;
* its ``occurred_at`` is more than ``max_clock_skew_s`` after its Kafka
  timestamp (default 5 minutes: nothing is recorded before it happens, so
  only a clock difference between the producer's host and the broker can
  explain it, and five minutes is the tolerance Kerberos uses by default);
* its ``occurred_at`` is more than ``max_record_lag_s`` before its Kafka
  timestamp (default 30 days: a durable outbox drained after a long outage
  or legal records typed in after the fact arrive days late, which is
  normal and common; a record arriving more than a month after the event
  is rare enough that an auditor should see it named).

Both limits are stored in the ledger's ``meta`` at creation
(:meth:`TimeLimits.to_meta`), so ingest, ``verify`` and a later replay with
the same limits classify every record the same way, whenever they run. A
ledger whose meta holds no limits flags nothing. The flag is written to
``entries.reason`` of a decoded record as text starting with ``time: ``;
the record keeps its status (``entry``, ``duplicate``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ledger.errors import ConfigError, StoreError

PREFIX = "time: "
#: 9999-12-31T23:59:59.999Z in Kafka milliseconds: the last instant an ISO-8601 year can name.
MAX_TIMESTAMP_MS = 253_402_300_799_999
DEFAULT_MAX_CLOCK_SKEW_S = 5 * 60
DEFAULT_MAX_RECORD_LAG_S = 30 * 86_400
META_CLOCK_SKEW = "time_max_clock_skew_s"
META_RECORD_LAG = "time_max_record_lag_s"


@dataclass(frozen=True)
class TimeLimits:
    """How far ``occurred_at`` may lie after / before the Kafka timestamp before a record is flagged."""

    max_clock_skew_s: int = DEFAULT_MAX_CLOCK_SKEW_S
    max_record_lag_s: int = DEFAULT_MAX_RECORD_LAG_S

    def __post_init__(self) -> None:
        for name in ("max_clock_skew_s", "max_record_lag_s"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ConfigError(f"{name} must be a whole number of seconds, 0 or more, not {value!r}")

    def to_meta(self) -> dict[str, str]:
        return {META_CLOCK_SKEW: str(self.max_clock_skew_s), META_RECORD_LAG: str(self.max_record_lag_s)}

    @classmethod
    def from_settings(cls, settings) -> "TimeLimits":
        """The limits a new ledger is created with: ``Settings.max_clock_skew_s`` and ``max_record_lag_s``."""
        return cls(settings.max_clock_skew_s, settings.max_record_lag_s)

    @classmethod
    def from_meta(cls, meta: Mapping[str, str]) -> "TimeLimits | None":
        """The limits a ledger recorded at creation; None when it recorded none (flag nothing)."""
        texts = (meta.get(META_CLOCK_SKEW), meta.get(META_RECORD_LAG))
        if texts == (None, None):
            return None
        if not all(t is not None and t.isascii() and t.isdigit() for t in texts):
            raise StoreError(f"meta {META_CLOCK_SKEW}/{META_RECORD_LAG} are {texts!r}, not whole numbers of "
                             "seconds; the file is damaged (run `ledger verify`)")
        return cls(int(texts[0]), int(texts[1]))


def span(us: int) -> str:
    """A duration in words, exact to the unit shown: ``3 days 4 h``, ``2 h 5 min``, ``45 s``, ``12 ms``."""
    seconds, rest = divmod(abs(us), 1_000_000)
    days, s = divmod(seconds, 86_400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{minutes} min" + (f" {s} s" if s else "")
    return f"{s} s" if s else f"{rest // 1000} ms"


def time_flag(occurred_at_us: int, timestamp_ms: int, limits: TimeLimits | None) -> str | None:
    """Why a record's times are implausible (text starting ``time: ``), or None.

    Depends only on the record and ``limits``: the same answer at ingest,
    in verify and in a replay years later.
    """
    if limits is None:
        return None
    if timestamp_ms < 0:
        return f"{PREFIX}Kafka timestamp {timestamp_ms} ms is before 1970"
    if timestamp_ms > MAX_TIMESTAMP_MS:
        return f"{PREFIX}Kafka timestamp {timestamp_ms} ms is after the year 9999"
    ahead = occurred_at_us - timestamp_ms * 1000
    if ahead > limits.max_clock_skew_s * 1_000_000:
        return (f"{PREFIX}occurred_at {span(ahead)} after the recorded time "
                f"(more than the {span(limits.max_clock_skew_s * 1_000_000)} clock skew allowed)")
    if -ahead > limits.max_record_lag_s * 1_000_000:
        return (f"{PREFIX}occurred_at {span(ahead)} before the recorded time "
                f"(more than the {span(limits.max_record_lag_s * 1_000_000)} lag allowed)")
    return None
