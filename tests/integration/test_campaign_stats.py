"""Campaign stats on PostgreSQL: an A/B campaign with a control group, taken through the real
enrollments process, counted by the stats projection; a rebuild counts the same."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import pytest
from litestar.testing import AsyncTestClient

from adapters.postgres.api_keys import PostgresApiKeyStore
from adapters.postgres.campaign_stats import CampaignStatsProjection, PostgresCampaignStats
from adapters.postgres.campaigns import PostgresCampaigns
from adapters.postgres.event_store import PostgresEventStore
from adapters.system.ids import RandomIds
from adapters.templates.jinja import JinjaRenderer
from application.queries.campaign_stats import CampaignStats, CampaignStatsQueries, Figures
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import Enrollment
from domain.campaign.journey import CONTROL
from domain.campaign.journey_reader import decode_journey
from domain.campaign.stats import JOURNEY
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.message.aggregate import Message, MessageStatus
from domain.signals.aggregate import SignalReport
from entrypoints.http.app import create_app
from entrypoints.ioc import make_container
from entrypoints.settings import Settings
from ports.api_keys import Role
from tests.integration.test_campaign_timers import Journeys

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration

MAIL = {
    "type": "send",
    "channels": ["email"],
    "template": "welcome",
    "purpose": "marketing",
    "team": "growth",
    "next": "a-week",
}
A_B_TEST: dict[str, Any] = {
    "entry": {"type": "api"},
    "start": "offer",
    "steps": {
        "offer": {
            "type": "split",
            "arms": [
                {"name": "ten-off", "weight": 1, "next": "mail-ten-off"},
                {"name": "free-ship", "weight": 1, "next": "mail-free-ship"},
            ],
            "control": {"weight": 1, "next": "a-week"},
        },
        "mail-ten-off": MAIL,
        "mail-free-ship": MAIL,
        "a-week": {"type": "wait", "for": "7d"},
    },
    "goal": {"signal": "purchase", "within": "7d"},
}
CUSTOMERS = 12


class Stats(Journeys):
    """The enrollments process with the stats projection behind it, in the same runner."""

    def __init__(self, pool: asyncpg.Pool, renderer: JinjaRenderer) -> None:
        super().__init__(pool, renderer, [CampaignStatsProjection()])
        self.process.dying = False
        self.queries = CampaignStatsQueries(PostgresCampaigns(pool), PostgresCampaignStats(pool))

    async def campaign(self) -> UUID:
        await super().campaign()  # publishes the template
        journey = decode_journey(A_B_TEST, templates={"welcome"}, segments=frozenset())
        made = Campaign.create("spring-offer", "Spring offer", journey, "test", self.clock.now())
        made.activate("test", self.clock.now())
        async with self.uows() as uow:
            uow.repository(Campaign).add(made)
        return made.id

    async def settle(self) -> None:
        """Until every projection has read the whole log: the readable end stops short of it
        while a transaction anywhere on the server is open (other tests', too)."""
        await self.runner.setup()
        for _ in range(1200):
            await self.runner.catch_up()
            if all(each.events_behind == 0 for each in await self.runner.status()):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the projections did not catch up in 60 s")

    async def purchase(self, email: str) -> None:
        claim = IdentityClaim(IdentityNormalizer().normalize("email", email))
        self.sent += 1
        at = self.clock.now()
        await self.ingest([SignalReport(f"p{self.sent}", "purchase", at, (claim,))])

    async def deliver(self, message_ids: list[UUID], cost: Decimal) -> None:
        async with self.uows() as uow:
            messages = uow.repository(Message)
            found = await messages.get(message_ids)
            for message in found.values():
                message.report(
                    MessageStatus.DELIVERED, "fake", self.clock.now(), cost=cost, currency="EUR"
                )
            messages.add(*found.values())

    async def enrollments(self, campaign: UUID) -> list[Enrollment]:
        ids = [r[0] for r in await self.pool.fetch("SELECT enrollment_id FROM enrollment_index")]
        loaded = await PostgresEventStore().load(self.pool, ids)
        found = [cast("Enrollment", each) for each in loaded.values()]
        return [each for each in found if each.campaign_id == campaign]


def figures(stats: CampaignStats, step: str, split: str | None, arm: str | None) -> Figures:
    variants = (
        stats.journey
        if step == JOURNEY
        else next(s.variants for s in stats.steps if s.step == step)
    )
    found = [v.figures for v in variants if (v.split, v.arm) == (split, arm)]
    return found[0] if found else Figures()


async def counters(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    # A counter back at 0 (waiting, once nobody is) stays as a row; the read model leaves it out.
    rows = await pool.fetch(
        "SELECT * FROM campaign_stats WHERE value <> 0 ORDER BY 1, 2, 3, 4, 5, 6"
    )
    return [tuple(row) for row in rows]


class TestCampaignStatsOnPostgres:
    async def test_the_split_and_the_stats_add_up_to_the_enrollments_and_a_rebuild_agrees(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Stats(pool, renderer)
        emails = [f"c{i}@example.org" for i in range(CUSTOMERS)]
        customers = [await world.customer(email) for email in emails]
        campaign = await world.campaign()
        await world.settle()
        for customer in customers:
            await world.enroll(campaign, customer)
        await world.settle()
        allowed = await pool.fetch("SELECT message_id FROM enrollment_messages ORDER BY 1")
        delivered = [row["message_id"] for row in allowed[: len(allowed) // 2]]
        await world.deliver(delivered, Decimal("0.012"))
        world.clock.advance(timedelta(hours=1))
        for email in emails[::2]:
            await world.purchase(email)
        await world.settle()

        enrollments = await world.enrollments(campaign)
        arms = Tally(each.arms["offer"] for each in enrollments)
        converted = Tally(each.arms["offer"] for each in enrollments if each.converted_at)
        stats = await world.queries.get("spring-offer")

        assert len(enrollments) == CUSTOMERS
        assert figures(stats, JOURNEY, None, None).entered == CUSTOMERS
        assert figures(stats, "offer", None, None).entered == CUSTOMERS
        for arm in ("ten-off", "free-ship", CONTROL):
            drawn = figures(stats, JOURNEY, "offer", arm)
            assert (drawn.entered, drawn.converted) == (arms[arm], converted[arm]), arm
        assert sum(arms.values()) == CUSTOMERS
        assert figures(stats, JOURNEY, None, None).converted == CUSTOMERS // 2
        sent = [figures(stats, f"mail-{arm}", None, None).sent for arm in ("ten-off", "free-ship")]
        assert sent == [arms["ten-off"], arms["free-ship"]]
        assert sum(sent) == len(allowed)
        reached = sum(
            figures(stats, f"mail-{arm}", None, None).delivered for arm in ("ten-off", "free-ship")
        )
        assert reached == len(delivered)
        costs = [
            Decimal(figures(stats, f"mail-{arm}", None, None).cost.get("EUR", "0"))
            for arm in ("ten-off", "free-ship")
        ]
        assert sum(costs) == Decimal("0.012") * len(delivered)
        waiting = figures(stats, "a-week", None, None).waiting
        assert waiting == CUSTOMERS - CUSTOMERS // 2  # the others converted, and left
        (split,) = stats.comparisons
        assert split.control is not None
        assert split.control.enrollments == arms[CONTROL]
        assert {arm.arm for arm in split.arms} == {"ten-off", "free-ship"}
        assert split.reached == split.drawn == CUSTOMERS
        for step in stats.steps:  # no variant converts at a step it did not enter
            for variant in step.variants:
                assert variant.figures.converted <= variant.figures.entered, (step.step, variant)
        assert not [v for s in stats.steps if s.step == "offer" for v in s.variants if v.arm]

        live = await counters(pool)
        await world.runner.rebuild("campaign_stats")
        assert await counters(pool) == live


class TestCampaignStatsApi:
    async def test_a_reader_gets_the_stats_by_key_or_id_and_an_unknown_campaign_is_a_404(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer, database_url: str
    ) -> None:
        world = Stats(pool, renderer)
        customers = [await world.customer(f"c{i}@example.org") for i in range(3)]
        campaign = await world.campaign()
        await world.settle()
        for customer in customers:
            await world.enroll(campaign, customer)
        await world.settle()
        settings = Settings.from_env({"DATABASE_URL": database_url, "CHORUS_CLOCK": "manual"})
        keys = PostgresApiKeyStore(pool, world.clock, RandomIds())
        auditor = await keys.create(Role.AUDITOR, "reports")
        container = make_container(settings)
        try:
            app = create_app(container, settings)
            headers = {"Authorization": f"Bearer {auditor.secret}"}
            async with AsyncTestClient(app) as http:
                by_key = await http.get("/v1/campaigns/spring-offer/stats", headers=headers)
                by_id = await http.get(f"/v1/campaigns/{campaign}/stats", headers=headers)
                unknown = await http.get("/v1/campaigns/no-such/stats", headers=headers)
                anonymous = await http.get("/v1/campaigns/spring-offer/stats")
        finally:
            await container.close()
        assert by_key.status_code == 200, by_key.text
        answer = by_key.json()
        assert by_id.json() == answer
        assert (answer["key"], answer["campaign_id"]) == ("spring-offer", str(campaign))
        everyone = next(v for v in answer["journey"] if v["split"] is None)
        assert everyone["figures"]["entered"] == 3
        drawn = [v["figures"]["entered"] for v in answer["journey"] if v["split"] == "offer"]
        assert sum(drawn) == 3
        assert {step["step"] for step in answer["steps"]} >= {"offer"}
        assert answer["comparisons"][0]["split"] == "offer"
        assert unknown.status_code == 404
        assert anonymous.status_code == 401
