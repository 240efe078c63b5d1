"""Broadcasts on PostgreSQL: a schedule's occurrence enrols each member of its segment at the
time on their own wall clock, once whatever the workers, and holds while the campaign is paused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import pytest

from adapters.postgres.campaign_schedules import ScheduleTimers
from adapters.postgres.event_store import PostgresEventStore
from adapters.templates.jinja import JinjaRenderer
from application.processes import campaign_enrollments
from application.processes.campaign_enrollments import CampaignEnrollments
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import Enrollment, enrollment_id
from domain.campaign.journey_reader import decode_journey
from tests.integration.campaign_world import CampaignWorld, email_claim

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration
# Tokyo is 9 hours ahead of UTC in December, Lisbon on UTC.
START = datetime(2026, 12, 1, 10, tzinfo=UTC)
TOKYO_NINE = datetime(2026, 12, 2, 0, tzinfo=UTC)
LISBON_NINE = datetime(2026, 12, 2, 9, tzinfo=UTC)


def _daily(**schedule: Any) -> dict[str, Any]:
    entry = {"type": "schedule", "segment": "morning", **schedule}
    return {
        "entry": entry,
        "start": "news",
        "steps": {
            "news": {
                "type": "send",
                "channels": ["email"],
                "template": "news",
                "purpose": "marketing",
                "team": "growth",
            },
        },
        "policies": {"re_entry": "always"},
    }


class Broadcasts(CampaignWorld[CampaignEnrollments]):
    """The enrollments process on PostgreSQL, its schedules run by a durable worker."""

    def __init__(self, pool: asyncpg.Pool, renderer: JinjaRenderer) -> None:
        super().__init__(pool, renderer, START, CampaignEnrollments)
        self.segment_id = uuid4()

    def worker(self) -> ScheduleTimers:
        return ScheduleTimers(self.pool, self.process, self.ports)

    async def member(self, email: str, time_zone: str, opted_in: bool = True) -> UUID:
        profile = {"first_name": "Ana", "time_zone": time_zone}
        customer_id = await self.opted_in(email_claim(email), profile, opted_in)
        await self.pool.execute(
            """INSERT INTO segment_members (segment_id, customer_id, entered_at)
               VALUES ($1, $2, $3)""",
            self.segment_id,
            customer_id,
            self.clock.now(),
        )
        return customer_id

    async def campaign(self, document: dict[str, Any]) -> Campaign:
        await self.pool.execute(
            """INSERT INTO segments (key, segment_id, name, version, condition, updated_at)
               VALUES ('morning', $1, 'Morning', 1, '{}', $2) ON CONFLICT DO NOTHING""",
            self.segment_id,
            self.clock.now(),
        )
        await self.email_template("news", "News")
        journey = decode_journey(document, templates={"news"}, segments={"morning"})
        made = Campaign.create("news", "News", journey, "test", self.clock.now())
        made.activate("test", self.clock.now())
        async with self.uows() as uow:
            uow.repository(Campaign).add(made)
        await self.settle()
        return made

    async def change(self, campaign: Campaign, how: str) -> None:
        async with self.uows() as uow:
            repository = uow.repository(Campaign)
            found = (await repository.get([campaign.id]))[campaign.id]
            if how == "archive":
                found.archive("test", "over", self.clock.now())
            else:
                getattr(found, how)("test", self.clock.now())
            repository.add(found)
        await self.settle()

    async def settle(self) -> None:
        await self.settle_fully()

    async def at(self, moment: datetime) -> int:
        self.clock.advance(moment - self.clock.now())
        ran = await self.worker()(10)
        await self.settle()
        return ran

    async def entered(self) -> dict[UUID, list[datetime]]:
        rows = await self.pool.fetch(
            "SELECT customer_id, entered_at FROM enrollment_index ORDER BY entered_at"
        )
        found: dict[UUID, list[datetime]] = {}
        for row in rows:
            found.setdefault(row["customer_id"], []).append(row["entered_at"])
        return found

    async def outbox(self) -> int:
        count: int = await self.pool.fetchval("SELECT count(*) FROM outbox")
        return count


class TestScheduledBroadcasts:
    async def test_each_member_enters_at_nine_on_their_own_clock_and_is_sent_once(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Broadcasts(pool, renderer)
        tokyo = await world.member("aiko@example.org", "Asia/Tokyo")
        lisbon = await world.member("joao@example.org", "Europe/Lisbon")
        await world.campaign(_daily(every="day", time="09:00"))
        await world.at(START)  # the first run finds when it next comes round
        assert await world.entered() == {}
        await world.at(TOKYO_NINE - timedelta(minutes=1))
        assert await world.entered() == {}
        await world.at(TOKYO_NINE)
        assert await world.entered() == {tokyo: [TOKYO_NINE]}
        await world.at(LISBON_NINE - timedelta(seconds=1))
        assert await world.entered() == {tokyo: [TOKYO_NINE]}
        await world.at(LISBON_NINE)
        await world.at(LISBON_NINE + timedelta(minutes=5))  # again: nothing new is due
        assert await world.entered() == {tokyo: [TOKYO_NINE], lisbon: [LISBON_NINE]}
        assert await world.outbox() == 2
        await world.at(TOKYO_NINE + timedelta(days=1))  # the next day comes round again
        assert len((await world.entered())[tokyo]) == 2

    async def test_a_schedule_in_one_zone_reaches_everybody_at_once(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Broadcasts(pool, renderer)
        tokyo = await world.member("aiko@example.org", "Asia/Tokyo")
        lisbon = await world.member("joao@example.org", "Europe/Lisbon")
        await world.campaign(_daily(on="2026-12-02", time="09:00", time_zone="Europe/Lisbon"))
        await world.at(START)
        await world.at(TOKYO_NINE)
        assert await world.entered() == {}
        await world.at(LISBON_NINE)
        assert await world.entered() == {tokyo: [LISBON_NINE], lisbon: [LISBON_NINE]}
        assert await pool.fetchval("SELECT due_at FROM campaign_schedules") is None

    async def test_a_one_off_due_soon_after_going_live_is_sent_though_first_looked_at_after(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Broadcasts(pool, renderer)
        ana = await world.member("ana@example.org", "Europe/Lisbon")
        soon = START + timedelta(minutes=1)
        await world.campaign(_daily(at=soon.isoformat()))  # live at START
        first_look = START + timedelta(minutes=2)  # past `at`: the worker was busy till then
        await world.at(first_look)
        assert await world.entered() == {ana: [first_look]}
        assert await world.outbox() == 1

    async def test_a_one_off_already_past_when_the_campaign_went_live_is_not_sent(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Broadcasts(pool, renderer)
        await world.member("ana@example.org", "Europe/Lisbon")
        await world.campaign(_daily(at=(START - timedelta(minutes=1)).isoformat()))
        await world.at(START + timedelta(minutes=2))
        assert await world.entered() == {}

    async def test_a_broadcast_of_many_slices_enrols_sends_and_records_each_member_once(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Slices of 2 sends, 1 a commit: 7 members go through 4 slices, pipelined.
        monkeypatch.setattr(campaign_enrollments, "_SENDS_PER_COMMIT", 1)
        monkeypatch.setattr(campaign_enrollments, "_BROADCAST_SLICE", 2)
        world = Broadcasts(pool, renderer)
        members = [await world.member(f"m{n}@example.org", "Europe/Lisbon") for n in range(7)]
        await world.campaign(_daily(on="2026-12-02", time="09:00", time_zone="Europe/Lisbon"))
        await world.at(START)
        await world.at(LISBON_NINE)
        assert await world.entered() == {member: [LISBON_NINE] for member in members}
        assert await world.outbox() == 7
        origins = await pool.fetch(
            """SELECT convert_from(payload, 'UTF8') AS payload FROM events
               WHERE topic LIKE '%:Customer.MessageAllowed'"""
        )
        assert len(origins) == 7
        assert all('"campaign:' in row["payload"] for row in origins)
        # Each send tells the rules the broadcast's reach, for an approval over a size.
        assert all('"audience":7' in row["payload"] for row in origins)
        steps = await pool.fetch(
            """SELECT stream_id, count(*) AS n FROM events
               WHERE topic LIKE '%:Enrollment.%' GROUP BY stream_id"""
        )
        # Entered, StepTaken, SendRequested, Exited: each enrollment's events written once.
        assert sorted(row["n"] for row in steps) == [4] * 7

    async def test_a_broadcast_of_many_slices_enrols_no_more_members_than_its_cap(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(campaign_enrollments, "_SENDS_PER_COMMIT", 1)
        monkeypatch.setattr(campaign_enrollments, "_BROADCAST_SLICE", 2)
        world = Broadcasts(pool, renderer)
        for n in range(7):
            await world.member(f"m{n}@example.org", "Europe/Lisbon")
        document = _daily(on="2026-12-02", time="09:00", time_zone="Europe/Lisbon")
        document["policies"] |= {"enrollment_cap": 3}
        campaign = await world.campaign(document)
        await world.at(START)
        await world.at(LISBON_NINE)
        assert len(await world.entered()) == 3
        assert await world.outbox() == 3
        counted = await pool.fetchval(
            "SELECT entered FROM campaign_entry_counts WHERE campaign_id = $1", campaign.id
        )
        assert counted == 3

    async def test_a_branch_right_after_a_broadcast_send_sees_the_rules_suppress_it(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Slices of 2: each slice's sends are decided while the next one enrols.
        monkeypatch.setattr(campaign_enrollments, "_SENDS_PER_COMMIT", 1)
        monkeypatch.setattr(campaign_enrollments, "_BROADCAST_SLICE", 2)
        world = Broadcasts(pool, renderer)
        members = [
            await world.member(f"m{n}@example.org", "Europe/Lisbon", opted_in=n % 2 == 0)
            for n in range(5)
        ]
        document = _daily(on="2026-12-02", time="09:00", time_zone="Europe/Lisbon")
        document["steps"] = {
            "news": {**document["steps"]["news"], "next": "check"},
            "check": {
                "type": "branch",
                "cases": [{"response": {"step": "news", "is": ["suppressed"]}, "next": "unsent"}],
                "else": "sent",
            },
            "unsent": {"type": "exit", "reason": "not sent"},
            "sent": {"type": "exit", "reason": "sent"},
        }
        campaign = await world.campaign(document)
        await world.at(START)
        await world.at(LISBON_NINE)
        ids = [enrollment_id(campaign.id, member, 1) for member in members]
        found = await PostgresEventStore().load(pool, ids)
        reasons = [getattr(found.get(each), "exit_reason", None) for each in ids]
        assert reasons == ["sent", "not sent", "sent", "not sent", "sent"]
        assert all(isinstance(found[each], Enrollment) for each in ids)
        assert await world.outbox() == 3
        assert await pool.fetchval("SELECT count(*) FROM campaign_timers") == 0

    async def test_one_occurrence_enrols_once_under_two_concurrent_workers(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Broadcasts(pool, renderer)
        members = [await world.member(f"m{i}@example.org", "Europe/Lisbon") for i in range(20)]
        at = (START + timedelta(hours=1)).isoformat()
        await world.campaign(_daily(at=at))
        await world.at(START)
        world.clock.advance(timedelta(hours=1))
        ran = await asyncio.gather(world.worker()(10), world.worker()(10))
        assert sorted(ran) == [0, 1]
        assert await world.at(START + timedelta(hours=2)) == 0
        entered = await world.entered()
        assert {customer: len(times) for customer, times in entered.items()} == dict.fromkeys(
            members, 1
        )
        assert await pool.fetchval("SELECT count(*) FROM campaign_schedule_entries") == 20
        assert await world.outbox() == 20
        # Each outbox row went out with its decision, whose origin names the enrollment's step.
        unexplained = await pool.fetchval(
            """SELECT count(*) FROM outbox o
               WHERE NOT EXISTS (SELECT 1 FROM decisions d WHERE d.message_id = o.message_id)"""
        )
        assert unexplained == 0
        origins = await pool.fetch(
            """SELECT convert_from(payload, 'UTF8') AS payload FROM events
               WHERE topic LIKE '%:Customer.MessageAllowed'"""
        )
        assert len(origins) == 20
        assert all('"campaign:news:1:news:' in row["payload"] for row in origins)

    async def test_a_paused_campaign_holds_its_broadcast_and_an_archived_one_stops(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Broadcasts(pool, renderer)
        lisbon = await world.member("joao@example.org", "Europe/Lisbon")
        campaign = await world.campaign(_daily(every="day", time="09:00"))
        await world.at(START)
        await world.change(campaign, "pause")
        assert await world.at(LISBON_NINE) == 0
        assert await world.entered() == {}
        await world.change(campaign, "resume")
        await world.at(LISBON_NINE + timedelta(hours=1))  # held: it enters on resuming
        assert list(await world.entered()) == [lisbon]
        await world.change(campaign, "archive")
        assert await world.at(LISBON_NINE + timedelta(days=1)) == 0
        assert await pool.fetchval("SELECT count(*) FROM campaign_schedules") == 0
        assert len((await world.entered())[lisbon]) == 1
