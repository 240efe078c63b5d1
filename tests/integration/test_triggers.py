from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.process_ports import ProcessPortsOn
from adapters.postgres.processes import ProcessProjection
from adapters.postgres.projections import NotRebuildable, ProjectionRunner
from adapters.postgres.segment_evaluator import SegmentTimers
from adapters.postgres.segments import SegmentMembers
from adapters.postgres.signal_activity import SignalActivity
from adapters.postgres.triggers import PostgresTriggers, TriggerFirings
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from application.customer.signals import IngestSignals
from application.processes.segment_evaluator import SegmentEvaluator
from application.processes.trigger_matcher import TriggerMatcher
from application.queries.triggers import TriggerQueries
from application.segments.define_segment import DefineSegment, SegmentDraft
from application.triggers.define_trigger import (
    DefineTrigger,
    DeleteTrigger,
    TriggerDraft,
    TriggerExists,
)
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.segments.conditions import decode_condition
from domain.shared.errors import NotFound
from domain.signals.aggregate import SignalReport
from domain.triggers.definition import decode_on
from ports.triggers import InvalidFiringCursor
from tests.integration.readable_log import reading_every_commit

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from ports.trigger_matching import TriggerMatchingPorts

pytestmark = pytest.mark.integration
GB = IdentityNormalizer("GB")
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
BIG_ORDERS = {
    "type": "signal",
    "signal": "order.placed",
    "where": [{"property": "total", "op": "gte", "value": 100}],
}
BUYERS = {"type": "signal_count", "signal": "order.placed", "within": "1h", "op": "gte", "value": 2}


def claims(*identities: str) -> tuple[IdentityClaim, ...]:
    return tuple(IdentityClaim(GB.parse(i)) for i in identities)


class FailingMatcher(TriggerMatcher):
    """Records its firings, then fails the page, as a crash before the commit would."""

    def __init__(self, clock: ManualClock, fail_on: set[int]) -> None:
        super().__init__(clock)
        self.fail_on = fail_on
        self.pages = 0

    async def handle(
        self, events: Sequence[CanMutateAggregate[UUID]], ports: TriggerMatchingPorts
    ) -> None:
        self.pages += 1
        await super().handle(events, ports)
        if self.pages in self.fail_on:
            raise RuntimeError("killed after recording its firings")


