"""The campaign process on PostgreSQL: a goal reached after leaving the journey converts within
its window (the control group's too), and a customer entering on a signal enters when it was
recorded, however late the process handles it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adapters.postgres.event_store import PostgresEventStore
from application.processes.campaign_enrollments import CampaignEnrollments
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import Enrollment, enrollment_id
from domain.campaign.journey_reader import decode_journey
from domain.signals.aggregate import SignalReport
from tests.integration.campaign_world import CampaignWorld, email_claim

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

    from adapters.templates.jinja import JinjaRenderer

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
HELD_OUT = {
    "entry": {"type": "api"},
    "start": "offer",
    "steps": {
        "offer": {
            "type": "split",
            "arms": [{"name": "mail", "weight": 0, "next": "bye"}],
            "control": {"weight": 1},
        },
        "bye": {"type": "exit", "reason": "nothing to send"},
    },
    "goal": {"signal": "purchase", "within": "7d"},
}
LATE_WAIT = {
    "entry": {"type": "signal", "signal": "order.placed"},
    "start": "an-hour-later",
    "steps": {
        "an-hour-later": {"type": "wait", "for": "1h", "next": "bye"},
        "bye": {"type": "exit", "reason": "waited"},
    },
}


class Goals(CampaignWorld[CampaignEnrollments]):
    def __init__(self, pool: asyncpg.Pool, renderer: JinjaRenderer) -> None:
        super().__init__(pool, renderer, NOW, CampaignEnrollments)

    async def campaign(self, key: str, document: dict[str, Any]) -> UUID:
        journey = decode_journey(document, templates=frozenset(), segments=frozenset())
        made = Campaign.create(key, key.title(), journey, "test", self.clock.now())
        made.activate("test", self.clock.now())
        async with self.uows() as uow:
            uow.repository(Campaign).add(made)
        await self.settle()
        return made.id

    async def signal(self, kind: str, email: str) -> None:
        self.sent += 1
        report = SignalReport(f"e{self.sent}", kind, self.clock.now(), (email_claim(email),))
        await self.ingest([report])

    async def enrollment(self, campaign: UUID, customer: UUID) -> Enrollment:
        found = await PostgresEventStore().load(self.pool, [enrollment_id(campaign, customer, 1)])
        (enrollment,) = found.values()
        assert isinstance(enrollment, Enrollment)
        return enrollment


class TestGoalAfterLeaving:
    async def test_the_control_group_converts_within_the_window_and_not_after_it(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Goals(pool, renderer)
        ana = await world.opted_in(email_claim("ana@example.org"), {})
        bo = await world.opted_in(email_claim("bo@example.org"), {})
        campaign = await world.campaign("held-out", HELD_OUT)
        await world.enroll(campaign, ana)
        await world.enroll(campaign, bo)
        await world.settle()
        windows = await pool.fetch(
            "SELECT goal_until FROM enrollment_index WHERE exited_at IS NOT NULL"
        )
        assert [row["goal_until"] for row in windows] == [NOW + 7 * DAY] * 2
        world.clock.advance(2 * DAY)
        await world.signal("purchase", "ana@example.org")
        world.clock.advance(6 * DAY)
        await world.signal("purchase", "bo@example.org")
        await world.settle()
        converted = await world.enrollment(campaign, ana)
        assert converted.converted_at == NOW + 2 * DAY
        assert converted.exit_reason == "held out in the control group of 'offer'"
        assert (await world.enrollment(campaign, bo)).converted_at is None
        open_goals = await pool.fetchval(
            "SELECT count(*) FROM enrollment_index WHERE goal_until IS NOT NULL"
        )
        assert open_goals == 1  # bo's, closed by time; ana's, by her conversion


class TestEntryTime:
    async def test_a_signal_handled_late_enters_its_customer_when_it_was_recorded(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Goals(pool, renderer)
        ana = await world.opted_in(email_claim("ana@example.org"), {})
        campaign = await world.campaign("late", LATE_WAIT)
        await world.signal("order.placed", "ana@example.org")
        world.clock.advance(5 * HOUR)
        await world.settle()
        enrollment = await world.enrollment(campaign, ana)
        assert enrollment.entered_at == NOW
        due_at = await pool.fetchval("SELECT due_at FROM campaign_timers")
        assert due_at == NOW + HOUR
        assert await world.timers(10) == 1
        assert (await world.enrollment(campaign, ana)).exit_reason == "waited"
