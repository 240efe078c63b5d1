from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.process_ports import ProcessPortsOn
from adapters.postgres.processes import ProcessProjection
from adapters.postgres.projections import NotRebuildable, ProjectionRunner
from adapters.postgres.segment_evaluator import SegmentTimers
from adapters.postgres.segments import PostgresSegments, SegmentMembers
from adapters.postgres.signal_activity import SignalActivity
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from application.customer.signals import IngestSignals
from application.customer.upsert_customer import UpsertCustomer
from application.processes.segment_evaluator import SegmentEvaluator
from application.segments.define_segment import (
    DefineSegment,
    DeleteSegment,
    SegmentDraft,
    SegmentExists,
)
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.segments.aggregate import segment_id
from domain.segments.conditions import decode_condition
from domain.signals.aggregate import SignalReport
from tests.integration.readable_log import reading_every_commit

pytestmark = pytest.mark.integration
GB = IdentityNormalizer("GB")
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
BUYERS = {"type": "signal_count", "signal": "order.placed", "within": "1h", "op": "gte", "value": 2}
LAPSED = {"type": "no_signal", "signal": "login", "for": "14d"}


def claims(*identities: str) -> tuple[IdentityClaim, ...]:
    return tuple(IdentityClaim(GB.parse(i)) for i in identities)


