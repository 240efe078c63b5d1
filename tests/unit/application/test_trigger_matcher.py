"""The trigger matcher decides which trigger fires on which event, on the in-memory ports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.inmemory.processes import InMemoryProcessPorts, InMemoryProcessRunner
from application.processes.segment_evaluator import SegmentEvaluator
from application.processes.trigger_matcher import TriggerMatcher
from application.segments.define_segment import DefineSegment, SegmentDraft
from application.triggers.define_trigger import DefineTrigger, DeleteTrigger, TriggerDraft
from domain.segments.conditions import decode_condition
from domain.triggers.aggregate import Firing, firing_id, trigger_id
from domain.triggers.definition import decode_on
from tests.unit.in_memory_chorus import InMemoryChorus, claim, report

if TYPE_CHECKING:
    from domain.customer.identities import IdentityClaim

BIG_ORDERS = {
    "type": "signal",
    "signal": "order.placed",
    "where": [{"property": "total", "op": "gte", "value": 100}],
}
ANA = claim("email", "ana@example.org")


class Matching:
    """Chorus in memory with the matcher (and the evaluator before it) following its log."""

    def __init__(self) -> None:
        self.chorus = InMemoryChorus()
        self.clock = self.chorus.clock
        self.store = self.chorus.storage.events
        self.define = DefineTrigger(self.chorus.uows, self.clock)
        self.delete = DeleteTrigger(self.chorus.uows, self.clock)
        self.define_segment = DefineSegment(self.chorus.uows, self.clock)
        self.ports = InMemoryProcessPorts(self.store)
        evaluator = SegmentEvaluator(self.clock)
        self.evaluator = InMemoryProcessRunner(evaluator, self.ports, self.store)
        self.matcher = self.matching_with(TriggerMatcher(self.clock))
        self.sent = 0

    def matching_with(self, matcher: TriggerMatcher) -> InMemoryProcessRunner:
        return InMemoryProcessRunner(matcher, self.ports, self.store)

    async def settle(self) -> None:
        await self.evaluator.catch_up()
        await self.matcher.catch_up()

    async def trigger(self, key: str, on: dict[str, Any]) -> None:
        await self.define(key, TriggerDraft(key.title(), "", decode_on(on)), "test")
        await self.settle()

    async def signal(self, kind: str, who: IdentityClaim = ANA, **properties: Any) -> None:
        self.sent += 1
        event = report(f"e{self.sent}", who, kind=kind, properties=properties)
        await self.chorus.ingest([event])
        await self.settle()

    def firings(self) -> list[Firing.Fired]:
        return [r.event for r in self.store.log if isinstance(r.event, Firing.Fired)]


class TestFiring:
    async def test_a_trigger_fires_once_per_matching_signal(self) -> None:
        world = Matching()
        await world.trigger("big-orders", BIG_ORDERS)
        await world.signal("order.placed", total=120)
        await world.signal("order.placed", total=40)
        await world.signal("page.viewed", total=500)
        await world.signal("order.placed", total=300)
        fired = world.firings()
        assert [f.trigger_key for f in fired] == ["big-orders", "big-orders"]
        first = fired[0]
        assert (first.source_kind, first.signal_type, first.signal_event_id) == (
            "signal",
            "order.placed",
            "e1",
        )
        assert first.customer_id == await world.chorus.owner("email", "ana@example.org")
        assert first.originator_id == firing_id(
            trigger_id("big-orders"), first.source_stream_id, first.source_version
        )

    async def test_a_replayed_log_records_no_second_firing(self) -> None:
        world = Matching()
        await world.trigger("big-orders", BIG_ORDERS)
        await world.signal("order.placed", total=120)
        world.ports.trigger_states.triggers.clear()
        replay = world.matching_with(TriggerMatcher(world.clock))
        await replay.catch_up()
        assert len(world.firings()) == 1

    async def test_a_deleted_trigger_fires_no_more_and_a_redefined_one_names_its_version(
        self,
    ) -> None:
        world = Matching()
        await world.trigger("big-orders", BIG_ORDERS)
        await world.delete("big-orders", "test")
        await world.settle()
        await world.signal("order.placed", total=120)
        assert world.firings() == []
        await world.trigger("big-orders", {**BIG_ORDERS, "where": []})
        await world.signal("order.placed", total=10)
        (fired,) = world.firings()
        assert fired.trigger_version == 2

    async def test_a_matcher_started_afresh_reads_the_triggers_it_kept(self) -> None:
        world = Matching()
        await world.trigger("big-orders", BIG_ORDERS)
        restarted = world.matching_with(TriggerMatcher(world.clock))
        restarted.position = world.matcher.position
        await world.chorus.ingest(
            [report("late", ANA, kind="order.placed", properties={"total": 1e3})]
        )
        await restarted.catch_up()
        assert len(world.firings()) == 1

    async def test_an_entry_into_a_segment_fires_its_trigger_with_the_segment(self) -> None:
        world = Matching()
        await world.trigger("vip-in", {"type": "segment_entered", "segment": "vips"})
        condition = {"type": "signal_count", "signal": "order.placed", "op": "gte", "value": 1}
        draft = SegmentDraft("VIPs", "", decode_condition({**condition, "within": "1h"}))
        await world.define_segment("vips", draft, "test")
        await world.signal("order.placed")
        (fired,) = world.firings()
        assert (fired.source_kind, fired.segment_key, fired.signal_type) == (
            "segment_entered",
            "vips",
            None,
        )
