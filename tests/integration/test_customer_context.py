"""A customer's context on PostgreSQL: the last signals and orders from the signal read models,
the open conversations from the inbox, the last decisions from the customer's streams, a merged
customer's under their survivor."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

from adapters.postgres.campaigns import PostgresCampaigns
from adapters.postgres.customer_context import PostgresContextReads
from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.directory_queries import PostgresDirectory
from adapters.postgres.enrollments import PostgresEnrollments
from adapters.postgres.inbox import InboxListing, PostgresInbox
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.segments import PostgresSegments
from adapters.postgres.signal_activity import SignalActivity
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from adapters.system.rule_sets import DefaultRuleSets
from application.customer.signals import IngestSignals
from application.customer.upsert_customer import UpsertCustomer
from application.messages.request_message import RequestMessage
from application.queries.customer_context import LAST_ITEMS, ContextQueries
from application.queries.customers import CustomerQueries
from domain.conversation.aggregate import CUSTOMER, Conversation
from domain.conversation.vocabulary import Sentiment
from domain.customer.aggregate import ClassifiedMessage, Customer
from domain.customer.identities import IdentityClaim, IdentityNormalizer, Verification
from domain.policy.decision import SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import NotFound
from domain.signals.aggregate import SignalReport

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)
GB = IdentityNormalizer("GB")
ANA = IdentityClaim(GB.parse("email:ana@example.org"), Verification.VERIFIED)
ANA_PHONE = IdentityClaim(GB.parse("phone:+351912345678"))
_BELOW_HORIZON = (
    "SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), true)"
    " FROM events"
)
REMINDER = SendRequest("billing", Purpose.SERVICE, (Channel.EMAIL,))


class World:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.clock = ManualClock(NOW)
        self.uows = PostgresUnitsOfWork(pool)
        self.upsert = UpsertCustomer(self.uows, self.clock, RandomIds())
        self.ingest = IngestSignals(self.uows, self.clock, RandomIds())
        self.request = RequestMessage(
            self.uows,
            DefaultRuleSets(default_rule_set()),
            self.clock,
            RandomIds(),
            customers=PostgresCustomerRecords(pool),
        )
        self.runner = ProjectionRunner(pool, [SignalActivity(), InboxListing()])
        self.context = ContextQueries(
            CustomerQueries(PostgresCustomerRecords(pool)),
            PostgresContextReads(pool),
            PostgresDirectory(pool),
            PostgresSegments(pool),
            PostgresEnrollments(pool),
            PostgresCampaigns(pool),
            PostgresInbox(pool),
            self.uows,
            self.clock,
        )

    async def signals(self, claim: IdentityClaim, *kinds_and_ages: tuple[str, timedelta]) -> None:
        await self.ingest(
            [SignalReport(str(uuid4()), kind, NOW - age, (claim,)) for kind, age in kinds_and_ages]
        )

    async def conversation(self, customer_id: UUID, topic: str, *, resolved: bool) -> None:
        conversation = Conversation.start(customer_id, CUSTOMER, NOW, topic)
        conversation.receive(uuid4(), Channel.EMAIL, "my card was charged twice", NOW, NOW)
        conversation.classify("transaction_charged_twice", Sentiment.NEGATIVE, "classifier", NOW)
        if resolved:
            conversation.resolve("refunded", "agent-1", NOW)
        async with self.uows() as uow:
            uow.repository(Conversation).add(conversation)

    async def settle(self) -> None:
        """The read models catch up with every event written. The log's horizon is the
        server's: another database's open transaction holds it back for a while."""
        await self.runner.setup()
        for _ in range(200):
            if await self.pool.fetchval(_BELOW_HORIZON):
                await self.runner.catch_up()
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the log's horizon did not pass the last event in 10 s")


class TestCustomerContextOnPostgres:
    async def test_signals_orders_conversations_and_decisions_newest_first_and_bounded(
        self, pool: asyncpg.Pool
    ) -> None:
        world = World(pool)
        ana = (await world.upsert((ANA,), {}, {"tier": "gold"})).customer_id
        await world.signals(
            ANA,
            *[("page.viewed", timedelta(hours=h)) for h in range(1, 8)],
            ("order.placed", timedelta(days=3)),
            ("purchase", timedelta(days=2)),
            ("order.placed", timedelta(days=60)),
        )
        requested = [await world.request(ana, REMINDER) for _ in range(LAST_ITEMS + 1)]
        await world.conversation(ana, "billing", resolved=False)
        await world.conversation(ana, "cards", resolved=True)
        await world.settle()

        context = await world.context.of(ana)
        assert context.tier == "gold"
        assert [s.occurred_at for s in context.last_signals] == [
            NOW - timedelta(hours=h) for h in range(1, LAST_ITEMS + 1)
        ]
        counts = {c.signal_type: c.count for c in context.signal_counts}
        assert counts == {"page.viewed": 7, "order.placed": 1, "purchase": 1}
        assert context.orders == 2
        assert [(o.signal_type, o.occurred_at) for o in context.last_orders] == [
            ("purchase", NOW - timedelta(days=2)),
            ("order.placed", NOW - timedelta(days=3)),
            ("order.placed", NOW - timedelta(days=60)),
        ]
        assert context.open_conversations == 1
        assert [(c.topic, c.intent) for c in context.conversations] == [
            ("billing", "transaction_charged_twice")
        ]
        assert [d.decision_id for d in context.decisions] == [
            str(r.decision_id) for r in reversed(requested[1:])
        ]
        assert all(d.purpose == "service" for d in context.decisions)
        # A deferral says why: the rules that held the message back.
        assert all(d.reasons for d in context.decisions if d.outcome != "send")

    async def test_a_merged_customer_answers_for_the_survivor_with_both_histories(
        self, pool: asyncpg.Pool
    ) -> None:
        world = World(pool)
        older = (await world.upsert((ANA,), {}, {})).customer_id
        newer = (await world.upsert((ANA_PHONE,), {}, {"tier": "vip"})).customer_id
        await world.signals(ANA_PHONE, ("purchase", timedelta(days=1)))
        decided = await world.request(
            newer, SendRequest("billing", Purpose.SERVICE, (Channel.SMS,))
        )
        await world.upsert((ANA, ANA_PHONE), {}, {})
        await world.signals(ANA, ("page.viewed", timedelta(hours=1)))
        await world.settle()

        context = await world.context.of(newer)
        assert (context.customer_id, context.merged_into) == (older, older)
        assert context.tier == "vip"
        assert [s.signal_type for s in context.last_signals] == ["page.viewed", "purchase"]
        assert [d.decision_id for d in context.decisions] == [str(decided.decision_id)]

    async def test_a_message_classified_unknown_says_why(self, pool: asyncpg.Pool) -> None:
        world = World(pool)
        ana = (await world.upsert((ANA,), {}, {})).customer_id
        unread = ClassifiedMessage(
            uuid4(), Channel.WHATSAPP, NOW, "unknown", 0.0, "neutral", 0.0, "normal", "not_text"
        )
        async with world.uows() as uow:
            customer = (await uow.repository(Customer).get([ana]))[ana]
            customer.note_classified(unread, NOW)
            uow.repository(Customer).add(customer)
        await world.settle()

        (classified,) = (await world.context.of(ana)).classified
        assert (classified.intent, classified.unknown_reason) == ("unknown", "not_text")

    async def test_an_unknown_customer_is_not_found(self, pool: asyncpg.Pool) -> None:
        with pytest.raises(NotFound):
            await World(pool).context.of(uuid4())