class World:
    """Chorus's write side and read side on one database, with a clock the test moves."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.clock = ManualClock(T0)
        self.store = PostgresUnitsOfWork(pool)
        self.segments = PostgresSegments(pool)
        self.ingest = IngestSignals(self.store, self.clock, RandomIds())
        self.upsert = UpsertCustomer(self.store, self.clock, RandomIds())
        self.define = DefineSegment(self.store, self.clock)
        self.delete = DeleteSegment(self.store, self.clock)
        ports = ProcessPortsOn()
        self.evaluator = SegmentEvaluator(self.clock, page=3)
        self.timers = SegmentTimers(pool, self.evaluator, ports)
        runner = ProjectionRunner(
            pool,
            [
                CustomerDirectory(),
                SignalActivity(),
                ProcessProjection(self.evaluator, ports),
                SegmentMembers(),
            ],
            page_size=4,
        )
        self.runner = reading_every_commit(runner, pool)
        self.sent = 0

    async def signal(self, kind: str, who: str, at: datetime | None = None, **props: Any) -> None:
        self.sent += 1
        await self.ingest(
            [SignalReport(f"e{self.sent}", kind, at or self.clock.now(), claims(who), props)]
        )

    async def segment(self, key: str, condition: dict[str, Any]) -> UUID:
        draft = SegmentDraft(key.title(), "", decode_condition(condition))
        await self.define(key, draft, "test")
        return segment_id(key)

    async def settle(self) -> None:
        await self.runner.setup()
        await self.runner.catch_up()
        while await self.timers(100):
            pass
        await self.runner.catch_up()

    async def members(self, key: str) -> set[str]:
        rows = await self.pool.fetch(
            "SELECT d.identities FROM segment_members m JOIN customer_directory d USING"
            " (customer_id) WHERE m.segment_id = $1",
            segment_id(key),
        )
        return {row["identities"][0] for row in rows}

    async def facts(self, topic_suffix: str) -> list[tuple[str, str]]:
        rows = await self.pool.fetch(
            "SELECT topic, payload FROM events WHERE topic LIKE $1 ORDER BY position",
            f"%Membership.{topic_suffix}",
        )
        return [(row["topic"].rpartition(".")[2], row["payload"]) for row in rows]


@pytest.fixture
def world(pool: asyncpg.Pool) -> World:
    return World(pool)


class TestBackfill:
    async def test_a_new_segment_finds_customers_from_signals_recorded_before_it_existed(
        self, world: World
    ) -> None:
        await world.signal("order.placed", "email:ana@example.org")
        await world.signal("order.placed", "email:ana@example.org")
        await world.signal("order.placed", "email:bo@example.org")
        await world.settle()
        world.clock.advance(timedelta(minutes=10))
        await world.segment("buyers", BUYERS)
        await world.settle()
        assert await world.members("buyers") == {"email:ana@example.org"}
        assert len(await world.facts("Entered")) == 1


class TestRealTime:
    async def test_membership_follows_signals_as_they_arrive(self, world: World) -> None:
        await world.segment("buyers", BUYERS)
        await world.signal("order.placed", "email:bo@example.org")
        await world.settle()
        assert await world.members("buyers") == set()
        await world.signal("order.placed", "email:bo@example.org")
        await world.settle()
        assert await world.members("buyers") == {"email:bo@example.org"}

    async def test_a_property_filter_and_a_profile_attribute_combine(self, world: World) -> None:
        await world.segment(
            "big-gold",
            {
                "type": "all",
                "conditions": [
                    {"type": "attribute", "name": "tier", "op": "eq", "value": "gold"},
                    {
                        "type": "signal_sum",
                        "signal": "order.placed",
                        "property": "total",
                        "within": "30d",
                        "op": "gte",
                        "value": 100,
                    },
                ],
            },
        )
        await world.signal("order.placed", "email:ana@example.org", total=60)
        await world.signal("order.placed", "email:ana@example.org", total=50)
        await world.settle()
        assert await world.members("big-gold") == set()
        await world.upsert(claims("email:ana@example.org"), {}, {"tier": "gold"})
        await world.settle()
        assert await world.members("big-gold") == {"email:ana@example.org"}


class TestTimePassing:
    async def test_a_customer_leaves_when_signals_fall_out_of_the_window_with_no_new_signal(
        self, world: World
    ) -> None:
        await world.segment("buyers", BUYERS)
        await world.signal("order.placed", "email:ana@example.org")
        world.clock.advance(timedelta(minutes=20))
        await world.signal("order.placed", "email:ana@example.org")
        await world.settle()
        assert await world.members("buyers") == {"email:ana@example.org"}
        world.clock.advance(timedelta(minutes=39))
        await world.settle()
        assert await world.members("buyers") == {"email:ana@example.org"}
        world.clock.advance(timedelta(minutes=2))
        await world.settle()
        assert await world.members("buyers") == set()
        exits = await world.facts("Exited")
        assert len(exits) == 1

    async def test_no_login_for_fourteen_days_enters_the_lapsed_segment_on_the_fifteenth(
        self, world: World
    ) -> None:
        await world.segment("lapsed", LAPSED)
        await world.signal("login", "email:ana@example.org")
        await world.settle()
        assert await world.members("lapsed") == set()
        world.clock.advance(timedelta(days=13))
        await world.settle()
        assert await world.members("lapsed") == set()
        world.clock.advance(timedelta(days=1, seconds=1))
        await world.settle()
        assert await world.members("lapsed") == {"email:ana@example.org"}
        await world.signal("login", "email:ana@example.org")
        await world.settle()
        assert await world.members("lapsed") == set()


class TestLifecycle:
    async def test_a_merged_customer_leaves_and_the_survivor_is_evaluated_with_both_histories(
        self, world: World
    ) -> None:
        await world.segment("buyers", BUYERS)
        await world.signal("order.placed", "email:ana@example.org")
        await world.signal("order.placed", "phone:020 7946 0958")
        await world.signal("order.placed", "phone:020 7946 0958")
        await world.settle()
        assert await world.members("buyers") == {"phone:+442079460958"}
        await world.ingest(
            [
                SignalReport(
                    "link",
                    "contact.updated",
                    T0,
                    claims("email:ana@example.org", "phone:+442079460958"),
                )
            ]
        )
        await world.settle()
        rows = await world.pool.fetch(
            "SELECT customer_id FROM segment_members WHERE segment_id = $1", segment_id("buyers")
        )
        survivors = await world.pool.fetch(
            "SELECT customer_id FROM customer_directory WHERE merged_into IS NULL"
        )
        assert [r[0] for r in rows] == [r[0] for r in survivors]

    async def test_deleting_a_segment_lets_everyone_out_and_posting_it_again_is_idempotent(
        self, world: World
    ) -> None:
        await world.segment("buyers", BUYERS)
        draft = SegmentDraft("Buyers", "", decode_condition(BUYERS))
        again = await world.define("buyers", draft, "test", replace=False)
        assert (again.created, again.changed) == (False, False)
        other = SegmentDraft("Buyers", "", decode_condition(LAPSED))
        with pytest.raises(SegmentExists):
            await world.define("buyers", other, "test", replace=False)
        await world.signal("order.placed", "email:ana@example.org")
        await world.signal("order.placed", "email:ana@example.org")
        await world.settle()
        assert await world.members("buyers") == {"email:ana@example.org"}
        await world.delete("buyers", "test")
        await world.settle()
        assert await world.members("buyers") == set()
        assert len(await world.facts("Exited")) == 1

        await world.define("buyers", draft, "test")  # restores it: members come back
        await world.settle()
        assert await world.members("buyers") == {"email:ana@example.org"}
        assert len(await world.facts("Entered")) == 2
        await world.signal("order.placed", "email:bo@example.org")
        await world.signal("order.placed", "email:bo@example.org")
        await world.settle()
        assert await world.members("buyers") == {"email:ana@example.org", "email:bo@example.org"}


class TestRebuild:
    async def test_rebuilt_members_equal_the_live_ones_and_the_evaluator_is_not_rebuilt(
        self, world: World
    ) -> None:
        await world.segment("buyers", BUYERS)
        await world.segment("lapsed", LAPSED)
        for n in range(5):
            await world.signal("order.placed", f"email:c{n % 3}@example.org")
            await world.signal("login", f"email:c{n % 2}@example.org")
        world.clock.advance(timedelta(days=20))
        await world.signal("order.placed", "email:c4@example.org")
        await world.settle()
        live = sorted(tuple(r) for r in await world.pool.fetch("SELECT * FROM segment_members"))
        assert live
        await world.runner.rebuild("segment_members")
        rebuilt = sorted(tuple(r) for r in await world.pool.fetch("SELECT * FROM segment_members"))
        assert rebuilt == live
        with pytest.raises(NotRebuildable):
            await world.runner.rebuild("segment_evaluator")
