"""The simulated clock: ``count`` non-decreasing instants over ``days`` days.

Instants are drawn one at a time as uniform order statistics (no list of
``count`` floats is held), then bent towards office hours. A few are snapped to
exact midnight UTC (always on the first of a month) and a few repeat the
previous instant, so that time-range filters meet exact boundaries and sorts
meet ties.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from random import Random
from typing import Iterator

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000

# Share of a day's events before 07:00, between 07:00 and 19:00, and after.
_NIGHT, _OFFICE = 0.12, 0.76
MIDNIGHT_SNAP = 0.3  # chance that the first instant of a new day is exactly 00:00
REPEAT = 0.002  # chance that an instant equals the previous one


def _hour_us(fraction: float) -> int:
    """Map a uniform fraction of a day to microseconds after midnight, office-hour heavy."""
    if fraction < _NIGHT:
        hours = 7.0 * fraction / _NIGHT
    elif fraction < _NIGHT + _OFFICE:
        hours = 7.0 + 12.0 * (fraction - _NIGHT) / _OFFICE
    else:
        hours = 19.0 + 5.0 * (fraction - _NIGHT - _OFFICE) / (1.0 - _NIGHT - _OFFICE)
    return min(int(hours * HOUR_US), DAY_US - 1)


def slot_times(rng: Random, start: datetime, days: int, count: int) -> Iterator[datetime]:
    """Yield ``count`` aware instants in ``[start, start + days)``, non-decreasing."""
    low = 0.0
    previous = None
    for remaining in range(count, 0, -1):
        # The minimum of `remaining` uniforms on [low, 1): the next order statistic.
        low += (1.0 - low) * (1.0 - rng.random() ** (1.0 / remaining))
        position = low * days
        day = min(int(position), days - 1)
        instant = start + timedelta(microseconds=day * DAY_US + _hour_us(position - day))
        if previous is not None:
            if instant.date() != previous.date():
                midnight = instant.replace(hour=0, minute=0, second=0, microsecond=0)
                if midnight.day == 1 or rng.random() < MIDNIGHT_SNAP:
                    instant = midnight
            elif rng.random() < REPEAT:
                instant = previous
            # The warp is monotone within a day; guard against float rounding anyway.
            if instant < previous:
                instant = previous
        previous = instant
        yield instant


def midnight_after(instant: datetime, days: int) -> datetime:
    """Midnight UTC starting the day ``days`` days after ``instant``'s day."""
    return instant.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days)
