"""Conversation events go out on `conversations.*` about the conversation, in its order, with
who acted and why, and never the text of a message or a note."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import uuid4

import msgspec
import msgspec.structs

from application.outbound.payloads import (
    ConversationAssignmentV1,
    ConversationMessageV1,
    ConversationSlaBreachedV1,
    ConversationStartedV1,
    ConversationStatusV1,
)
from application.processes.outbound_events import OutboundEvents
from domain.conversation.aggregate import ActingAgent, Conversation
from domain.conversation.sla import Deadline, SlaKind
from domain.policy.defaults import default_rule_set
from domain.policy.vocabulary import Channel
from tests.unit.application.test_outbound_events import CODEC, T0, RecordingPublisher, decode

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from ports.bus import OutboundMessage

ANA = ActingAgent("ana", frozenset({"support"}))


def stored(conversation: Conversation) -> list[CanMutateAggregate[UUID]]:
    return [
        CODEC.decode(*msgspec.structs.astuple(CODEC.encode(e)))
        for e in conversation.collect_events()
    ]


async def publish(conversation: Conversation) -> list[OutboundMessage]:
    publisher = RecordingPublisher()
    await OutboundEvents(publisher, prefix="chorus").handle(stored(conversation), None)
    return publisher.messages


class TestConversationEvents:
    async def test_a_thread_goes_out_in_order_about_the_conversation_without_its_text(
        self,
    ) -> None:
        customer = uuid4()
        conversation = Conversation.start(customer, "customer", T0)
        conversation.receive(uuid4(), Channel.EMAIL, "my secret card number", T0, T0)
        conversation.assign(ANA, "support", "least loaded", "router", T0)
        reply = uuid4()
        conversation.reply(reply, ANA, "sorted, secretly", default_rule_set(), T0)
        conversation.add_note(uuid4(), ANA, "internal", T0)
        conversation.resolve("done", "ana", T0)
        messages = await publish(conversation)
        assert [m.subject for m in messages] == [
            "chorus.out.conversations.started",
            "chorus.out.conversations.message_received",
            "chorus.out.conversations.assigned",
            "chorus.out.conversations.message_sent",
            "chorus.out.conversations.resolved",
        ]
        assert [m.message_id for m in messages] == [
            f"{conversation.id}:{n}" for n in (1, 2, 3, 4, 6)
        ]
        assert all(b"secret" not in m.payload and b"internal" not in m.payload for m in messages)
        started = decode(messages[0], ConversationStartedV1)
        assert (started.subject, started.data) == (
            str(conversation.id),
            ConversationStartedV1(
                conversation_id=conversation.id,
                customer_id=customer,
                topic="support",
                by="customer",
            ),
        )
        sent = decode(messages[3], ConversationMessageV1).data
        assert (sent.message_id, sent.direction, sent.channel, sent.by) == (
            reply,
            "outbound",
            "email",
            "ana",
        )
        assigned = decode(messages[2], ConversationAssignmentV1).data
        assert (assigned.change, assigned.team, assigned.agent, assigned.reason) == (
            "assigned",
            "support",
            "ana",
            "least loaded",
        )
        resolved = decode(messages[4], ConversationStatusV1).data
        assert (resolved.status, resolved.reason) == ("resolved", "done")

    async def test_a_breach_goes_out_with_its_target_and_due_time(self) -> None:
        conversation = Conversation.start(uuid4(), "customer", T0)
        conversation.receive(uuid4(), Channel.CHAT, "hello?", T0, T0)
        conversation.collect_events()
        due = T0 + timedelta(minutes=2)
        deadline = Deadline(SlaKind.FIRST_RESPONSE, due, timedelta(minutes=2))
        conversation.record_breach(deadline, "sla-timer", due)
        (message,) = await publish(conversation)
        assert message.subject == "chorus.out.conversations.sla_breached"
        assert decode(message, ConversationSlaBreachedV1).data == ConversationSlaBreachedV1(
            conversation_id=conversation.id, sla="first_response", due=due, by="sla-timer"
        )
