"""The `campaigns` listing on PostgreSQL: written in the statement of the campaign's events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from adapters.postgres.campaigns import PostgresCampaigns, PostgresJourneyReferences
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from application.campaigns.change_status import ChangeCampaignStatus, StatusChange
from application.campaigns.define_campaign import CampaignDraft, CreateCampaign, EditCampaign
from application.queries.campaigns import CampaignQueries
from application.segments.define_segment import DefineSegment, SegmentDraft
from domain.campaign.aggregate import Campaign, CampaignStatus, campaign_id
from domain.campaign.journey_reader import JourneyInvalid
from domain.policy.vocabulary import Channel
from domain.segments.conditions import decode_condition
from domain.templates.aggregate import Template, Variant
from ports.campaigns import CampaignVersion, InvalidCursor
from ports.unit_of_work import ConcurrencyConflict
from tests.unit.domain.campaign.journeys import TEMPLATES, example, journey, send

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 5, 9, tzinfo=UTC)
KEY = "order-follow-up"


class World:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.clock = ManualClock(T0)
        self.uows = PostgresUnitsOfWork(pool)
        references = PostgresJourneyReferences(pool)
        self.create = CreateCampaign(self.uows, self.clock, references)
        self.edit = EditCampaign(self.uows, self.clock, references)
        status = ChangeCampaignStatus(self.uows, self.clock)
        self.activate = lambda ref, by: status(ref, StatusChange.ACTIVATE, by)
        self.archive = lambda ref, by, reason: status(ref, StatusChange.ARCHIVE, by, reason)
        self.queries = CampaignQueries(PostgresCampaigns(pool))

    async def templates(self) -> None:
        async with self.uows() as uow:
            for key in TEMPLATES:
                template = Template.create(key, T0)
                template.publish((Variant(Channel.SMS, "en", body="Hi"),), "en", "", "ana", T0)
                uow.repository(Template).add(template)


@pytest.fixture
async def world(pool: asyncpg.Pool) -> World:
    made = World(pool)
    await made.templates()
    return made


def later(document_for: str = "2d") -> CampaignDraft:
    document = example()
    document["steps"]["a-day-later"]["for"] = document_for
    return CampaignDraft("Order follow-up", document)


class TestCampaignListing:
    async def test_each_version_is_listed_with_its_time_and_author(self, world: World) -> None:
        await world.create(KEY, CampaignDraft("Order follow-up", example()), "ana")
        await world.activate(KEY, "ana")
        world.clock.advance(timedelta(hours=1))
        await world.edit(KEY, later("2d"), "bea")
        world.clock.advance(timedelta(hours=1))
        await world.edit(KEY, later("3d"), "cy")
        found = await world.queries.get(KEY)
        assert (found.summary.status, found.summary.version) == (CampaignStatus.ACTIVE, 3)
        assert found.journey["steps"]["a-day-later"]["for"] == "3d"
        assert found.versions == (
            CampaignVersion(1, T0, "ana"),
            CampaignVersion(2, T0 + timedelta(hours=1), "bea"),
            CampaignVersion(3, T0 + timedelta(hours=2), "cy"),
        )
        assert (await world.queries.get(str(campaign_id(KEY)))).summary.key == KEY

    async def test_a_stale_writer_loses_its_events_and_its_row(self, world: World) -> None:
        await world.create(KEY, CampaignDraft("Order follow-up", example()), "ana")
        stream = campaign_id(KEY)
        another_process = PostgresUnitsOfWork(world.pool)

        async def rename_what_was_read_before_the_activation() -> None:
            async with another_process() as uow:
                campaigns = uow.repository(Campaign)
                stale = (await campaigns.get([stream]))[stream]
                await world.activate(KEY, "ana")
                stale.edit("Renamed", stale.journey, "bea", T0)
                campaigns.add(stale)

        with pytest.raises(ConcurrencyConflict):
            await rename_what_was_read_before_the_activation()
        found = await world.queries.get(KEY)
        assert (found.summary.name, found.summary.status) == ("Order follow-up", "active")
        assert found.versions == (CampaignVersion(1, T0, "ana"),)

    async def test_a_refused_journey_stores_nothing(self, world: World) -> None:
        document = journey({"hello": send("no-such-template")})
        with pytest.raises(JourneyInvalid) as refusal:
            await world.create(KEY, CampaignDraft("Hello", document), "ana")
        assert refusal.value.path == "$.journey.steps.hello.template"
        assert await world.pool.fetchval("SELECT count(*) FROM campaigns") == 0
        assert (
            await world.pool.fetchval(
                "SELECT count(*) FROM events WHERE stream_id = $1", campaign_id(KEY)
            )
            == 0
        )

    async def test_racing_editors_each_publish_a_version(self, world: World) -> None:
        await world.create(KEY, CampaignDraft("Order follow-up", example()), "ana")
        await world.activate(KEY, "ana")
        await asyncio.gather(*(world.edit(KEY, later(f"{n}d"), f"key-{n}") for n in (2, 3, 4)))
        found = await world.queries.get(KEY)
        assert [v.version for v in found.versions] == [1, 2, 3, 4]
        assert {v.by for v in found.versions[1:]} == {"key-2", "key-3", "key-4"}

    async def test_campaigns_are_paged_by_key_and_filtered_by_status(self, world: World) -> None:
        for key in ("c", "a", "b", "d"):
            await world.create(key, CampaignDraft(key, example()), "ana")
        await world.activate("b", "ana")
        await world.archive("d", "ana", "done")
        first = await world.queries.list(limit=3)
        assert [s.key for s in first.items] == ["a", "b", "c"]
        rest = await world.queries.list(after=first.next_cursor, limit=3)
        assert ([s.key for s in rest.items], rest.next_cursor) == (["d"], None)
        active = await world.queries.list(status=CampaignStatus.ACTIVE)
        assert [s.key for s in active.items] == ["b"]
        archived = await world.queries.list(status=CampaignStatus.ARCHIVED)
        assert [s.key for s in archived.items] == ["d"]
        with pytest.raises(InvalidCursor):
            await world.queries.list(after="AA")

    async def test_journeys_may_name_the_segments_defined(self, world: World) -> None:
        vip = decode_condition({"type": "attribute", "name": "tier", "op": "eq", "value": "vip"})
        await DefineSegment(world.uows, world.clock)("vip", SegmentDraft("VIP", "", vip), "ana")
        document = journey(
            {
                "vips": {
                    "type": "branch",
                    "cases": [{"in_segment": "vip", "next": "hello"}],
                    "else": "hello",
                },
                "hello": send("welcome"),
            }
        )
        written = await world.create("vips", CampaignDraft("VIPs", document), "ana")
        assert written.created
