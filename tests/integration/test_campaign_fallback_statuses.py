"""A delivery fallback's status recorded before its `FellBack` on PostgreSQL: the campaign
process moves the customer on as the status says, and the stats count it (delivered, cost)
once, live and rebuilt. `FallBackDue` commits a fallback's decision and its `FellBack`
together now; this order is left by an earlier version that committed them apart and died
between: the fallback went, and its row, tried again, links it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from adapters.postgres.campaign_stats import CampaignStatsProjection, PostgresCampaignStats
from adapters.postgres.campaigns import PostgresCampaigns
from adapters.postgres.event_store import PostgresEventStore
from application.delivery.fall_back import FallBackDue
from application.processes.campaign_enrollments import CampaignEnrollments
from application.queries.campaign_stats import CampaignStatsQueries
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import Enrollment
from domain.campaign.journey_reader import decode_journey
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.message.aggregate import Message, MessageStatus
from domain.policy.vocabulary import Channel, Purpose
from domain.templates.aggregate import Variant
from tests.integration.campaign_world import CampaignWorld, email_claim

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

    from adapters.templates.jinja import JinjaRenderer

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)  # a Tuesday morning: no quiet hours
JOURNEY: dict[str, Any] = {
    "entry": {"type": "api"},
    "start": "email",
    "steps": {
        "email": {
            "type": "send",
            "channels": ["email"],
            "template": "welcome",
            "purpose": "marketing",
            "team": "growth",
            "fallback": {"channels": ["sms"], "after": "10m"},
            "on_not_delivered": {"within": "1h", "next": "sorry"},
            "next": "thanks",
        },
        "thanks": {"type": "exit", "reason": "delivered"},
        "sorry": {"type": "exit", "reason": "not delivered"},
    },
}


class FallbackWorld(CampaignWorld[CampaignEnrollments]):
    """The campaign process and the stats projection behind it, and the delivery's fallback,
    whose SMS a fast provider reports delivered before `FellBack` is recorded: an earlier
    version's fallback worker decided it and died before recording `FellBack`."""

    def __init__(self, pool: asyncpg.Pool, renderer: JinjaRenderer) -> None:
        super().__init__(pool, renderer, NOW, CampaignEnrollments, [CampaignStatsProjection()])
        self.request = self.process.request_message
        self.fall_back = FallBackDue(self.uows, self.request, self.clock)
        self.reported: list[UUID] = []
        self.queries = CampaignStatsQueries(PostgresCampaigns(pool), PostgresCampaignStats(pool))

    async def earlier_version_dies(self) -> None:
        """An earlier version's fallback worker claims the due fallback, decides it in a
        commit of its own (as it did) and dies before recording `FellBack`; its lease is out
        at once. The fallback's provider reports it delivered meanwhile."""
        async with self.uows() as uow:
            (due,) = await uow.outbox.claim_fallbacks(self.clock.now(), 1, 0.0)
        decided = await self.request(
            due.customer_id,
            due.plan_request,
            idempotency_key=f"fallback:{due.message_id}",
            origin="fallback",
            delivery=due.plan_delivery,
        )
        async with self.uows() as uow:
            messages = uow.repository(Message)
            found = (await messages.get([decided.message_id]))[decided.message_id]
            found.report(
                MessageStatus.DELIVERED,
                "fake",
                self.clock.now(),
                cost=Decimal("0.05"),
                currency="EUR",
            )
            messages.add(found)
        self.reported.append(decided.message_id)
        await self.settle_fully()  # the process reads the status on a page before FellBack

    async def customer(self) -> UUID:
        phone = IdentityClaim(IdentityNormalizer().normalize("phone", "+351912345678"))
        made = await self.upsert((email_claim("ana@example.org"), phone), {"first_name": "Ana"}, {})
        consents = [
            ConsentRecord(channel, Purpose.MARKETING, True, "signup form")
            for channel in (Channel.EMAIL, Channel.SMS)
        ]
        await self.consent(made.customer_id, consents)
        return made.customer_id

    async def campaign(self) -> UUID:
        publish = PublishTemplate(self.uows, self.published, self.clock, self.renderer)
        variants = (
            Variant(Channel.EMAIL, "en", subject="Hello", body="Hi {{ customer.first_name }}"),
            Variant(Channel.SMS, "en", body="Hi {{ customer.first_name }}"),
        )
        await publish("welcome", TemplateDraft(variants, "en"), "test")
        journey = decode_journey(JOURNEY, templates={"welcome"}, segments=frozenset())
        made = Campaign.create("fallbacks", "Fallbacks", journey, "test", self.clock.now())
        made.activate("test", self.clock.now())
        async with self.uows() as uow:
            uow.repository(Campaign).add(made)
        return made.id

    async def enrollment(self) -> Enrollment:
        (found,) = (await PostgresEventStore().load(self.pool, [await self._enrolled()])).values()
        assert isinstance(found, Enrollment)
        return found

    async def _enrolled(self) -> UUID:
        found: UUID = await self.pool.fetchval("SELECT enrollment_id FROM enrollment_index")
        return found


class TestFallbackStatusesOnPostgres:
    async def test_a_fallback_delivered_before_its_fell_back_moves_the_journey_and_counts(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = FallbackWorld(pool, renderer)
        ana = await world.customer()
        campaign = await world.campaign()
        await world.settle_fully()
        await world.enroll(campaign, ana)
        await world.settle_fully()
        world.clock.advance(timedelta(minutes=11))
        await world.earlier_version_dies()
        assert await world.fall_back() == 1
        await world.settle_fully()

        (sms,) = world.reported
        order = await pool.fetch(
            "SELECT topic FROM events WHERE topic LIKE '%Message.StatusReported'"
            " OR topic LIKE '%Message.FellBack' ORDER BY transaction_id, position"
        )
        assert [row["topic"].rsplit(".", 1)[1] for row in order] == ["StatusReported", "FellBack"]
        enrollment = await world.enrollment()
        assert enrollment.exit_reason == "delivered"
        assert enrollment.responses == {"email": frozenset({"delivered"})}
        linked = await pool.fetchval(
            "SELECT step FROM enrollment_messages WHERE message_id = $1", sms
        )
        assert linked == "email"

        stats = await world.queries.get("fallbacks")
        (step,) = [s for s in stats.steps if s.step == "email"]
        (figures,) = [v.figures for v in step.variants if v.arm is None]
        assert (figures.sent, figures.delivered, figures.cost) == (1, 1, {"EUR": "0.05"})
        world.clock.advance(timedelta(hours=1))
        assert await world.timers(100) == 0  # nothing left waiting it out as not delivered
        assert (await world.enrollment()).exit_reason == "delivered"
