"""Times of day in a customer's own time zone, and the next moment one comes round.

A wait "until 09:00" and a broadcast "every Monday at 09:00" mean 09:00 on the customer's wall
clock. Across a daylight-saving change: a time that does not exist that day (02:30 when clocks
jump from 02:00 to 03:00) comes as late as the jump moves it (03:30, the same instant as 02:30 in
the offset before the jump); a time that happens twice (01:30 when clocks fall back) comes the
first time.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = [
    "ALL_DAYS",
    "DAY_NAMES",
    "at_local",
    "is_time_zone",
    "next_local_time",
    "parse_time_of_day",
    "zone_of",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names in documents, Monday first (Monday = 0, as `date.weekday`)."""
ALL_DAYS = frozenset(range(7))

_TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def parse_time_of_day(text: str) -> time:
    """`HH:MM`, 24-hour."""
    match = _TIME_OF_DAY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time of day: use 24-hour HH:MM, e.g. 09:00 or 18:30")
    return time(int(match.group(1)), int(match.group(2)))


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone, e.g. Europe/Lisbon."""
    return name in _time_zones()


@lru_cache(maxsize=1024)
def zone_of(name: str | None) -> ZoneInfo:
    """The zone of that name; UTC for none or for a name that is no zone."""
    if name is None:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def at_local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant (UTC) the wall clock in `zone` shows `at` on `day`, as the module says."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def next_local_time(
    after: datetime, at: time, zone: ZoneInfo, days: frozenset[int] = ALL_DAYS
) -> datetime:
    """The first instant strictly after `after` at which the wall clock in `zone` shows `at`, on
    one of `days` (weekdays, Monday = 0)."""
    if not days:
        raise ValueError("no day to come round on")
    day = after.astimezone(zone).date()
    while True:
        if day.weekday() in days:
            moment = at_local(day, at, zone)
            if moment > after:
                return moment
        day += timedelta(days=1)
