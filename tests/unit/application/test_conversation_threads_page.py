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
    from application.conversations.receive_inbound import Inbound, ReceiveInbound
    from domain.customer.identities import IdentityClaim


class _Watching:
    """ReceiveInbound, noting how many messages are in hand at once and in which order they
    came; a message whose text is `fail` fails after a turn of the loop."""

    def __init__(self, receive: ReceiveInbound) -> None:
        self.receive = receive
        self.in_hand = 0
        self.most_in_hand = 0
        self.order: list[str] = []
        self.finished: list[str] = []

    async def __call__(self, inbound: Inbound) -> Threaded:
        self.in_hand += 1
        self.most_in_hand = max(self.most_in_hand, self.in_hand)
        self.order.append(inbound.text)
        try:
            await asyncio.sleep(0.01)
            if inbound.text == "fail":
                raise RuntimeError("the database went away")
            threaded = await self.receive(inbound)
            self.finished.append(inbound.text)
            return threaded
        finally:
            self.in_hand -= 1


async def _world() -> tuple[ConversationWorld, _Watching]:
    world = ConversationWorld()
    for key in ("ana", "rui"):
        await world.agent(key, {ChannelKind.CHAT: 20})
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


class TestAPageOfMessages:
    async def test_several_conversations_are_threaded_at_once(self) -> None:
        world, watching = await _world()
        await _page(world, *((customer(n), f"hello {n}") for n in range(10)))
        assert watching.most_in_hand == world.process.concurrency
        for n in range(10):
            assert (await world.conversation(customer(n))).agent in {"ana", "rui"}
        loads = [(await world.load(agent))[ChannelKind.CHAT] for agent in ("ana", "rui")]
        assert sum(loads) == 10

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

    async def test_a_failure_fails_the_page_once_every_conversation_has_stopped(self) -> None:
        world, watching = await _world()
        with pytest.raises(RuntimeError, match="went away"):
            await _page(world, (customer(1), "fail"), *((customer(n), "hi") for n in range(2, 9)))
        assert watching.in_hand == 0
        assert len(watching.finished) == 7
