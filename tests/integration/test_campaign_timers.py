"""Campaign timers in PostgreSQL: claimed with SKIP LOCKED, fired exactly once by concurrent
workers, and again (once) after a worker died mid-step."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID, uuid4

import pytest

from adapters.postgres.campaign_enrollments import (
    EnrollmentTimers,
    PostgresCampaignTimers,
)
from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.process_ports import ProcessPortsOn
from adapters.system.ids import RandomIds
from adapters.templates.jinja import JinjaRenderer
from application.customer.signals import IngestSignals
from application.processes.campaign_enrollments import CampaignEnrollments
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import enrollment_id
from domain.campaign.journey_reader import decode_journey
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.signals.aggregate import SignalReport
from tests.integration.campaign_world import CampaignWorld, email_claim

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

    from ports.campaign_enrollments import CampaignEnrollmentPorts

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
NAME = "campaign_enrollments"
WAIT_THEN_SEND = {
    "entry": {"type": "api"},
    "start": "an-hour-later",
    "steps": {
        "an-hour-later": {"type": "wait", "for": "1h", "next": "welcome"},
        "welcome": {
            "type": "send",
            "channels": ["email"],
            "template": "welcome",
            "purpose": "marketing",
            "team": "growth",
        },
    },
}


class WorkerDied(BaseException):
    """A worker killed mid-step: nothing in it catches that, its transaction rolls back."""


class Firing:
    """Stands for the process: fires what it claims, taking its time, and counts each firing
    whose transaction commits."""

    name = NAME

    def __init__(
        self,
        fired: Counter[UUID] | None = None,
        *,
        takes: float = 0.0,
        dies_after: int | None = None,
        poison: UUID | None = None,
    ) -> None:
        self.poison = poison
        self.takes = takes
        self.dies_after = dies_after  # runs before the worker dies mid-step, once
        self.runs = 0
        self.fired: Counter[UUID] = Counter() if fired is None else fired
        self.pending: list[UUID] = []

    async def due(self, ports: CampaignEnrollmentPorts, limit: int) -> int:
        claimed = await ports.campaign_timers.claim_due(NOW, limit)
        await asyncio.sleep(self.takes)
        await ports.campaign_timers.clear(claimed)
        self.runs += 1
        if self.dies_after is not None and self.runs > self.dies_after:
            self.dies_after = None
            raise WorkerDied("killed mid-step")
        if self.poison in claimed:
            raise ValueError("this enrollment always fails")
        self.pending.extend(claimed)
        return len(claimed)


async def _counted(worker: EnrollmentTimers, process: Firing, batch: int) -> int:
    done = await worker(batch)  # committed: its firings count
    process.fired.update(process.pending)
    process.pending = []
    return done


async def _timers(pool: asyncpg.Pool, count: int, due: datetime = NOW) -> list[UUID]:
    ids = [uuid4() for _ in range(count)]
    campaign = uuid4()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO projection_positions (name) VALUES ($1) ON CONFLICT DO NOTHING", NAME
        )
        await PostgresCampaignTimers(cast("asyncpg.Connection", conn)).set(
            [(each, campaign, due) for each in ids]
        )
    return ids


class TestCampaignTimers:
    async def test_two_concurrent_claimers_take_disjoint_timers(self, pool: asyncpg.Pool) -> None:
        ids = await _timers(pool, 20)
        async with pool.acquire() as one, pool.acquire() as two:
            first_conn = cast("asyncpg.Connection", one)
            second_conn = cast("asyncpg.Connection", two)
            async with first_conn.transaction(), second_conn.transaction():
                first = await PostgresCampaignTimers(first_conn).claim_due(NOW, 12)
                second = await PostgresCampaignTimers(second_conn).claim_due(NOW, 12)
        assert len(first) == 12
        assert len(second) == 8
        assert set(first) | set(second) == set(ids)

    async def test_a_timer_not_due_yet_or_of_a_paused_campaign_is_not_claimed(
        self, pool: asyncpg.Pool
    ) -> None:
        (later,) = await _timers(pool, 1, NOW + timedelta(seconds=1))
        (paused,) = await _timers(pool, 1)
        await pool.execute(
            """INSERT INTO enrollment_campaigns (campaign_id, key, status, version, entry)
               SELECT campaign_id, 'paused', 'paused', 1, '{"type": "api"}'
               FROM campaign_timers WHERE enrollment_id = $1""",
            paused,
        )
        async with pool.acquire() as conn:
            timers = PostgresCampaignTimers(cast("asyncpg.Connection", conn))
            assert await timers.claim_due(NOW, 10) == []
            assert await timers.claim_due(NOW + timedelta(seconds=1), 10) == [later]

    async def test_every_timer_fires_exactly_once_with_two_workers_at_once(
        self, pool: asyncpg.Pool
    ) -> None:
        ids = await _timers(pool, 300)
        fired: Counter[UUID] = Counter()

        async def work() -> None:
            process = Firing(fired, takes=0.01)
            worker = EnrollmentTimers(pool, process, ProcessPortsOn())
            while await _counted(worker, process, 25):
                pass

        await asyncio.gather(work(), work())
        assert fired == Counter(dict.fromkeys(ids, 1))
        assert await pool.fetchval("SELECT count(*) FROM campaign_timers") == 0

    async def test_a_worker_killed_mid_step_leaves_its_timers_to_fire_once_later(
        self, pool: asyncpg.Pool
    ) -> None:
        ids = await _timers(pool, 50)
        process = Firing(dies_after=1)
        worker = EnrollmentTimers(pool, process, ProcessPortsOn())
        assert await _counted(worker, process, 20) == 20
        with pytest.raises(WorkerDied):
            await _counted(worker, process, 20)  # its claim and steps roll back
        assert await pool.fetchval("SELECT count(*) FROM campaign_timers") == 30
        while await _counted(worker, process, 20):
            pass
        assert process.fired == Counter(dict.fromkeys(ids, 1))

    async def test_a_timer_that_always_fails_is_put_off_and_holds_up_no_other(
        self, pool: asyncpg.Pool
    ) -> None:
        (poison,) = await _timers(pool, 1, NOW - timedelta(seconds=1))
        others = await _timers(pool, 9)
        process = Firing(poison=poison)
        worker = EnrollmentTimers(pool, process, ProcessPortsOn())
        while await _counted(worker, process, 4):
            pass
        assert process.fired == Counter(dict.fromkeys(others, 1))
        due_at = await pool.fetchval(
            "SELECT due_at FROM campaign_timers WHERE enrollment_id = $1", poison
        )
        assert due_at == NOW - timedelta(seconds=1) + timedelta(minutes=5)


class DiesAfterItsSteps(CampaignEnrollments):
    """Takes the due steps (and asks the rules), then dies before its transaction commits."""

    dying = True

    async def due(self, ports: CampaignEnrollmentPorts, limit: int) -> int:
        fired = await super().due(ports, limit)
        if self.dying:
            self.dying = False
            raise WorkerDied("killed before the commit")
        return fired


class Journeys(CampaignWorld[DiesAfterItsSteps]):
    """The campaign process on PostgreSQL, following the log behind the read models it reads;
    its first timer run dies before its commit (`process.dying`)."""

    def __init__(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer, projections: Sequence[Any] = ()
    ) -> None:
        super().__init__(pool, renderer, NOW, DiesAfterItsSteps, projections)

    async def customer(self, email: str) -> UUID:
        return await self.opted_in(email_claim(email), {"first_name": "Ana"})

    async def campaign(self) -> UUID:
        await self.email_template("welcome", "Hello")
        journey = decode_journey(WAIT_THEN_SEND, templates={"welcome"}, segments=frozenset())
        made = Campaign.create("welcome", "Welcome", journey, "test", self.clock.now())
        made.activate("test", self.clock.now())
        async with self.uows() as uow:
            uow.repository(Campaign).add(made)
        return made.id

    async def decisions(self) -> int:
        count: int = await self.pool.fetchval(
            "SELECT count(*) FROM events WHERE topic LIKE '%Customer.Message%'"
        )
        return count


class TestCampaignProcessOnPostgres:
    async def test_a_timer_run_killed_after_asking_the_rules_fires_again_and_sends_once(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Journeys(pool, renderer)
        ana = await world.customer("ana@example.org")
        bo = await world.customer("bo@example.org")
        campaign = await world.campaign()
        await world.settle()
        await world.enroll(campaign, ana)
        await world.enroll(campaign, bo)
        await world.settle()
        assert await pool.fetchval("SELECT count(*) FROM campaign_timers") == 2
        world.clock.advance(timedelta(hours=1))
        with pytest.raises(WorkerDied):
            await world.timers(100)
        assert await world.decisions() == 2  # the rules were asked, in their own commits
        assert await pool.fetchval("SELECT count(*) FROM campaign_timers") == 2
        assert await world.timers(100) == 2
        assert await world.timers(100) == 0
        await world.settle()
        assert await world.decisions() == 2
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 2
        exited = await pool.fetchval(
            "SELECT count(*) FROM enrollment_index WHERE exited_at IS NOT NULL"
        )
        assert exited == 2

    async def test_a_signal_enrols_and_another_resolves_the_wait_while_a_timeout_ends_the_other(
        self, pool: asyncpg.Pool, renderer: JinjaRenderer
    ) -> None:
        world = Journeys(pool, renderer)
        world.process.dying = False
        ana = await world.customer("ana@example.org")
        bo = await world.customer("bo@example.org")
        steps = {
            "pay": {
                "type": "wait_for_signal",
                "signal": "order.paid",
                "timeout": "1h",
                "on_signal": "paid",
                "on_timeout": "unpaid",
            },
            "paid": {"type": "exit", "reason": "paid"},
            "unpaid": {"type": "exit", "reason": "unpaid"},
        }
        entry = {
            "type": "signal",
            "signal": "order.placed",
            "where": [{"property": "total", "op": "gte", "value": 50}],
        }
        document = {"entry": entry, "start": "pay", "steps": steps}
        journey = decode_journey(document, templates=frozenset(), segments=frozenset())
        made = Campaign.create("orders", "Orders", journey, "test", world.clock.now())
        made.activate("test", world.clock.now())
        async with world.uows() as uow:
            uow.repository(Campaign).add(made)
        ingest = IngestSignals(world.uows, world.clock, RandomIds())

        async def signal(kind: str, email: str, **properties: Any) -> None:
            claim = IdentityClaim(IdentityNormalizer().normalize("email", email))
            world.sent += 1
            report = SignalReport(f"e{world.sent}", kind, world.clock.now(), (claim,), properties)
            await ingest([report])
            await world.settle()

        await signal("order.placed", "ana@example.org", total=20)
        assert await pool.fetchval("SELECT count(*) FROM enrollment_index") == 0
        await signal("order.placed", "ana@example.org", total=120)
        await signal("order.placed", "bo@example.org", total=80)
        await signal("order.placed", "bo@example.org", total=80)  # in already: no second entry
        assert await pool.fetchval("SELECT count(*) FROM enrollment_index") == 2
        world.clock.advance(timedelta(minutes=30))
        await signal("order.paid", "ana@example.org")
        world.clock.advance(timedelta(minutes=31))
        assert await world.timers(100) == 1
        await world.settle()
        ids = [enrollment_id(made.id, customer, 1) for customer in (ana, bo)]
        found = await PostgresEventStore().load(pool, ids)
        reasons = [getattr(found[each], "exit_reason", None) for each in ids]
        assert reasons == ["paid", "unpaid"]
        assert await pool.fetchval("SELECT count(*) FROM campaign_timers") == 0
