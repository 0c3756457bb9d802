"""Times given on the command line and in query parameters: ISO-8601 with an offset.

    parse_time("2026-03-01T00:00:00+01:00")   # datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    to_micros(dt), to_millis(dt)               # the ledger's integer clocks

A time without an offset is refused: the ledger spans time zones, and a
silent guess of the local zone would shift every boundary. Everything is
turned into UTC; output says so.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from ledger.errors import ValidationError

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(text: str | datetime, *, option: str = "time") -> datetime:
    """An aware UTC datetime from ISO-8601 text with an offset (``Z`` or ``+hh:mm``).

    ``option`` names the option in the error (e.g. ``--since``). A datetime is
    accepted if it is aware. Raises ValidationError naming the option.
    """
    if isinstance(text, datetime):
        value = text
    else:
        try:
            value = datetime.fromisoformat(text.strip())
        except (ValueError, AttributeError):
            raise ValidationError(
                option, f"{text!r} is not an ISO-8601 time; write e.g. 2026-03-01T00:00:00Z"
            ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            option, f"{text!s} has no UTC offset; add one, e.g. {value.isoformat()}Z or +01:00"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC; 9999-12-31T23:59-14:00 after 9999
        raise ValidationError(
            option, f"{text!s} is outside the times the ledger can represent "
                    "(0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z in UTC)"
        ) from None


def parse_as_of(text: str | datetime, *, option: str = "--as-of", now: datetime | None = None) -> datetime:
    """An ``--as-of`` time: like :func:`parse_time`, and refused when later than ``now`` (the wall clock).

    ``as_of`` asks how the ledger stood at a recorded time; nothing can have
    been recorded in the future, and a future instant would only let claimed
    (``occurred_at``) future times count as if they had happened.
    """
    value = parse_time(text, option=option)
    limit = now if now is not None else datetime.now(UTC)
    if value > limit:
        raise ValidationError(option, f"{text!s} is later than now ({limit.isoformat(timespec='seconds')}); "
                                      "the ledger cannot have recorded anything after now")
    return value


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch (the ``occurred_at`` clock), exact."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_millis(value: datetime) -> int:
    """Milliseconds since the epoch (the Kafka ``timestamp`` clock), rounded down."""
    return to_micros(value) // 1000


def from_micros(us: int) -> datetime:
    """Inverse of :func:`to_micros`."""
    return _EPOCH + timedelta(microseconds=us)


def from_millis(ms: int) -> datetime:
    """An aware UTC datetime from Kafka milliseconds."""
    return from_micros(ms * 1000)


# The ``...Z`` text of a time: the one home of that form (JSON forms, reports, queries, HTTP).

def time_text(when: datetime) -> str:
    """A time as the JSON form writes it: UTC, microseconds, ``Z`` (``2026-01-02T03:04:05.123456Z``)."""
    if when.tzinfo is UTC:  # the same text, ~2x faster than the general expression below
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (
            when.year, when.month, when.day, when.hour, when.minute, when.second, when.microsecond)
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def iso(value: datetime | None) -> str | None:
    """``2026-01-02T03:04:05.123456Z``: the form the ledger's JSON uses for times (None stays None)."""
    return None if value is None else time_text(value)


def iso_micros(us: int) -> str:
    """:func:`time_text` of µs since the epoch (entries.occurred_at), without building a datetime."""
    seconds, micros = divmod(us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def iso_millis(ms: int) -> str:
    """:func:`time_text` of Kafka milliseconds (``2026-01-02T03:04:05.123000Z``)."""
    return iso_micros(ms * 1000)
