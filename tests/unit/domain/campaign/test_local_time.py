"""Times of day on a customer's own clock, across daylight-saving changes, and schedules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from domain.campaign.journey import Every, OnSchedule
from domain.campaign.local_time import next_local_time, parse_time_of_day, zone_of

NEW_YORK = ZoneInfo("America/New_York")
LISBON = ZoneInfo("Europe/Lisbon")


class TestTheNextTimeOfDay:
    def test_later_today_if_it_has_not_come(self) -> None:
        after = datetime(2026, 6, 1, 6, tzinfo=UTC)  # 07:00 in Lisbon (summer)
        assert next_local_time(after, time(9), LISBON) == datetime(2026, 6, 1, 8, tzinfo=UTC)

    def test_tomorrow_if_it_has(self) -> None:
        after = datetime(2026, 6, 1, 8, tzinfo=UTC)  # exactly 09:00 in Lisbon
        assert next_local_time(after, time(9), LISBON) == datetime(2026, 6, 2, 8, tzinfo=UTC)

    def test_a_time_the_clocks_skip_comes_as_late_as_the_jump(self) -> None:
        # New York springs forward at 02:00 on 2026-03-08: 02:30 is 03:30 EDT, 07:30 UTC.
        after = datetime(2026, 3, 8, 5, tzinfo=UTC)
        assert next_local_time(after, time(2, 30), NEW_YORK) == datetime(
            2026, 3, 8, 7, 30, tzinfo=UTC
        )

    def test_a_time_the_clocks_repeat_comes_the_first_time(self) -> None:
        # New York falls back at 02:00 on 2026-11-01: 01:30 EDT (05:30 UTC) comes first.
        after = datetime(2026, 11, 1, 4, tzinfo=UTC)
        assert next_local_time(after, time(1, 30), NEW_YORK) == datetime(
            2026, 11, 1, 5, 30, tzinfo=UTC
        )

    def test_only_on_the_days_given(self) -> None:
        after = datetime(2026, 6, 1, 12, tzinfo=UTC)  # a Monday
        friday = frozenset({4})
        assert next_local_time(after, time(9), LISBON, friday) == datetime(
            2026, 6, 5, 8, tzinfo=UTC
        )

    def test_a_time_of_day_is_hh_mm(self) -> None:
        assert parse_time_of_day("18:30") == time(18, 30)
        with pytest.raises(ValueError, match="24-hour HH:MM"):
            parse_time_of_day("6pm")

    def test_an_unknown_zone_is_utc(self) -> None:
        assert zone_of("Mars/Olympus") == ZoneInfo("UTC")
        assert zone_of(None) == ZoneInfo("UTC")


class TestSchedules:
    def test_one_instant_for_everybody(self) -> None:
        at = datetime(2026, 12, 24, 9, tzinfo=UTC)
        schedule = OnSchedule(segment="vip", at=at)
        assert schedule.next_run(datetime(2026, 12, 1, tzinfo=UTC), NEW_YORK) == at
        assert schedule.next_run(at, NEW_YORK) is None

    def test_one_date_at_each_customers_own_time(self) -> None:
        schedule = OnSchedule(segment="vip", on=date(2026, 12, 24), time="09:00")
        start = datetime(2026, 12, 1, tzinfo=UTC)
        assert schedule.next_run(start, LISBON) == datetime(2026, 12, 24, 9, tzinfo=UTC)
        assert schedule.next_run(start, NEW_YORK) == datetime(2026, 12, 24, 14, tzinfo=UTC)

    def test_one_zone_for_everybody_when_named(self) -> None:
        schedule = OnSchedule(
            segment="vip", on=date(2026, 12, 24), time="09:00", time_zone="Europe/Lisbon"
        )
        start = datetime(2026, 12, 1, tzinfo=UTC)
        assert schedule.next_run(start, NEW_YORK) == datetime(2026, 12, 24, 9, tzinfo=UTC)

    def test_weekly_on_its_days_from_its_first_day_until_its_last(self) -> None:
        schedule = OnSchedule(
            segment="vip",
            every=Every.WEEK,
            days=("mon",),
            time="09:00",
            from_=date(2026, 6, 8),
            until=date(2026, 6, 15),
        )
        first = schedule.next_run(datetime(2026, 6, 1, tzinfo=UTC), LISBON)
        assert first == datetime(2026, 6, 8, 8, tzinfo=UTC)
        second = schedule.next_run(first, LISBON)
        assert second == datetime(2026, 6, 15, 8, tzinfo=UTC)
        assert schedule.next_run(second, LISBON) is None

    def test_daily(self) -> None:
        schedule = OnSchedule(segment="vip", every=Every.DAY, time="09:00")
        after = datetime(2026, 6, 1, 12, tzinfo=UTC)
        assert schedule.next_run(after, LISBON) == datetime(2026, 6, 2, 8, tzinfo=UTC)
