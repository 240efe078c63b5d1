"""Segments over classified messages, kept current as messages arrive and time passes: the
threads process classifies, the evaluator follows the log, on the in-memory adapters."""

from __future__ import annotations

from datetime import timedelta

from adapters.inmemory.processes import InMemoryProcessPorts, InMemoryProcessRunner
from application.processes.segment_evaluator import SegmentEvaluator
from application.segments.define_segment import DefineSegment, SegmentDraft
from domain.segments.aggregate import segment_id
from domain.segments.conditions import decode_condition
from tests.unit.application.conversation_world import SUPPORT_ONLY, ConversationWorld, customer

COMPLAINED_TWICE = {
    "type": "classified",
    "intent": "refund",
    "sentiment": "negative",
    "within": "30d",
    "op": "gte",
    "value": 2,
}


class World(ConversationWorld):
    def __init__(self) -> None:
        super().__init__()
        self.evaluator = SegmentEvaluator(self.clock)
        self.segment_ports = InMemoryProcessPorts(self.store)
        self.segments = InMemoryProcessRunner(self.evaluator, self.segment_ports, self.store)

    async def start(self) -> None:
        await self.agent("ana", {})
        await self.team("support", "ana")
        await self.routing(SUPPORT_ONLY)
        draft = SegmentDraft("Complained", "", decode_condition(COMPLAINED_TWICE))
        await DefineSegment(self.uows, self.clock)("complained", draft, "test")
        await self.settle()

    async def settle(self) -> None:
        await super().settle()
        await self.segments.catch_up()

    async def members(self) -> set[object]:
        found = await self.segment_ports.membership_states.members(segment_id("complained"))
        return {who for who, _ in found}


class TestComplainedTwice:
    async def test_a_customer_enters_on_their_second_angry_refund_request(self) -> None:
        world = World()
        await world.start()
        await world.inbound(customer(1), "email", "I want a refund, this is awful")
        assert await world.members() == set()
        await world.inbound(customer(1), "chat", "Still no refund, horrible service")
        assert await world.members() == {await world.customer_of(customer(1))}

    async def test_calm_requests_and_other_customers_do_not_count(self) -> None:
        world = World()
        await world.start()
        await world.inbound(customer(1), "email", "Could I get a refund please?")
        await world.inbound(customer(1), "email", "Thanks, a refund would be great")
        await world.inbound(customer(2), "email", "refund now, awful")
        assert await world.members() == set()

    async def test_the_same_message_delivered_twice_counts_once(self) -> None:
        world = World()
        await world.start()
        for _ in range(2):
            await world.inbound(customer(1), "email", "refund, awful", event_id="smtp:x")
        assert await world.members() == set()

    async def test_they_exit_when_the_older_request_leaves_the_window(self) -> None:
        world = World()
        await world.start()
        await world.inbound(customer(1), "email", "I want a refund, this is awful")
        world.clock.advance(timedelta(days=10))
        await world.inbound(customer(1), "chat", "Still no refund, horrible service")
        assert await world.members() == {await world.customer_of(customer(1))}
        world.clock.advance(timedelta(days=21))
        await world.evaluator.due(world.segment_ports, 100)
        assert await world.members() == set()
