"""A reply's provider statuses reach its thread: what the agent sees is what the provider said."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from adapters.inmemory.processes import InMemoryProcessRunner
from adapters.inmemory.reply_statuses import InMemoryReplyStatusPorts
from application.processes.reply_statuses import CHORUS, ReplyStatuses
from domain.conversation.aggregate import ActingAgent, Conversation, ConversationStatus
from domain.message.aggregate import Attempt, Message, MessageStatus
from domain.message.content import Content
from domain.policy.vocabulary import Channel, Purpose
from tests.unit.application.inbox_world import InboxWorld

ANA = ActingAgent("ana", frozenset({"support"}))


class Desk:
    """A conversation held by Ana, the process following the log."""

    def __init__(self) -> None:
        self.world = InboxWorld()
        self.ports = InMemoryReplyStatusPorts(self.world.storage)
        self.process = InMemoryProcessRunner(
            ReplyStatuses(),
            self.ports,  # type: ignore[arg-type]
            self.world.store,
        )

    async def conversation(self) -> UUID:
        customer = await self.world.customer()
        return await self.world.conversation(customer, Channel.EMAIL, team="support", agent="ana")

    async def queued(self, customer_id: UUID, message_id: UUID | None = None) -> Message:
        message = Message.queue(
            id=message_id or uuid4(),
            timestamp=self.world.clock.now(),
            customer_id=customer_id,
            decision_id=uuid4(),
            channel=Channel.EMAIL,
            purpose=Purpose.SERVICE,
            team="support",
            recipient="ana@example.org",
            content=Content(subject="Re: your order", body="On its way"),
            campaign=None,
            template=None,
            template_version=None,
            correlation_id=None,
        )
        await self.save(message)
        return message

    async def replied(self, conversation_id: UUID, message_id: UUID) -> None:
        now = self.world.clock.now()
        await self.world.change(
            conversation_id,
            ("reply", (message_id, ANA, "On its way", self.world.rules, now)),
        )

    async def message(self, message_id: UUID) -> Message:
        async with self.world.uows() as uow:
            return (await uow.repository(Message).get([message_id]))[message_id]

    async def save(self, message: Message) -> None:
        async with self.world.uows() as uow:
            uow.repository(Message).add(message)

    async def accepted(self, message_id: UUID) -> None:
        message = await self.message(message_id)
        at = self.world.clock.now()
        attempt = Attempt("sendgrid", at, 80.0, True, "SG1", False)
        message.accepted((attempt,), "sendgrid", "SG1", MessageStatus.SENT, Decimal("0.001"), "USD")
        await self.save(message)

    async def reported(self, message_id: UUID, status: MessageStatus) -> None:
        message = await self.message(message_id)
        message.report(status, "sendgrid", self.world.clock.now())
        await self.save(message)

    async def status(self, conversation_id: UUID, message_id: UUID) -> MessageStatus:
        await self.process.catch_up()
        return (await self.world.load(conversation_id)).status_of(message_id)


async def test_a_reply_goes_from_queued_to_sent_to_delivered_in_its_thread() -> None:
    desk = Desk()
    thread = await desk.conversation()
    customer = (await desk.world.load(thread)).customer_id
    reply = (await desk.queued(customer)).id
    await desk.replied(thread, reply)
    assert await desk.status(thread, reply) is MessageStatus.QUEUED
    desk.world.clock.advance(timedelta(seconds=2))
    await desk.accepted(reply)
    assert await desk.status(thread, reply) is MessageStatus.SENT
    await desk.reported(reply, MessageStatus.DELIVERED)
    assert await desk.status(thread, reply) is MessageStatus.DELIVERED
    conversation = await desk.world.load(thread)
    updates = [e for e in desk.world.store.log if isinstance(e.event, Conversation.DeliveryUpdated)]
    assert [(e.event.status, e.event.by) for e in updates] == [  # type: ignore[attr-defined]
        (MessageStatus.SENT, "sendgrid"),
        (MessageStatus.DELIVERED, "sendgrid"),
    ]
    assert conversation.statuses == {reply: MessageStatus.DELIVERED}


async def test_a_reply_sent_before_its_thread_recorded_it_is_told_when_it_is() -> None:
    desk = Desk()
    thread = await desk.conversation()
    customer = (await desk.world.load(thread)).customer_id
    reply = (await desk.queued(customer)).id
    await desk.accepted(reply)
    await desk.reported(reply, MessageStatus.DELIVERED)
    await desk.process.catch_up()  # the message's events, read before its thread has it
    await desk.replied(thread, reply)
    assert await desk.status(thread, reply) is MessageStatus.DELIVERED


async def test_a_status_read_after_a_later_one_takes_nothing_back() -> None:
    desk = Desk()
    thread = await desk.conversation()
    customer = (await desk.world.load(thread)).customer_id
    reply = (await desk.queued(customer)).id
    await desk.replied(thread, reply)
    await desk.reported(reply, MessageStatus.READ)
    await desk.reported(reply, MessageStatus.DELIVERED)  # a webhook late and out of order
    assert await desk.status(thread, reply) is MessageStatus.READ
    updates = [e for e in desk.world.store.log if isinstance(e.event, Conversation.DeliveryUpdated)]
    assert len(updates) == 1


async def test_a_dispatch_that_failed_is_told_as_chorus_s() -> None:
    desk = Desk()
    thread = await desk.conversation()
    customer = (await desk.world.load(thread)).customer_id
    reply = (await desk.queued(customer)).id
    await desk.replied(thread, reply)
    message = await desk.message(reply)
    attempt = Attempt("sendgrid", desk.world.clock.now(), 30.0, False, "timed out", False)
    message.failed((attempt,), "no provider took it", desk.world.clock.now())
    await desk.save(message)
    assert await desk.status(thread, reply) is MessageStatus.FAILED
    (update,) = [
        e.event for e in desk.world.store.log if isinstance(e.event, Conversation.DeliveryUpdated)
    ]
    assert update.by == CHORUS  # type: ignore[attr-defined]


async def test_messages_that_are_no_reply_are_passed_by() -> None:
    desk = Desk()
    thread = await desk.conversation()
    customer = (await desk.world.load(thread)).customer_id
    other = (await desk.queued(customer)).id
    await desk.accepted(other)
    await desk.process.catch_up()
    assert desk.ports.reply_messages.threads == {}
    updates = [e for e in desk.world.store.log if isinstance(e.event, Conversation.DeliveryUpdated)]
    assert updates == []


async def test_a_reply_that_failed_puts_its_thread_back_to_waiting_on_us() -> None:
    desk = Desk()
    thread = await desk.conversation()
    customer = (await desk.world.load(thread)).customer_id
    wrote = (await desk.world.load(thread)).awaiting_since
    reply = (await desk.queued(customer)).id
    await desk.replied(thread, reply)
    assert (await desk.world.load(thread)).status is ConversationStatus.WAITING_ON_CUSTOMER
    message = await desk.message(reply)
    attempt = Attempt("sendgrid", desk.world.clock.now(), 30.0, False, "refused", False)
    message.failed((attempt,), "refused by every provider", desk.world.clock.now())
    await desk.save(message)
    assert await desk.status(thread, reply) is MessageStatus.FAILED
    conversation = await desk.world.load(thread)
    assert conversation.status is ConversationStatus.WAITING_ON_US
    facts = conversation.sla_facts()
    assert facts is not None
    assert (facts.awaiting_since, facts.answered_before) == (wrote, True)
    (undelivered,) = [
        e.event for e in desk.world.store.log if isinstance(e.event, Conversation.ReplyUndelivered)
    ]
    assert (undelivered.by, undelivered.reason) == (  # type: ignore[attr-defined]
        CHORUS,
        "the reply on email was not delivered (failed): the customer has no answer",
    )
    await desk.world.settle()
    row = await desk.world.inbox.get(thread)
    assert row is not None
    assert (row.status, row.awaiting_since) == (ConversationStatus.WAITING_ON_US, wrote)
