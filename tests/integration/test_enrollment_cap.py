"""A campaign's enrollment cap on PostgreSQL: entries at once, through the API of several
processes or through the campaign process, never take more places than the cap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from adapters.postgres.campaign_enrollments import PostgresEnrollmentCounts
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from application.enrollments.enroll_customer import EnrollCustomer, Enrolled, EnrollmentRefused
from application.processes.campaign_enrollments import CampaignEnrollments
from domain.campaign.aggregate import Campaign
from domain.campaign.journey_reader import decode_journey
from domain.signals.aggregate import SignalReport
from tests.integration.campaign_world import CampaignWorld, email_claim

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

    from adapters.templates.jinja import JinjaRenderer

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
STEPS = {
    "a-day-later": {"type": "wait", "for": "1d", "next": "bye"},
    "bye": {"type": "exit", "reason": "waited"},
}


def capped(cap: int, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "entry": entry,
        "start": "a-day-later",
        "steps": STEPS,
        "policies": {"enrollment_cap": cap},
    }


class Caps(CampaignWorld[CampaignEnrollments]):
    def __init__(self, pool: asyncpg.Pool, renderer: JinjaRenderer) -> None:
        super().__init__(pool, renderer, NOW, CampaignEnrollments)

    async def customers(self, count: int) -> list[UUID]:
        return [await self.opted_in(email_claim(f"c{n}@example.org"), {}) for n in range(count)]

    async def campaign(self, document: dict[str, Any]) -> UUID:
        journey = decode_journey(document, templates=frozenset(), segments=frozenset())
        made = Campaign.create("capped", "Capped", journey, "test", self.clock.now())
        made.activate("test", self.clock.now())
        async with self.uows() as uow:
            uow.repository(Campaign).add(made)
        await self.settle()
        return made.id

    def another_process(self) -> EnrollCustomer:
        """The API's entry as another process of the service has it: its own units of work,
        so only PostgreSQL keeps entries at once apart."""
        return EnrollCustomer(
            PostgresUnitsOfWork(self.pool), self.clock, PostgresEnrollmentCounts()
        )

    async def counted(self, campaign: UUID) -> int:
        found: int = await self.pool.fetchval(
            "SELECT entered FROM campaign_entry_counts WHERE campaign_id = $1", campaign
        )
        return found

    async def indexed(self, campaign: UUID) -> int:
        found: int = await self.pool.fetchval(
            "SELECT count(*) FROM enrollment_index WHERE campaign_id = $1", campaign
        )
        return found


class TestEnrollmentCap:
    async def test_api_entries_at_once_from_many_processes_enrol_exactly_the_cap(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Caps(pool, renderer)
        customers = await world.customers(13)
        campaign = await world.campaign(capped(3, {"type": "api"}))
        late = customers.pop()
        answers = await asyncio.gather(
            *(world.another_process().enter(campaign, customer) for customer in customers),
            return_exceptions=True,
        )
        made = [answer for answer in answers if isinstance(answer, Enrolled)]
        refused = [answer for answer in answers if isinstance(answer, EnrollmentRefused)]
        assert (len(made), len(refused)) == (3, 9), answers
        assert {str(answer) for answer in refused} == {"the enrollment cap of 3 is reached"}
        assert await world.counted(campaign) == 3
        with pytest.raises(EnrollmentRefused, match="the enrollment cap of 3 is reached"):
            await world.enroll(campaign, late)  # after them, as before them
        await world.settle_fully()
        assert await world.indexed(campaign) == 3

    async def test_entries_through_the_process_take_their_places_under_the_same_cap(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Caps(pool, renderer)
        await world.customers(3)
        campaign = await world.campaign(capped(2, {"type": "signal", "signal": "order.placed"}))
        reports = [
            SignalReport(f"e{n}", "order.placed", NOW, (email_claim(f"c{n}@example.org"),))
            for n in range(3)
        ]
        await world.ingest(reports)
        await world.settle_fully()
        assert await world.indexed(campaign) == 2
        assert await world.counted(campaign) == 2
