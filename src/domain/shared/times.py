"""Times the domain can store and compute with."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["time_fault"]

# A year's margin at each end, for a query's arithmetic on the time (the 30 days before it).
_EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
_LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def time_fault(value: datetime) -> str | None:
    """Why a time cannot be stored or computed with: without an offset, or at the ends of the
    calendar, where converting it to UTC or a day's arithmetic overflows."""
    if value.tzinfo is None:
        return "needs a time zone offset, e.g. Z"
    try:
        in_range = _EARLIEST <= value <= _LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        return "must lie between the years 2 and 9998 (UTC)"
    return None
