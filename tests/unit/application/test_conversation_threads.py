"""Inbound messages into threads, classified and routed, and queues drained as capacity frees,
on the in-memory adapters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from application.conversations.actors import Actor
from application.conversations.assign import AgentAtCapacity
from application.messages.request_message import IdempotencyKeyReused
from domain.conversation.aggregate import (
    ActingAgent,
    AlreadyAssigned,
    AssignmentKind,
    Conversation,
    ConversationStatus,
    NotOnTeam,
)
from domain.conversation.vocabulary import ChannelKind, Presence, Priority, Sentiment
from domain.customer.identities import Verification
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue
from ports.conversation_roster import AgentOverCapacity
from tests.unit.application.conversation_world import SUPPORT_ONLY, ConversationWorld, customer
from tests.unit.in_memory_chorus import claim, report

CHAT = {ChannelKind.CHAT: 1, ChannelKind.EMAIL: 5}


async def world_with(*agents: tuple[str, dict[ChannelKind, int]]) -> ConversationWorld:
    world = ConversationWorld()
    for key, capacity in agents:
        await world.agent(key, capacity)
    await world.team("support", *(key for key, _ in agents))
    await world.routing(SUPPORT_ONLY)
    await world.settle()
    return world


class TestThreading:
    async def test_one_customer_writing_on_three_channels_is_one_thread(self) -> None:
        world = await world_with(("ana", CHAT))
        email, phone = claim("email", "rui@example.org"), claim("phone", "+351912345678")
        await world.chorus.ingest(
            [
                # A signal naming both identities makes them one customer.
                report("crm:1", email, phone, kind="customer.updated")
            ]
        )
        await world.inbound(email, "email", "Where is my parcel?")
        await world.inbound(phone, "whatsapp", "Any news on the parcel?")
        await world.inbound(phone, "sms", "Hello?")
        conversation = await world.conversation(email)
        assert [m.channel for m in conversation.messages] == [
            Channel.EMAIL,
            Channel.WHATSAPP,
            Channel.SMS,
        ]
        assert conversation.id == (await world.conversation(phone)).id
        assert conversation.last_channel is Channel.SMS

    async def test_an_unknown_sender_becomes_a_new_customer_with_an_unverified_identity(
        self,
    ) -> None:
        world = await world_with(("ana", CHAT))
        stranger = claim("phone", "+447700900123")
        await world.inbound(stranger, "sms", "hi, who is this?")
        customer_id = await world.customer_of(stranger)
        found = await world.chorus.customer(customer_id)
        assert found.identities == {stranger.identity: Verification.UNVERIFIED}
        assert len((await world.conversation(stranger)).messages) == 1

    async def test_the_same_inbound_message_twice_is_in_the_thread_once(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.inbound(customer(1), "email", "my invoice is wrong", event_id="smtp:a1")
        await world.inbound(customer(1), "email", "my invoice is wrong", event_id="smtp:a1")
        world.runner.position = 0  # the whole log read again, as after a crash
        await world.settle()
        conversation = await world.conversation(customer(1))
        assert len(conversation.messages) == 1
        assert [a.kind for a in conversation.history] == [AssignmentKind.ASSIGNED]

    async def test_a_resolved_conversation_reopens_on_a_new_inbound(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.inbound(customer(1), "email", "refund please")
        async with world.uows() as uow:
            conversations = uow.repository(Conversation)
            found = await world.conversation(customer(1))
            found = (await conversations.get([found.id]))[found.id]
            found.resolve("refunded", "ana", world.clock.now())
            conversations.add(found)
        assert await world.load("ana") == {ChannelKind.EMAIL: 0}
        await world.inbound(customer(1), "email", "the refund did not arrive")
        conversation = await world.conversation(customer(1))
        assert conversation.status is ConversationStatus.WAITING_ON_US
        assert conversation.reopened == 1
        assert conversation.agent == "ana"
        assert await world.load("ana") == {ChannelKind.EMAIL: 1}

    @pytest.mark.parametrize("channel", ["pigeon", 42, None])
    async def test_a_recorded_message_with_no_channel_chorus_knows_is_logged_and_passed_by(
        self, channel: object
    ) -> None:
        world = await world_with(("ana", CHAT))
        with capture_logs() as logs:
            await world.inbound(customer(1), channel, "coo")  # type: ignore[arg-type]
        assert not world.store.started_by(Conversation)
        (said,) = [e for e in logs if e["event"] == "inbound message not threaded"]
        assert said["log_level"] == "warning"
        assert said["reason"].startswith("its channel ")
        assert said["customer_id"] == str(await world.customer_of(customer(1)))
        assert "coo" not in repr(said)

    @pytest.mark.parametrize("topic", ["Not A Key!! ", "x" * 300, ["billing"], True])
    async def test_a_recorded_message_whose_topic_is_no_key_is_threaded_in_the_default_topic(
        self, topic: object
    ) -> None:
        """The edge refuses it; one recorded all the same (older data) is never parked: it is
        threaded in `support`, and Chorus's note in the thread says why."""
        world = await world_with(("ana", CHAT))
        with capture_logs() as logs:
            await world.inbound(customer(1), "sms", "Where is my card?", topic=topic)
        conversation = await world.conversation(customer(1))
        assert [m.text for m in conversation.messages] == ["Where is my card?"]
        assert conversation.agent == "ana"
        (note,) = conversation.notes
        assert note.author == "chorus"
        assert note.text.startswith("The message named the topic ")
        assert "is not a topic key like 'order-42'" in note.text or "characters long" in note.text
        assert note.text.endswith("threaded in the default topic 'support'.")
        assert len(note.text) < 400  # a long topic is shown cut
        (said,) = [e for e in logs if e["event"] == "inbound message threaded in the default topic"]
        assert said["reason"].startswith("its topic ")

    async def test_a_message_threaded_in_the_default_topic_is_noted_once_when_read_again(
        self,
    ) -> None:
        world = await world_with(("ana", CHAT))
        await world.inbound(customer(1), "sms", "hi", event_id="twilio:h-1", topic="Not A Key!")
        world.runner.position = 0  # the whole log read again, as after a crash
        await world.settle()
        conversation = await world.conversation(customer(1))
        assert (len(conversation.messages), len(conversation.notes)) == (1, 1)

    async def test_a_topic_given_as_a_number_names_the_topic_it_writes_as_it_always_has(
        self,
    ) -> None:
        world = await world_with(("ana", CHAT))
        await world.inbound(customer(1), "sms", "hi", topic=42)
        conversation = await world.conversation(customer(1), topic="42")
        assert (len(conversation.messages), conversation.notes) == (1, [])


