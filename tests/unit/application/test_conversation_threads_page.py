"""A page of inbound messages: several conversations threaded at once, each conversation's
messages in log order, and a failure raised only once every conversation has stopped."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from application.conversations.receive_inbound import Threaded
from domain.conversation.aggregate import conversation_id
from domain.conversation.vocabulary import ChannelKind
from domain.customer.keywords import INBOUND_SIGNAL
from tests.unit.application.conversation_world import SUPPORT_ONLY, ConversationWorld, customer
from tests.unit.in_memory_chorus import report

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from application.conversations.receive_inbound import Inbound, ReceiveInbound
    from application.conversations.route_conversation import PageRouting
    from domain.conversation.routing import Candidate, TeamView
    from domain.customer.identities import IdentityClaim


class _Watching:
    """ReceiveInbound, noting how many batches are in hand at once and in which order their
    messages came; a batch with a message whose text is `fail` fails after a turn of the loop."""

    def __init__(self, receive: ReceiveInbound) -> None:
        self.receive = receive
        self.in_hand = 0
        self.most_in_hand = 0
        self.batches: list[list[str]] = []
        self.finished: list[str] = []

    def page(self) -> PageRouting:
        return self.receive.page()

    async def many(
        self, messages: Sequence[Inbound], page: PageRouting | None = None
    ) -> list[Threaded]:
        self.in_hand += 1
        self.most_in_hand = max(self.most_in_hand, self.in_hand)
        texts = [m.text for m in messages]
        self.batches.append(texts)
        try:
            await asyncio.sleep(0.01)
            if "fail" in texts:
                raise RuntimeError("the database went away")
            threaded = await self.receive.many(messages, page)
            self.finished.extend(texts)
            return threaded
        finally:
            self.in_hand -= 1


async def _world(capacity: int = 20) -> tuple[ConversationWorld, _Watching]:
    world = ConversationWorld()
    for key in ("ana", "rui"):
        await world.agent(key, {ChannelKind.CHAT: capacity})
    await world.team("support", "ana", "rui")
    await world.routing(SUPPORT_ONLY)
    await world.settle()
    watching = _Watching(world.receive)
    world.process.receive = watching  # type: ignore[assignment]
    return world, watching


async def _page(world: ConversationWorld, *messages: tuple[IdentityClaim, str]) -> None:
    """The messages recorded, then read by the process as one page."""
    events = []
    for n, (who, text) in enumerate(messages):
        world.clock.advance(timedelta(seconds=1))
        properties = {"channel": "whatsapp", "text": text}
        events.append(
            report(f"twilio:p{n}", who, kind=INBOUND_SIGNAL, occurred_at=world.clock.now(),
                   properties=properties)
        )  # fmt: skip
    await world.chorus.ingest(events)
    await world.settle()


def _counting(world: ConversationWorld) -> dict[str, int]:
    """Counts the roster's reads of teams and candidates from now on."""
    reads = {"teams": 0, "candidates": 0}
    roster = world.roster
    teams, candidates = roster.teams, roster.candidates

    async def counted_teams() -> list[TeamView]:
        reads["teams"] += 1
        return await teams()

    async def counted_candidates(agents: Collection[str]) -> list[Candidate]:
        reads["candidates"] += 1
        return await candidates(agents)

    roster.teams = counted_teams  # type: ignore[method-assign]
    roster.candidates = counted_candidates  # type: ignore[method-assign]
    return reads


class TestAPageOfMessages:
    async def test_a_page_commits_its_conversations_a_batch_at_a_time(self) -> None:
        world, watching = await _world()
        world.process.batch = 4
        await _page(world, *((customer(n), f"hello {n}") for n in range(10)))
        assert [len(batch) for batch in watching.batches] == [4, 4, 2]
        for n in range(10):
            assert (await world.conversation(customer(n))).agent in {"ana", "rui"}

    async def test_several_batches_are_threaded_at_once(self) -> None:
        world, watching = await _world()
        world.process.batch = 1
        await _page(world, *((customer(n), f"hello {n}") for n in range(10)))
        assert watching.most_in_hand == world.process.concurrency
        for n in range(10):
            assert (await world.conversation(customer(n))).agent in {"ana", "rui"}
        loads = [(await world.load(agent))[ChannelKind.CHAT] for agent in ("ana", "rui")]
        assert sum(loads) == 10

    async def test_a_page_reads_the_roster_once_and_spreads_its_conversations(self) -> None:
        world, _ = await _world()
        reads = _counting(world)
        await _page(world, *((customer(n), f"hello {n}") for n in range(10)))
        assert reads == {"teams": 1, "candidates": 1}
        loads = [(await world.load(agent))[ChannelKind.CHAT] for agent in ("ana", "rui")]
        assert loads == [5, 5]

    async def test_a_page_never_puts_an_agent_over_capacity(self) -> None:
        world, _ = await _world(capacity=2)
        await _page(world, *((customer(n), f"hello {n}") for n in range(10)))
        loads = [(await world.load(agent))[ChannelKind.CHAT] for agent in ("ana", "rui")]
        assert loads == [2, 2]
        holders = [(await world.conversation(customer(n))).agent for n in range(10)]
        assert sorted(h for h in holders if h is not None) == ["ana", "ana", "rui", "rui"]
        assert holders.count(None) == 6

    async def test_one_conversations_messages_are_threaded_in_log_order(self) -> None:
        world, watching = await _world()
        await _page(
            world,
            (customer(1), "first"),
            (customer(2), "other"),
            (customer(1), "second"),
            (customer(1), "third"),
        )
        mine = [text for text in watching.finished if text != "other"]
        assert mine == ["first", "second", "third"]
        conversation = await world.conversation(customer(1))
        assert [m.text for m in conversation.messages] == ["first", "second", "third"]
        thread = conversation_id(await world.customer_of(customer(1)), "support")
        assert conversation.id == thread

    async def test_a_failure_fails_the_page_once_every_batch_has_stopped(self) -> None:
        world, watching = await _world()
        world.process.batch = 1
        with pytest.raises(RuntimeError, match="went away"):
            await _page(world, (customer(1), "fail"), *((customer(n), "hi") for n in range(2, 9)))
        assert watching.in_hand == 0
        assert len(watching.finished) == 7
