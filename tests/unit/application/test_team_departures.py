"""An agent taken off a team: the team's conversations they hold are released, with the
reason, and routed again within the team, once; on the in-memory adapters."""

from __future__ import annotations

from application.conversations.replies import Reply
from domain.conversation.aggregate import (
    ActingAgent,
    AssignmentKind,
    Conversation,
    ConversationStatus,
)
from domain.conversation.vocabulary import ChannelKind, Presence
from domain.policy.vocabulary import Channel
from tests.unit.application.conversation_world import SUPPORT_ONLY, ConversationWorld, customer
from tests.unit.application.conversations.desk import ADMIN, Desk, ana


async def eve_holding(count: int, capacity: int) -> ConversationWorld:
    """Eve (chat capacity `capacity`) and Ana (away, room for one chat) on support; billing with
    Eve alone; `count` customers wrote on WhatsApp, the first `capacity` held by Eve."""
    world = ConversationWorld()
    await world.agent("eve", {ChannelKind.CHAT: capacity})
    await world.agent("ana", {ChannelKind.CHAT: 1}, presence=Presence.AWAY)
    await world.team("support", "eve", "ana")
    await world.team("billing", "eve")
    await world.routing(SUPPORT_ONLY)
    await world.settle()
    for n in range(1, count + 1):
        await world.inbound(customer(n), "whatsapp", f"hello {n}")
    return world


class TestAnAgentLeavingATeam:
    async def test_their_conversations_are_released_and_offered_to_who_has_room(self) -> None:
        world = await eve_holding(3, capacity=3)
        assert await world.load("eve") == {ChannelKind.CHAT: 3}
        await world.change_agent("ana", presence=Presence.AVAILABLE)
        await world.settle()
        await world.leave("support", "eve")
        await world.settle()
        threads = [await world.conversation(customer(n)) for n in (1, 2, 3)]
        for thread in threads:
            released = next(a for a in thread.history if a.kind is AssignmentKind.UNASSIGNED)
            assert (released.team, released.reason, released.by) == (
                "support",
                "eve left team support",
                "router",
            )
        # Ana had room for one: the first in the queue's order; the others wait for the team.
        assert [t.agent for t in threads] == ["ana", None, None]
        assert threads[0].history[-1].reason == "offered from the support queue as ana had room"
        assert await world.roster.queued("support") == [threads[1].id, threads[2].id]
        assert await world.load("eve") == {ChannelKind.CHAT: 0}
        assert await world.load("ana") == {ChannelKind.CHAT: 1}

    async def test_their_freed_places_go_to_their_other_teams_queues(self) -> None:
        world = await eve_holding(1, capacity=2)
        await world.change_agent("eve", presence=Presence.AWAY)
        await world.inbound(customer(2), "whatsapp", "hello 2")
        await world.inbound(customer(3), "whatsapp", "hello 3")
        second, third = [await world.conversation(customer(n)) for n in (2, 3)]
        await world.transfer(second.id, "billing", "a billing question", ADMIN, agent="eve")
        await world.transfer(third.id, "billing", "a billing question", ADMIN)
        await world.change_agent("eve", presence=Presence.AVAILABLE)
        await world.settle()
        assert (await world.conversation(customer(3))).agent is None  # eve is full
        await world.leave("support", "eve")
        await world.settle()
        first = await world.conversation(customer(1))
        assert (first.team, first.agent) == ("support", None)  # nobody in support has room
        second, third = [await world.conversation(customer(n)) for n in (2, 3)]
        assert (second.team, second.agent) == ("billing", "eve")  # another team's: kept
        assert not any(a.kind is AssignmentKind.UNASSIGNED for a in second.history)
        assert (third.team, third.agent) == ("billing", "eve")
        assert third.history[-1].reason == "offered from the billing queue as eve had room"
        assert await world.load("eve") == {ChannelKind.CHAT: 2}

    async def test_a_departure_read_again_releases_nothing_more(self) -> None:
        world = await eve_holding(2, capacity=2)
        await world.leave("support", "eve")
        await world.settle()
        assert world.chorus.count("Conversation.Unassigned") == 2
        await world.change_agent("ana", presence=Presence.AVAILABLE)
        await world.settle()
        held = [(await world.conversation(customer(n))).agent for n in (1, 2)]
        assert held == ["ana", None]
        world.runner.position = 0  # the whole log read again, as after a crash
        await world.settle()
        assert world.chorus.count("Conversation.Unassigned") == 2
        assert [(await world.conversation(customer(n))).agent for n in (1, 2)] == held
        assert await world.load("ana") == {ChannelKind.CHAT: 1}

    async def test_an_agent_put_back_on_the_team_before_it_is_read_keeps_what_they_hold(
        self,
    ) -> None:
        world = await eve_holding(2, capacity=2)
        await world.leave("support", "eve")
        await world.team("support", "eve")
        await world.settle()
        assert world.chorus.count("Conversation.Unassigned") == 0
        assert [(await world.conversation(customer(n))).agent for n in (1, 2)] == ["eve", "eve"]
        assert await world.load("eve") == {ChannelKind.CHAT: 2}

    async def test_a_resolved_one_stays_until_it_reopens_then_is_routed_again(self) -> None:
        world = await eve_holding(1, capacity=1)
        thread = await world.conversation(customer(1))
        async with world.uows() as uow:
            conversations = uow.repository(Conversation)
            found = (await conversations.get([thread.id]))[thread.id]
            found.resolve("answered", "eve", world.clock.now())
            conversations.add(found)
        await world.leave("support", "eve")
        await world.settle()
        assert world.chorus.count("Conversation.Unassigned") == 0
        assert (await world.conversation(customer(1))).agent == "eve"

        # The customer writing again reopens it: routed again within the team, not back to eve.
        await world.change_agent("ana", presence=Presence.AVAILABLE)
        await world.inbound(customer(1), "whatsapp", "it is broken again")
        reopened = await world.conversation(customer(1))
        assert reopened.agent == "ana"
        released = next(a for a in reopened.history if a.kind is AssignmentKind.UNASSIGNED)
        assert released.reason == "reopened while eve is off team support: routed again"
        assert await world.load("eve") == {ChannelKind.CHAT: 0}


class TestAReplyReopeningTheLeaversConversation:
    async def test_it_goes_back_to_the_team_not_to_the_agent_who_left(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        async with desk.uows() as uow:
            thread = (await uow.repository(Conversation).get([conversation]))[conversation]
            thread.assign(
                ActingAgent("ana.silva", frozenset({"support"})),
                "support",
                "t",
                "a",
                desk.clock.now(),
            )
            uow.repository(Conversation).add(thread)
        await desk.resolve(conversation, ana("support"), "answered")
        await desk.remove_member("support", "ana.silva", "admin")
        answer = await desk.reply(conversation, ADMIN, Reply(text="One more thing"))
        assert answer.sent is True
        thread = await desk.thread(conversation)
        assert (thread.status, thread.team, thread.agent) == (
            ConversationStatus.WAITING_ON_CUSTOMER,
            "support",
            None,
        )
        assert thread.history[-1].kind is AssignmentKind.UNASSIGNED