class TestClassifying:
    async def test_intent_and_sentiment_are_recorded_on_the_thread(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.inbound(customer(1), "whatsapp", "This is terrible, I want a refund")
        known = (await world.conversation(customer(1))).classification
        assert known is not None
        assert (known.intent, known.sentiment) == ("refund", Sentiment.NEGATIVE)

    async def test_a_message_with_no_intent_keeps_the_threads(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.inbound(customer(1), "email", "I want a refund")
        await world.inbound(customer(1), "email", "any news? this is awful")
        known = (await world.conversation(customer(1))).classification
        assert known is not None
        assert (known.intent, known.sentiment) == ("refund", Sentiment.NEGATIVE)

    async def test_urgency_and_score_are_recorded_and_a_vaguer_message_keeps_the_urgency(
        self,
    ) -> None:
        world = await world_with(("ana", CHAT))
        await world.inbound(customer(1), "email", "This is terrible, I want a refund")
        angry = (await world.conversation(customer(1))).classification
        assert angry is not None
        assert (angry.urgency, angry.sentiment_score) == ("high", -0.5)  # anger raises it
        await world.inbound(customer(1), "email", "any news?")
        known = (await world.conversation(customer(1))).classification
        assert known is not None
        assert (known.intent, known.urgency) == ("refund", "high")

    async def test_routing_reads_the_urgency(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.routing(
            {
                "default_team": "support",
                "escalations": [{"id": "pressing", "urgencies": ["high"], "priority": "urgent"}],
            }
        )
        await world.inbound(customer(1), "email", "This is terrible, I want a refund")
        await world.inbound(customer(2), "email", "I want a refund")
        assert (await world.conversation(customer(1))).priority is Priority.URGENT
        assert (await world.conversation(customer(2))).priority is Priority.NORMAL


class TestRouting:
    async def test_routing_picks_the_least_loaded_agent_with_the_right_skill(self) -> None:
        world = ConversationWorld()
        await world.agent("ana", {ChannelKind.CHAT: 3}, skills=frozenset({"billing"}))
        await world.agent("rui", {ChannelKind.CHAT: 3}, skills=frozenset({"billing"}))
        await world.agent("eva", {ChannelKind.CHAT: 9})  # free, but no billing skill
        await world.team("billing", "ana", "rui", "eva", skills=frozenset({"billing"}))
        await world.team("support", "eva")
        await world.routing(
            {
                "default_team": "support",
                "rules": [
                    {
                        "id": "money",
                        "intents": ["refund", "billing"],
                        "team": "billing",
                        "skills": ["billing"],
                    }
                ],
            }
        )
        await world.inbound(customer(1), "whatsapp", "refund my order")
        await world.inbound(customer(2), "whatsapp", "a refund please")
        await world.inbound(customer(3), "whatsapp", "my refund?")
        holders = [(await world.conversation(customer(n))).agent for n in (1, 2, 3)]
        assert holders == ["ana", "rui", "ana"]
        assert await world.load("ana") == {ChannelKind.CHAT: 2}
        assert (await world.conversation(customer(1))).history[0].reason.startswith("money:")

    async def test_a_vip_with_negative_sentiment_is_escalated(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.agent("vic", CHAT)
        await world.team("vip-desk", "vic")
        await world.routing(
            {
                "default_team": "support",
                "escalations": [
                    {"id": "vip", "tiers": ["vip"], "priority": "urgent", "team": "vip-desk"},
                    {"id": "upset", "sentiments": ["negative"], "priority": "high"},
                ],
            }
        )
        vip = claim("email", "vip@example.org")
        await world.chorus.ingest(
            [report("crm:vip", vip, kind="customer.updated", attributes={"tier": "vip"})]
        )
        await world.inbound(vip, "email", "this is awful")
        conversation = await world.conversation(vip)
        assert (conversation.team, conversation.agent) == ("vip-desk", "vic")
        assert conversation.priority is Priority.URGENT

    async def test_a_rule_reads_the_customers_recent_signals(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.agent("olga", CHAT)
        await world.team("orders", "olga")
        recent = {
            "type": "signal_count",
            "signal": "order.placed",
            "within": "7d",
            "op": "gte",
            "value": 1,
        }
        await world.routing(
            {
                "default_team": "support",
                "rules": [{"id": "buyers", "when": recent, "team": "orders"}],
            }
        )
        buyer = customer(1)
        world.clock.advance(timedelta(hours=1))
        await world.chorus.ingest(
            [report("shop:1", buyer, kind="order.placed", occurred_at=world.clock.now())]
        )
        await world.inbound(buyer, "email", "hello")
        await world.inbound(customer(2), "email", "hello")
        assert (await world.conversation(buyer)).agent == "olga"
        assert (await world.conversation(customer(2))).agent == "ana"

    async def test_with_no_routing_document_the_thread_waits_unrouted(self) -> None:
        world = ConversationWorld()
        await world.inbound(customer(1), "email", "hello")
        conversation = await world.conversation(customer(1))
        assert (conversation.team, conversation.agent, conversation.history) == (None, None, [])


class TestQueues:
    async def test_a_full_team_queues_and_drains_in_order_as_capacity_frees(self) -> None:
        world = await world_with(("ana", {ChannelKind.CHAT: 1}))
        upset = {"id": "upset", "sentiments": ["negative"], "priority": "high"}
        await world.routing({**SUPPORT_ONLY, "escalations": [upset]})
        for n in range(1, 5):
            await world.inbound(customer(n), "whatsapp", f"hello {n}")
        await world.inbound(customer(5), "whatsapp", "this is terrible")  # negative: high
        first = await world.conversation(customer(1))
        assert first.agent == "ana"
        assert await world.roster.queues() == {"support": 4}
        order = []
        for _ in range(4):
            held = next(
                c
                for c in [await world.conversation(customer(n)) for n in range(1, 6)]
                if c.agent == "ana" and c.is_open
            )
            async with world.uows() as uow:
                conversations = uow.repository(Conversation)
                found = (await conversations.get([held.id]))[held.id]
                found.resolve("answered", "ana", world.clock.now())
                conversations.add(found)
            await world.settle()
            now_held = [
                n
                for n in range(1, 6)
                if (c := await world.conversation(customer(n))).agent == "ana" and c.is_open
            ]
            order += now_held
        # The highest priority first, then the longest waiting; never two at once for ana.
        assert order == [5, 2, 3, 4]
        assert await world.roster.queues() == {}

    async def test_an_agent_who_comes_back_takes_from_the_queue(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.change_agent("ana", presence=Presence.AWAY)
        await world.settle()
        await world.inbound(customer(1), "email", "hello")
        assert (await world.conversation(customer(1))).agent is None
        await world.change_agent("ana", presence=Presence.AVAILABLE)
        await world.settle()
        conversation = await world.conversation(customer(1))
        assert conversation.agent == "ana"
        assert conversation.history[-1].reason == "offered from the support queue as ana had room"

    async def test_a_raised_capacity_drains_the_queue(self) -> None:
        world = await world_with(("ana", {ChannelKind.CHAT: 1}))
        await world.inbound(customer(1), "sms", "one")
        await world.inbound(customer(2), "sms", "two")
        assert (await world.conversation(customer(2))).agent is None
        await world.change_agent("ana", capacity={ChannelKind.CHAT: 2})
        await world.settle()
        assert (await world.conversation(customer(2))).agent == "ana"
        assert await world.load("ana") == {ChannelKind.CHAT: 2}

    async def test_a_drain_with_nobody_free_reads_only_the_teams_and_their_members(self) -> None:
        world = await world_with(("ana", {ChannelKind.CHAT: 1}))
        await world.inbound(customer(1), "sms", "one")
        await world.inbound(customer(2), "sms", "two")  # queued: ana is full
        reads: list[str] = []
        roster = world.roster
        for name in ("teams", "candidates", "queued"):
            setattr(roster, name, _noting(reads, name, getattr(roster, name)))
        policies = world.drain.router.policy

        async def policy(uow: object) -> object:
            reads.append("policy")
            return await policies(uow)  # type: ignore[arg-type]

        world.drain.router.policy = policy  # type: ignore[method-assign]
        assert (await world.drain()).assigned == ()
        assert reads == ["teams", "candidates"]
        await world.change_agent("ana", capacity={ChannelKind.CHAT: 2})
        reads.clear()
        assert [offer.agent for offer in (await world.drain()).assigned] == ["ana"]
        assert reads[:4] == ["teams", "candidates", "policy", "queued"]

    async def test_the_queue_is_offered_only_to_members_with_the_skills_routing_asked_for(
        self,
    ) -> None:
        world = ConversationWorld()
        await world.agent("ana", {ChannelKind.CHAT: 3}, presence=Presence.AWAY)
        await world.agent("bea", {ChannelKind.CHAT: 3}, skills=frozenset({"billing"}))
        await world.agent("eva", {ChannelKind.CHAT: 1})  # no billing skill
        await world.team("billing", "ana", "bea", "eva", skills=frozenset({"billing"}))
        await world.routing(
            {
                "default_team": "billing",
                "rules": [
                    {"id": "money", "intents": ["refund"], "team": "billing", "skills": ["billing"]}
                ],
            }
        )
        await world.change_agent("bea", presence=Presence.AWAY)
        await world.settle()
        await world.inbound(customer(1), "whatsapp", "refund my order")  # needs billing
        queued = await world.conversation(customer(1))
        assert (queued.team, queued.agent, queued.queue_skills) == (
            "billing",
            None,
            frozenset({"billing"}),
        )
        await world.change_agent("ana", presence=Presence.AVAILABLE)  # back, but no skill
        await world.settle()
        assert (await world.conversation(customer(1))).agent is None
        await world.inbound(customer(2), "whatsapp", "hello")  # no rule: anyone of billing
        assert (await world.conversation(customer(2))).agent == "ana"
        await world.change_agent("bea", presence=Presence.AVAILABLE)
        await world.settle()
        assert (await world.conversation(customer(1))).agent == "bea"


class TestCapacity:
    async def test_a_commit_over_an_agents_capacity_fails_whole(self) -> None:
        world = await world_with(("ana", {ChannelKind.CHAT: 1}))
        await world.inbound(customer(1), "sms", "one")
        await world.inbound(customer(2), "sms", "two")
        queued = await world.conversation(customer(2))

        async def force_to_ana() -> None:
            async with world.uows() as uow:
                conversations = uow.repository(Conversation)
                found = (await conversations.get([queued.id]))[queued.id]
                ana = ActingAgent("ana", frozenset({"support"}))
                found.assign(ana, "support", "forced", "test", world.clock.now())
                conversations.add(found)

        with pytest.raises(AgentOverCapacity):
            await force_to_ana()
        assert await world.load("ana") == {ChannelKind.CHAT: 1}
        assert (await world.conversation(customer(2))).agent is None


class TestAssign:
    async def test_an_agent_with_room_is_assigned_with_the_reason(self) -> None:
        world = await world_with(("ana", CHAT), ("rui", CHAT))
        await world.change_agent("rui", presence=Presence.AWAY)
        await world.change_agent("ana", presence=Presence.AWAY)
        await world.inbound(customer(1), "email", "hello")
        thread = (await world.conversation(customer(1))).id
        done = await world.assign(thread, "rui", "knows this customer", Actor("lead"))
        assert (done.agent, done.changed) == ("rui", True)
        last = (await world.conversation(customer(1))).history[-1]
        assert (last.kind, last.agent, last.reason, last.by) == (
            AssignmentKind.ASSIGNED,
            "rui",
            "knows this customer",
            "lead",
        )

    async def test_a_second_agent_racing_for_it_is_refused(self) -> None:
        world = await world_with(("ana", CHAT), ("rui", CHAT))
        for key in ("ana", "rui"):
            await world.change_agent(key, presence=Presence.AWAY)
        await world.inbound(customer(1), "email", "hello")
        thread = (await world.conversation(customer(1))).id
        await world.assign(thread, "ana", "mine", Actor("ana"))
        with pytest.raises(AlreadyAssigned):
            await world.assign(thread, "rui", "mine", Actor("rui"))

    async def test_an_agent_at_capacity_is_refused(self) -> None:
        world = await world_with(("ana", {ChannelKind.EMAIL: 1}))
        await world.inbound(customer(1), "email", "one")
        await world.inbound(customer(2), "email", "two")
        queued = (await world.conversation(customer(2))).id
        with pytest.raises(AgentAtCapacity):
            await world.assign(queued, "ana", "please", Actor("lead"))

    async def test_a_retry_with_its_idempotency_key_answers_what_it_did(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.change_agent("ana", presence=Presence.AWAY)
        await world.inbound(customer(1), "email", "hello")
        thread = (await world.conversation(customer(1))).id
        first = await world.assign(thread, "ana", "mine", Actor("lead"), idempotency_key="k1")
        again = await world.assign(thread, "ana", "mine", Actor("lead"), idempotency_key="k1")
        assert (first.changed, again.changed, again.agent) == (True, False, "ana")
        with pytest.raises(IdempotencyKeyReused):
            await world.assign(thread, "ana", "another reason", Actor("lead"), idempotency_key="k1")

    async def test_an_agent_acting_on_another_teams_conversation_is_refused(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.agent("bo", CHAT)
        await world.team("billing", "bo")
        await world.change_agent("ana", presence=Presence.AWAY)
        await world.inbound(customer(1), "email", "hello")
        thread = (await world.conversation(customer(1))).id
        bo = Actor("bo", ActingAgent("bo", frozenset({"billing"})))
        with pytest.raises(NotOnTeam):
            await world.assign(thread, "ana", "I take it for ana", bo)
        assert (await world.conversation(customer(1))).agent is None

    async def test_an_agent_not_on_the_team_cannot_be_given_it(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.agent("bo", CHAT)
        await world.team("billing", "bo")
        await world.change_agent("ana", presence=Presence.AWAY)
        await world.inbound(customer(1), "email", "hello")
        thread = (await world.conversation(customer(1))).id
        with pytest.raises(InvalidValue, match="agent"):
            await world.assign(thread, "bo", "why not", Actor("lead"))


class TestTransfer:
    async def test_a_transfer_to_a_team_queues_it_there_and_frees_its_agent(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.agent("bo", CHAT, presence=Presence.AWAY)
        await world.team("billing", "bo")
        await world.inbound(customer(1), "email", "hello")
        thread = (await world.conversation(customer(1))).id
        await world.transfer(thread, "billing", "an invoice question", Actor("ana"))
        conversation = await world.conversation(customer(1))
        assert (conversation.team, conversation.agent) == ("billing", None)
        assert conversation.history[-1].reason == "an invoice question"
        assert await world.load("ana") == {ChannelKind.EMAIL: 0}
        await world.change_agent("bo", presence=Presence.AVAILABLE)
        await world.settle()
        assert (await world.conversation(customer(1))).agent == "bo"

    async def test_a_transfer_to_an_agent_of_the_team_assigns_them(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.agent("bo", CHAT)
        await world.team("billing", "bo")
        await world.inbound(customer(1), "email", "hello")
        thread = (await world.conversation(customer(1))).id
        await world.transfer(thread, "billing", "invoice", Actor("ana"), agent="bo")
        assert await world.load("bo") == {ChannelKind.EMAIL: 1}
        assert await world.load("ana") == {ChannelKind.EMAIL: 0}

    async def test_a_transfer_to_an_unknown_team_is_not_found(self) -> None:
        world = await world_with(("ana", CHAT))
        await world.inbound(customer(1), "email", "hello")
        thread = (await world.conversation(customer(1))).id
        with pytest.raises(LookupError):
            await world.transfer(thread, "nobody", "why not", Actor("ana"))


def _noting(reads: list[str], name: str, read: Any) -> Any:
    async def noted(*args: Any) -> Any:
        reads.append(name)
        return await read(*args)

    return noted
