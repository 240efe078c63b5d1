"""The segment evaluator decides who enters and exits each segment, on the in-memory ports."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from adapters.inmemory.processes import InMemoryProcessPorts, InMemoryProcessRunner
from application.processes.segment_evaluator import SegmentEvaluator
from application.segments.define_segment import DefineSegment, DeleteSegment, SegmentDraft
from domain.segments.aggregate import Membership, segment_id
from domain.segments.conditions import decode_condition
from tests.unit.in_memory_chorus import MONDAY_NOON, InMemoryChorus, claim, report

if TYPE_CHECKING:
    from uuid import UUID

BUYERS = {"type": "signal_count", "signal": "order.placed", "within": "1h", "op": "gte", "value": 2}
ANA = claim("email", "ana@example.org")
BO = claim("email", "bo@example.org")


class Evaluation:
    """Chorus in memory with the evaluator following its log."""

    def __init__(self) -> None:
        self.chorus = InMemoryChorus()
        self.clock = self.chorus.clock
        store = self.chorus.storage.events
        self.define_segment = DefineSegment(self.chorus.uows, self.clock)
        self.delete_segment = DeleteSegment(self.chorus.uows, self.clock)
        self.ports = InMemoryProcessPorts(store)
        self.evaluator = SegmentEvaluator(self.clock, page=2)
        self.runner = InMemoryProcessRunner(self.evaluator, self.ports, store)
        self.sent = 0

    async def segment(self, key: str, condition: dict[str, Any]) -> None:
        draft = SegmentDraft(key.title(), "", decode_condition(condition))
        await self.define_segment(key, draft, "test")
        await self.runner.catch_up()

    async def order(self, *who: Any) -> None:
        for each in who:
            self.sent += 1
            await self.chorus.ingest(
                [report(f"e{self.sent}", each, kind="order.placed", occurred_at=self.clock.now())]
            )
        await self.runner.catch_up()

    async def members(self, key: str) -> set[UUID]:
        found = await self.ports.membership_states.members(segment_id(key))
        return {customer for customer, _ in found}

    async def owner(self, who: Any) -> UUID:
        found = await self.chorus.owner(who.identity.type, who.identity.value)
        assert found is not None
        return found

    def memberships(self) -> list[Any]:
        return [
            r.event
            for r in self.chorus.storage.events.log
            if isinstance(r.event, Membership.Entered | Membership.Exited)
        ]


class TestEntering:
    async def test_a_customer_whose_signals_reach_the_count_enters(self) -> None:
        world = Evaluation()
        await world.segment("buyers", BUYERS)
        await world.order(ANA)
        assert await world.members("buyers") == set()
        await world.order(ANA)
        ana = await world.owner(ANA)
        assert await world.members("buyers") == {ana}
        (entered,) = world.memberships()
        assert isinstance(entered, Membership.Entered)
        assert (entered.customer_id, entered.segment_key, entered.segment_version) == (
            ana,
            "buyers",
            1,
        )

    async def test_a_segment_defined_later_takes_in_everyone_who_matches_already(self) -> None:
        world = Evaluation()
        await world.order(ANA, ANA, BO, BO, BO)
        await world.segment("buyers", BUYERS)
        assert await world.members("buyers") == {await world.owner(ANA), await world.owner(BO)}

    async def test_signals_of_a_customer_already_in_record_nothing_more(self) -> None:
        world = Evaluation()
        await world.segment("buyers", BUYERS)
        await world.order(ANA, ANA, ANA)
        assert len(world.memberships()) == 1


class TestExiting:
    async def test_a_customer_who_no_longer_matches_exits_when_it_falls_due(self) -> None:
        world = Evaluation()
        await world.segment("buyers", BUYERS)
        await world.order(ANA, ANA)
        world.clock.advance(timedelta(minutes=30))
        assert await world.evaluator.due(world.ports, 100) == 0
        world.clock.advance(timedelta(minutes=31))
        assert await world.evaluator.due(world.ports, 100) == 1
        assert await world.members("buyers") == set()
        _, exited = world.memberships()
        assert isinstance(exited, Membership.Exited)
        assert (exited.reason, exited.originator_version) == ("condition", 2)
        assert exited.timestamp == MONDAY_NOON + timedelta(minutes=61)

    async def test_a_deleted_segment_empties(self) -> None:
        world = Evaluation()
        await world.segment("buyers", BUYERS)
        await world.order(ANA, ANA, BO, BO)
        await world.delete_segment("buyers", "test")
        await world.runner.catch_up()
        assert await world.members("buyers") == set()
        exits = [e for e in world.memberships() if isinstance(e, Membership.Exited)]
        assert sorted(e.reason for e in exits) == ["segment deleted", "segment deleted"]

    async def test_a_restored_segment_takes_its_members_back_after_their_exits(self) -> None:
        world = Evaluation()
        await world.segment("buyers", BUYERS)
        await world.order(ANA, ANA)
        await world.delete_segment("buyers", "test")
        await world.runner.catch_up()
        await world.segment("buyers", BUYERS)
        assert await world.members("buyers") == {await world.owner(ANA)}
        assert [e.originator_version for e in world.memberships()] == [1, 2, 3]
