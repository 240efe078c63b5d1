"""A customer's context read from the in-memory read models: who they are, what they did
lately, their open conversations, and the last decisions about them with why."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

from adapters.inmemory.campaigns import InMemoryCampaigns
from adapters.inmemory.customer_context import InMemoryContextReads
from adapters.inmemory.directory import InMemoryDirectory
from adapters.inmemory.enrollments import InMemoryEnrollments
from adapters.inmemory.inbox import InMemoryInbox
from adapters.inmemory.segments import InMemorySegments
from application.messages.compose import MessageContent
from application.queries.customer_context import LAST_ITEMS, ContextQueries
from application.queries.customers import CustomerQueries
from domain.assistant.classification import Urgency
from domain.assistant.urgency import urgency
from domain.conversation.aggregate import CUSTOMER, Conversation
from domain.conversation.vocabulary import Sentiment
from domain.customer.aggregate import ClassifiedMessage, Customer
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityClaim, Verification
from domain.message.content import Content
from domain.policy.decision import SendRequest
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import NotFound
from ports.enrollments import EnrollmentView
from tests.unit.application.inbox_world import InboxWorld
from tests.unit.in_memory_chorus import MONDAY_NOON, InMemoryChorus, claim, report

if TYPE_CHECKING:
    from uuid import UUID

ANA = claim("email", "ana@example.org")
ANA_PHONE = IdentityClaim(claim("phone", "+351912345678").identity, Verification.VERIFIED)
NEWSLETTER = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,))
HELLO = MessageContent(inline=Content(subject="Hello", body="Hi!"), campaign="winter")


class ContextWorld(InMemoryChorus):
    """An installation with the read models the context reads, kept up with the log."""

    def __init__(self) -> None:
        super().__init__()
        self.inbox = InMemoryInbox()
        self.enrollments = InMemoryEnrollments()
        self.context = ContextQueries(
            CustomerQueries(self.customers),
            InMemoryContextReads(self.storage),
            InMemoryDirectory(self.storage),
            InMemorySegments(self.storage),
            self.enrollments,
            InMemoryCampaigns(self.storage),
            self.inbox,
            self.uows,
            self.clock,
        )

    async def signal(self, kind: str, ago: timedelta, customer: IdentityClaim = ANA) -> None:
        at = self.clock.now() - ago
        await self.ingest([report(str(uuid4()), customer, kind=kind, occurred_at=at)])

    async def conversation(
        self, customer_id: UUID, topic: str, intent: str, sentiment: Sentiment
    ) -> Conversation:
        now = self.clock.now()
        conversation = Conversation.start(customer_id, CUSTOMER, now, topic)
        conversation.receive(uuid4(), Channel.EMAIL, "help", now, now)
        conversation.classify(intent, sentiment, "classifier", now, confidence=0.9)
        async with self.uows() as uow:
            uow.repository(Conversation).add(conversation)
        return conversation

    def enroll(self, customer_id: UUID, campaigns: int) -> None:
        for entry in range(campaigns):
            data = {
                "campaign_id": uuid4(),
                "campaign_version": 1,
                "customer_id": customer_id,
                "entry": entry,
                "source": "segment",
            }
            view = EnrollmentView.entered(uuid4(), data, self.clock.now(), entry + 1)
            self.enrollments.views[view.enrollment_id] = view

    def settle(self) -> None:
        self.inbox.apply(self.storage.events.log[self.inbox.seq :])


class TestWhoTheCustomerIs:
    async def test_the_tier_attributes_and_identities_with_the_unverified_flagged(self) -> None:
        world = ContextWorld()
        ana = await world.upsert((ANA, ANA_PHONE), {"first_name": "Ana"}, {"tier": "vip"})
        context = await world.context.of(ana.customer_id)
        assert (context.customer_id, context.merged_into) == (ana.customer_id, None)
        assert (context.tier, context.attributes) == ("vip", {"tier": "vip"})
        flagged = {(i.type, i.value, i.too_low) for i in context.identities}
        assert flagged == {("email", "ana@example.org", True), ("phone", "+351912345678", False)}
        assert context.unverified

    async def test_an_unknown_customer_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            await ContextWorld().context.of(uuid4())

    async def test_a_merged_id_answers_for_the_survivor_and_says_it_was_merged(self) -> None:
        world = ContextWorld()
        older = await world.upsert((ANA,), {}, {})
        newer = await world.upsert((ANA_PHONE,), {}, {"tier": "gold"})
        await world.upsert((ANA, ANA_PHONE), {}, {})
        context = await world.context.of(newer.customer_id)
        assert (context.customer_id, context.merged_into) == (older.customer_id, older.customer_id)
        assert context.tier == "gold"


class TestWhatHappenedRecently:
    async def test_the_last_signals_newest_first_and_counts_in_the_window(self) -> None:
        world = ContextWorld()
        ana = (await world.upsert((ANA,), {}, {})).customer_id
        for hours in range(7):
            await world.signal("page.viewed", timedelta(hours=hours + 1))
        await world.signal("page.viewed", timedelta(days=40))
        context = await world.context.of(ana)
        assert len(context.last_signals) == LAST_ITEMS
        times = [s.occurred_at for s in context.last_signals]
        assert times == sorted(times, reverse=True)
        assert times[0] == MONDAY_NOON - timedelta(hours=1)
        ((counted),) = context.signal_counts
        assert (counted.signal_type, counted.count) == ("page.viewed", 7)

    async def test_orders_are_the_signals_of_the_order_types(self) -> None:
        world = ContextWorld()
        ana = (await world.upsert((ANA,), {}, {})).customer_id
        await world.signal("order.placed", timedelta(days=2))
        await world.signal("purchase", timedelta(days=1))
        await world.signal("page.viewed", timedelta(hours=1))
        await world.signal("order.placed", timedelta(days=45))
        context = await world.context.of(ana)
        assert context.orders == 2
        assert [o.signal_type for o in context.last_orders] == [
            "purchase",
            "order.placed",
            "order.placed",
        ]
        assert context.last_signals[0].signal_type == "page.viewed"

    async def test_the_campaigns_they_are_in_are_counted_and_the_first_few_listed(self) -> None:
        world = ContextWorld()
        ana = (await world.upsert((ANA,), {}, {})).customer_id
        world.enroll(ana, LAST_ITEMS + 2)
        world.enroll(uuid4(), 1)
        context = await world.context.of(ana)
        assert context.campaigns == LAST_ITEMS + 2
        assert len(context.in_campaigns) == LAST_ITEMS


class TestOpenConversations:
    async def test_open_conversations_with_their_intents_and_no_resolved_one(self) -> None:
        world = ContextWorld()
        ana = (await world.upsert((ANA,), {}, {"tier": "vip"})).customer_id
        await world.conversation(ana, "billing", "request_refund", Sentiment.NEGATIVE)
        closed = await world.conversation(ana, "cards", "card_arrival", Sentiment.NEUTRAL)
        closed.resolve("answered", "agent-1", world.clock.now())
        async with world.uows() as uow:
            uow.repository(Conversation).add(closed)
        world.settle()
        context = await world.context.of(ana)
        assert context.open_conversations == 1
        ((open_one),) = context.conversations
        assert (open_one.topic, open_one.intent, open_one.sentiment) == (
            "billing",
            "request_refund",
            "negative",
        )

    async def test_urgency_reads_the_tier_and_the_negative_conversations(self) -> None:
        world = ContextWorld()
        ana = (await world.upsert((ANA,), {}, {"tier": "vip"})).customer_id
        for topic in ("billing", "cards"):
            await world.conversation(ana, topic, "card_arrival", Sentiment.NEGATIVE)
        world.settle()
        seen = (await world.context.of(ana)).for_urgency()
        assert (seen.tier, seen.open_conversations, seen.recent_negative_messages) == ("vip", 2, 2)
        # Normal intent, mildly negative: raised once for repeated anger, once for the tier.
        assert urgency("card_arrival", -0.1, seen) is Urgency.CRITICAL
        assert urgency("card_arrival", -0.1, None) is Urgency.NORMAL


class TestLastDecisions:
    async def test_the_last_decisions_newest_first_with_their_reasons_and_suppressions(
        self,
    ) -> None:
        world = ContextWorld()
        ana = (await world.upsert((ANA,), {}, {})).customer_id
        grant = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
        await world.change_consent(ana, [grant])
        sent = await world.request_message(ana, NEWSLETTER, content=HELLO)
        await world.change_consent(ana, [ConsentRecord(Channel.EMAIL, None, False, "STOP")])
        suppressed = await world.request_message(ana, NEWSLETTER, content=HELLO)
        await world.change_suppression(ana, Channel.SMS, "hard bounce", active=True)
        context = await world.context.of(ana)
        assert [d.decision_id for d in context.decisions] == [
            str(suppressed.decision_id),
            str(sent.decision_id),
        ]
        last = context.decisions[0]
        assert (last.outcome, last.channel, last.purpose) == ("suppress", None, "marketing")
        assert last.reasons
        assert context.suppressions == {"sms": "hard bounce"}

    async def test_only_the_last_few_decisions_are_shown(self) -> None:
        world = ContextWorld()
        ana = (await world.upsert((ANA,), {}, {})).customer_id
        for _ in range(LAST_ITEMS + 2):
            await world.request_message(ana, NEWSLETTER, content=HELLO)
        assert len((await world.context.of(ana)).decisions) == LAST_ITEMS


class TestClassifiedMessages:
    async def test_the_last_classified_messages_newest_first_without_their_text(self) -> None:
        world = ContextWorld()
        ana = (await world.upsert((ANA,), {}, {})).customer_id
        intents = ["refund", "delivery", "billing", "cancel", "account", "complaint", "refund"]
        for n, intent in enumerate(intents):
            async with world.uows() as uow:
                customers = uow.repository(Customer)
                customer = (await customers.get([ana]))[ana]
                message = ClassifiedMessage(
                    uuid4(),
                    Channel.WHATSAPP,
                    world.clock.now() + timedelta(minutes=n),
                    intent,
                    0.8,
                    "negative",
                    -0.4,
                    "high",
                )
                customer.note_classified(message, world.clock.now())
                customers.add(customer)
        context = await world.context.of(ana)
        assert [c.intent for c in context.classified] == [
            "refund",
            "complaint",
            "account",
            "cancel",
            "billing",
        ]
        latest = context.classified[0]
        assert (latest.channel, latest.sentiment, latest.urgency) == (
            "whatsapp",
            "negative",
            "high",
        )
        assert latest.received_at == world.clock.now() + timedelta(minutes=6)
        # Kept with the signals for segments, but never counted as a signal.
        assert context.signal_counts == []
        assert context.last_signals == []


class TestTheInboxThreadReadsIt:
    async def test_the_thread_shows_the_customers_context_and_none_for_an_unknown_one(
        self,
    ) -> None:
        world = InboxWorld()
        await world.routing()
        ana = await world.customer("ana@example.org", tier="gold")
        known = await world.conversation(ana, Channel.EMAIL)
        stranger = await world.conversation(uuid4(), Channel.EMAIL)
        await world.settle()
        thread = await world.queries.conversation(known, None)
        assert thread.customer == await world.queries.context.of(ana)
        assert thread.customer is not None
        assert (thread.customer.tier, thread.customer.open_conversations) == ("gold", 1)
        assert (await world.queries.conversation(stranger, None)).customer is None
