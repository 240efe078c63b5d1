from __future__ import annotations

from entrypoints.workers.giving_way import GivingWay


class Clock:
    """Moves on by `step` seconds each time it is read."""

    def __init__(self, step: float = 0.1) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Backlog:
    """Ahead for the first `checks` times it is asked, or for ever."""

    def __init__(self, checks: int | None = None) -> None:
        self.checks = checks
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.checks is None or self.asked <= self.checks


class TestGivingWay:
    async def test_a_lane_with_nothing_ahead_of_it_goes_on_at_once(self) -> None:
        giving_way = GivingWay(Backlog(0), clock=Clock(), check_every=0)
        await giving_way()
        assert giving_way.waited == 0

    async def test_a_lane_waits_until_the_backlog_ahead_of_it_is_read(self) -> None:
        backlog = Backlog(5)
        giving_way = GivingWay(backlog, burst=10.0, clock=Clock(), check_every=0)
        await giving_way()
        assert backlog.asked == 6
        assert 0 < giving_way.waited < 10.0

    async def test_a_backlog_that_lasts_holds_a_lane_up_for_the_burst_only(self) -> None:
        giving_way = GivingWay(Backlog(), burst=2.0, clock=Clock(0.1), check_every=0)
        await giving_way()
        assert 2.0 <= giving_way.waited <= 2.2
        waited = giving_way.waited
        await giving_way()  # at once: the budget is spent
        assert giving_way.waited - waited <= 0.3

    async def test_time_spent_working_earns_the_budget_back(self) -> None:
        clock = Clock(0.1)
        giving_way = GivingWay(Backlog(), burst=2.0, clock=clock, check_every=0)
        await giving_way()
        clock.now += 1.0  # a second of pages read
        waited = giving_way.waited
        await giving_way()
        assert 0.9 <= giving_way.waited - waited <= 1.3
