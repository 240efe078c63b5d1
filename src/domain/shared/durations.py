"""Spans of time as people write them in documents: 30s, 15m, 2h, 7d, 2w, 1h30m."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from typing import Annotated

import msgspec

__all__ = ["DurationText", "format_duration", "parse_duration"]

DurationText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=40,
        description="A span of time: 30s, 15m, 2h, 1d, 7d, 2w or combined, 1h30m.",
    ),
]
"""A duration in a document, as `parse_duration` reads it; give it examples where it is used."""

_DURATION = re.compile(
    r"(?:(?P<w>\d{1,6})w)?(?:(?P<d>\d{1,6})d)?(?:(?P<h>\d{1,7})h)?"
    r"(?:(?P<m>\d{1,9})m)?(?:(?P<s>\d{1,10})s)?"
)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_HELP = "use a number and a unit (s, m, h, d, w), e.g. 30s, 15m, 2h, 7d or 1h30m"


@lru_cache(maxsize=4096)
def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `2h`, `1d`, `2w`, or units combined largest first, `1h30m`. Read once per
    text (of the last 4,096): journeys' waits read theirs for each customer a timer moves."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration: {_DURATION_HELP}")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for unit, n in match.groupdict().items() if n)
    return timedelta(seconds=seconds)


def format_duration(span: timedelta) -> str:
    """The shortest document form: 24h, 90m as 1h30m, whole days from 2 days up (7d)."""
    if span <= timedelta(0) or span.microseconds:
        raise ValueError(f"{span} is not a positive whole number of seconds")
    seconds = int(span.total_seconds())
    parts = []
    if seconds >= 2 * 86400:
        days, seconds = divmod(seconds, 86400)
        parts.append(f"{days}d")
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