class World:
    """Chorus's write side and read side on one database, with a clock the test moves."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.clock = ManualClock(T0)
        self.store = PostgresUnitsOfWork(pool)
        self.ingest = IngestSignals(self.store, self.clock, RandomIds())
        self.define_segment = DefineSegment(self.store, self.clock)
        self.triggers = PostgresTriggers(pool)
        self.define = DefineTrigger(self.store, self.clock)
        self.delete = DeleteTrigger(self.store, self.clock)
        self.queries = TriggerQueries(self.triggers)
        self.ports = ProcessPortsOn()
        self.evaluator = SegmentEvaluator(self.clock, page=3)
        self.timers = SegmentTimers(pool, self.evaluator, self.ports)
        self.runner = self.runner_with(TriggerMatcher(self.clock))
        self.sent = 0

    def runner_with(self, matcher: TriggerMatcher) -> ProjectionRunner:
        runner = ProjectionRunner(
            self.pool,
            [
                CustomerDirectory(),
                SignalActivity(),
                ProcessProjection(self.evaluator, self.ports),
                SegmentMembers(),
                ProcessProjection(matcher, self.ports),
                TriggerFirings(),
            ],
            page_size=4,
        )
        return reading_every_commit(runner, self.pool)

    async def signal(self, kind: str, who: str, event_id: str | None = None, **props: Any) -> str:
        self.sent += 1
        event_id = event_id or f"e{self.sent}"
        await self.ingest([SignalReport(event_id, kind, self.clock.now(), claims(who), props)])
        return event_id

    async def trigger(self, key: str, on: dict[str, Any], name: str = "") -> None:
        await self.define(key, TriggerDraft(name or key.title(), "", decode_on(on)), "test")

    async def segment(self, key: str, condition: dict[str, Any]) -> None:
        draft = SegmentDraft(key.title(), "", decode_condition(condition))
        await self.define_segment(key, draft, "test")

    async def settle(self) -> None:
        await self.runner.setup()
        await self.runner.catch_up()
        while await self.timers(100):
            pass
        await self.runner.catch_up()

    async def fired(self, key: str | None = None) -> list[dict[str, Any]]:
        """Every Fired event in the log, in log order, as recorded."""
        rows = await self.pool.fetch(
            "SELECT stream_id, version, payload FROM events"
            " WHERE topic = 'domain.triggers.aggregate:Firing.Fired'"
            " ORDER BY transaction_id, position"
        )
        found = [{"stream_id": r[0], "version": r[1], **json.loads(r[2])} for r in rows]
        return [f for f in found if key is None or f["trigger_key"] == key]

    async def fired_on(self, key: str) -> list[str | None]:
        return [f["signal_event_id"] for f in await self.fired(key)]


@pytest.fixture
def world(pool: asyncpg.Pool) -> World:
    return World(pool)


class TestSignalTriggers:
    async def test_it_fires_once_per_matching_signal_and_not_for_others(self, world: World) -> None:
        await world.trigger("big-orders", BIG_ORDERS)
        await world.signal("order.placed", "email:ana@example.org", "o1", total=120)
        await world.signal("order.placed", "email:ana@example.org", "o2", total=50)
        await world.signal("order.placed", "email:bo@example.org", "o3", total=100)
        await world.signal("order.refunded", "email:bo@example.org", "r1", total=500)
        await world.signal("order.placed", "email:cy@example.org", "o4", total="120")
        await world.settle()
        assert await world.fired_on("big-orders") == ["o1", "o3"]
        await world.settle()
        assert len(await world.fired()) == 2

    async def test_the_same_producer_event_ingested_twice_fires_once(self, world: World) -> None:
        await world.trigger("big-orders", BIG_ORDERS)
        await world.signal("order.placed", "email:ana@example.org", "o1", total=120)
        await world.signal("order.placed", "email:ana@example.org", "o1", total=120)
        await world.settle()
        await world.signal("order.placed", "email:ana@example.org", "o1", total=120)
        await world.settle()
        assert await world.fired_on("big-orders") == ["o1"]

    async def test_every_trigger_matching_a_signal_fires_on_it(self, world: World) -> None:
        await world.trigger("big-orders", BIG_ORDERS)
        await world.trigger("any-order", {"type": "signal", "signal": "order.placed"})
        await world.signal("order.placed", "email:ana@example.org", "o1", total=120)
        await world.signal("order.placed", "email:ana@example.org", "o2", total=5)
        await world.settle()
        assert Counter(f["trigger_key"] for f in await world.fired()) == {
            "big-orders": 1,
            "any-order": 2,
        }

    async def test_a_signal_recorded_before_the_definition_does_not_fire_it(
        self, world: World
    ) -> None:
        await world.signal("order.placed", "email:ana@example.org", "before", total=120)
        await world.trigger("big-orders", BIG_ORDERS)
        await world.signal("order.placed", "email:ana@example.org", "after", total=120)
        await world.settle()
        assert await world.fired_on("big-orders") == ["after"]

    async def test_a_new_version_applies_to_signals_recorded_after_it(self, world: World) -> None:
        await world.trigger("big-orders", BIG_ORDERS)
        await world.signal("order.placed", "email:ana@example.org", "small-1", total=50)
        await world.signal("order.placed", "email:ana@example.org", "big-1", total=150)
        lower = {**BIG_ORDERS, "where": [{"property": "total", "op": "gte", "value": 10}]}
        await world.trigger("big-orders", lower)
        await world.signal("order.placed", "email:ana@example.org", "small-2", total=50)
        await world.settle()
        fired = await world.fired("big-orders")
        assert [(f["signal_event_id"], f["trigger_version"]) for f in fired] == [
            ("big-1", 1),
            ("small-2", 2),
        ]


class TestExactlyOnce:
    async def test_a_runner_restarted_after_a_page_failed_midway_fires_each_exactly_once(
        self, world: World
    ) -> None:
        await world.trigger("big-orders", BIG_ORDERS)
        await world.trigger("any-order", {"type": "signal", "signal": "order.placed"})
        for n in range(10):
            await world.signal("order.placed", f"email:c{n % 3}@example.org", total=100 + n)
        broken = world.runner_with(FailingMatcher(world.clock, fail_on={2}))
        await broken.setup()
        with pytest.raises(RuntimeError, match="killed"):
            await broken.catch_up()
        assert 0 < len(await world.fired()) < 20  # the first page committed, the second not
        restarted = world.runner_with(TriggerMatcher(world.clock))
        await restarted.setup()
        await restarted.catch_up()
        fired = await world.fired()
        per_source = Counter((f["trigger_key"], f["source_stream_id"]) for f in fired)
        assert len(per_source) == 20
        assert set(per_source.values()) == {1}

    async def test_a_matcher_retrying_a_failed_page_forgets_the_definitions_it_rolled_back(
        self, world: World
    ) -> None:
        flaky = FailingMatcher(world.clock, fail_on={2})
        runner = world.runner_with(flaky)
        await runner.setup()
        await world.trigger("big-orders", BIG_ORDERS)
        await runner.catch_up()
        lower = {**BIG_ORDERS, "where": [{"property": "total", "op": "gte", "value": 10}]}
        await world.trigger("big-orders", lower)
        await world.signal("order.placed", "email:ana@example.org", "o1", total=50)
        with pytest.raises(RuntimeError, match="killed"):
            await runner.catch_up()
        await runner.catch_up()
        fired = await world.fired("big-orders")
        assert [(f["signal_event_id"], f["trigger_version"]) for f in fired] == [("o1", 2)]

    async def test_a_replayed_log_records_no_second_firing(self, world: World) -> None:
        await world.trigger("big-orders", BIG_ORDERS)
        await world.signal("order.placed", "email:ana@example.org", "o1", total=120)
        await world.settle()
        await world.pool.execute(
            "UPDATE projection_positions SET transaction_id = '0', position = 0"
            " WHERE name = 'triggers'"
        )
        await world.pool.execute("TRUNCATE trigger_matcher_state")
        replay = world.runner_with(TriggerMatcher(world.clock))
        await replay.catch_up("triggers")
        assert await world.fired_on("big-orders") == ["o1"]


class TestSegmentTriggers:
    async def test_entries_and_exits_the_evaluator_records_fire_their_triggers(
        self, world: World
    ) -> None:
        await world.segment("buyers", BUYERS)
        await world.trigger("became-buyer", {"type": "segment_entered", "segment": "buyers"})
        await world.trigger("stopped-buying", {"type": "segment_exited", "segment": "buyers"})
        await world.signal("order.placed", "email:ana@example.org")
        await world.signal("order.placed", "email:ana@example.org")
        await world.runner.setup()
        await world.runner.catch_up()  # one round: evaluated, then matched
        (entered,) = await world.fired("became-buyer")
        assert (entered["source_kind"], entered["segment_key"]) == ("segment_entered", "buyers")
        assert await world.fired("stopped-buying") == []
        world.clock.advance(timedelta(minutes=61))
        await world.settle()
        (exited,) = await world.fired("stopped-buying")
        assert (exited["segment_key"], exited["exit_reason"]) == ("buyers", "condition")
        assert exited["customer_id"] == entered["customer_id"]
        assert exited["source_stream_id"] == entered["source_stream_id"]  # the membership
        assert (entered["source_version"], exited["source_version"]) == (1, 2)
        assert len(await world.fired("became-buyer")) == 1


class TestFiringsReadModel:
    async def test_firings_read_newest_first_a_page_at_a_time(self, world: World) -> None:
        await world.trigger("any-order", {"type": "signal", "signal": "order.placed"})
        for n in range(5):
            await world.signal("order.placed", "email:ana@example.org", f"o{n}")
            world.clock.advance(timedelta(seconds=1))
        await world.settle()
        seen: list[str | None] = []
        after = None
        for _ in range(3):
            page = await world.queries.firings("any-order", after=after, limit=2)
            seen.extend(f.signal_event_id for f in page.firings)
            after = page.next_cursor
        assert seen == ["o4", "o3", "o2", "o1", "o0"]
        assert after is None
        first = (await world.queries.firings("any-order", after=None, limit=1)).firings[0]
        assert (first.source_kind, first.signal_type, first.trigger_version) == (
            "signal",
            "order.placed",
            1,
        )
        assert first.source_recorded_at == T0 + timedelta(seconds=4)
        with pytest.raises(InvalidFiringCursor):
            await world.queries.firings("any-order", after="not-a-cursor", limit=2)
        with pytest.raises(InvalidFiringCursor):  # eight bytes, but over a bigint
            await world.queries.firings("any-order", after="__________8", limit=2)
        with pytest.raises(NotFound):
            await world.queries.firings("no-such-trigger", after=None, limit=2)

    async def test_rebuilt_firings_equal_the_live_ones_and_the_matcher_is_not_rebuilt(
        self, world: World
    ) -> None:
        await world.trigger("any-order", {"type": "signal", "signal": "order.placed"})
        await world.trigger("big-orders", BIG_ORDERS)
        for n in range(7):
            await world.signal("order.placed", f"email:c{n % 2}@example.org", total=n * 40)
        await world.settle()
        live = sorted(tuple(r) for r in await world.pool.fetch("SELECT * FROM trigger_firings"))
        assert len(live) == 7 + 4
        await world.runner.rebuild("trigger_firings")
        rebuilt = sorted(tuple(r) for r in await world.pool.fetch("SELECT * FROM trigger_firings"))
        assert rebuilt == live
        with pytest.raises(NotRebuildable):
            await world.runner.rebuild("triggers")


class TestLifecycle:
    async def test_a_deleted_trigger_stops_firing_and_keeps_its_firings_for_a_put_back(
        self, world: World
    ) -> None:
        await world.trigger("big-orders", BIG_ORDERS)
        await world.signal("order.placed", "email:ana@example.org", "o1", total=120)
        await world.settle()
        await world.delete("big-orders", "test")
        await world.signal("order.placed", "email:ana@example.org", "o2", total=120)
        await world.settle()
        assert await world.fired_on("big-orders") == ["o1"]
        with pytest.raises(NotFound):
            await world.queries.get("big-orders")
        assert [t.key for t in await world.queries.list()] == []
        with pytest.raises(NotFound):
            await world.queries.firings("big-orders", after=None, limit=10)
        with pytest.raises(NotFound):
            await world.delete("big-orders", "test")
        await world.trigger("big-orders", BIG_ORDERS)
        page = await world.queries.firings("big-orders", after=None, limit=10)
        assert [f.signal_event_id for f in page.firings] == ["o1"]
        await world.signal("order.placed", "email:ana@example.org", "o3", total=120)
        await world.settle()
        fired = await world.fired("big-orders")
        assert [(f["signal_event_id"], f["trigger_version"]) for f in fired] == [
            ("o1", 1),
            ("o3", 2),
        ]

    async def test_posting_the_same_definition_again_is_harmless_and_another_conflicts(
        self, world: World
    ) -> None:
        draft = TriggerDraft("Big orders", "", decode_on(BIG_ORDERS))
        created = await world.define("big-orders", draft, "test", replace=False)
        assert (created.created, created.changed) == (True, True)
        again = await world.define("big-orders", draft, "test", replace=False)
        assert (again.created, again.changed) == (False, False)
        other = TriggerDraft("Big orders", "", decode_on({"type": "signal", "signal": "login"}))
        with pytest.raises(TriggerExists):
            await world.define("big-orders", other, "test", replace=False)
        summary = await world.queries.get("big-orders")
        assert (summary.version, summary.on) == (1, BIG_ORDERS)
