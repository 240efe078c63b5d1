"""A team's working hours in its own time zone: open at an instant, and open time added up.

```json
{"time_zone": "Europe/Lisbon",
 "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"},
             {"days": ["sat"], "start": "10:00", "end": "14:00"}]}
```

Windows are wall-clock times on the days named (every day when `days` is left out); a window
ends the day it starts (`24:00` is midnight at its end), so a night shift is two windows. An SLA
counted in working hours (`add_open_time`) runs only while a window is open, and daylight-saving
changes move the instants, never the wall-clock times.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

import msgspec

from domain.campaign.local_time import DAY_NAMES, at_local, is_time_zone, parse_time_of_day, zone_of
from domain.shared.documents import DocumentInvalid, DocumentReader
from domain.shared.errors import InvalidValue

__all__ = [
    "OpenWindow",
    "WorkingHours",
    "WorkingHoursInvalid",
    "decode_working_hours",
]

DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
TimeText = Annotated[str, msgspec.Meta(min_length=1, max_length=5, examples=["09:00", "24:00"])]

_MIDNIGHT_AT_END = "24:00"
_MAX_DAYS = 400
"""How far ahead open time is looked for: a year of closed days means no window at all."""


def _time_at_end(text: str) -> time | None:
    """A window's end; None for `24:00`, the midnight that ends the day."""
    return None if text == _MIDNIGHT_AT_END else parse_time_of_day(text)


class OpenWindow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Open from `start` to `end` (wall clock) on each of `days`."""

    days: tuple[DayName, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    start: TimeText
    end: TimeText

    def __post_init__(self) -> None:
        if not self.days:
            raise InvalidValue("days", "needs at least one day")
        try:
            start = parse_time_of_day(self.start)
        except ValueError as error:
            raise InvalidValue("start", str(error)) from None
        try:
            end = _time_at_end(self.end)
        except ValueError as error:
            raise InvalidValue("end", f"{error}, or 24:00 for the end of the day") from None
        if end is not None and end <= start:
            raise InvalidValue(
                "end",
                f"{self.end} is not after {self.start}: a window ends the day it starts "
                "(a night shift is two windows, one ending at 24:00)",
            )

    def spans_on(self, day: date, time_zone: str) -> Iterator[tuple[datetime, datetime]]:
        """The instants (UTC) this window is open on `day`, if it opens that day."""
        if DAY_NAMES[day.weekday()] not in self.days:
            return
        zone = zone_of(time_zone)
        end = _time_at_end(self.end)
        opens = at_local(day, parse_time_of_day(self.start), zone)
        closes = (
            at_local(day + timedelta(days=1), time(0), zone)
            if end is None
            else at_local(day, end, zone)
        )
        if closes > opens:
            yield opens, closes


class WorkingHours(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When a team works, in its own time zone."""

    time_zone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    windows: Annotated[tuple[OpenWindow, ...], msgspec.Meta(min_length=1, max_length=50)]

    def __post_init__(self) -> None:
        if not is_time_zone(self.time_zone):
            raise InvalidValue(
                "time_zone",
                f"{self.time_zone!r} is not an IANA time zone, e.g. Europe/Lisbon or UTC",
            )

    def is_open(self, at: datetime) -> bool:
        """Whether `at` falls in one of the windows."""
        for opens, closes in self._spans(at - timedelta(days=1)):
            if opens > at:
                return False
            if at < closes:
                return True
        return False

    def add_open_time(self, start: datetime, span: timedelta) -> datetime:
        """The instant at which `span` of open time has passed since `start`."""
        remaining = span
        for opens, closes in self._spans(start - timedelta(days=1)):
            if closes <= start:
                continue
            begin = max(opens, start)
            if begin + remaining <= closes:
                return begin + remaining
            remaining -= closes - begin
        raise InvalidValue("working_hours", f"not open for {span} in the {_MAX_DAYS} days ahead")

    def next_opening(self, at: datetime) -> datetime:
        """`at` if open then, else the next instant a window opens."""
        return self.add_open_time(at, timedelta(0))

    def _spans(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open spans (UTC) from the local day of `since` on, in order, touching ones merged."""
        day = since.astimezone(zone_of(self.time_zone)).date()
        current: tuple[datetime, datetime] | None = None
        for offset in range(_MAX_DAYS):
            spans = sorted(
                span
                for window in self.windows
                for span in window.spans_on(day + timedelta(days=offset), self.time_zone)
            )
            for opens, closes in spans:
                if current is not None and opens <= current[1]:
                    current = (current[0], max(current[1], closes))
                    continue
                if current is not None:
                    yield current
                current = (opens, closes)
        if current is not None:
            yield current


class WorkingHoursInvalid(DocumentInvalid):
    """Working hours that cannot be used: where (a JSON path such as `$.windows[0].end`) and why."""


_reader: DocumentReader[WorkingHours] = DocumentReader(
    WorkingHours, WorkingHoursInvalid, noun="window", parts=(WorkingHours, OpenWindow)
)


def decode_working_hours(document: bytes | str | Mapping[str, Any]) -> WorkingHours:
    """Reads working hours from JSON text or decoded JSON, naming the path of a fault."""
    return _reader.read(document)
