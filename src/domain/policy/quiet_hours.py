"""Quiet windows in the customer's own time zone, correct across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from collections.abc import Iterable

    from domain.policy.rules import QuietWindow

__all__ = ["quiet_until", "zone"]


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _window_end(window: QuietWindow, at_utc: datetime, tz: ZoneInfo) -> datetime | None:
    """If `at_utc` falls in this window, when (UTC) the window ends."""
    local_day = at_utc.astimezone(tz).date()
    # A window that crosses midnight may have started the day before.
    for day in (local_day - timedelta(days=1), local_day):
        if day.weekday() not in window.weekdays:
            continue
        start = datetime.combine(day, window.start, tz).astimezone(UTC)
        end_day = day + timedelta(days=1) if window.end <= window.start else day
        end = datetime.combine(end_day, window.end, tz).astimezone(UTC)
        if start <= at_utc < end:
            return end
    return None


def quiet_until(windows: Iterable[QuietWindow], at: datetime, time_zone: str) -> datetime | None:
    """The first moment at or after `at` outside every window, or None if `at` is not quiet.

    Comparisons are made in UTC: wall-clock arithmetic in one zone ignores DST offsets.
    """
    tz = zone(time_zone)
    windows = tuple(windows)
    moment = at.astimezone(UTC)
    quiet = False
    for _ in range(8):  # adjacent windows chain; a week of them is the most that can
        ends = [end for w in windows if (end := _window_end(w, moment, tz)) is not None]
        if not ends:
            break
        quiet = True
        moment = max(ends)
    return moment if quiet else None
