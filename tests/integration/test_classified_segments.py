"""Segments over classified messages on PostgreSQL: the signal_activity read model keeps each
customer's classified messages, the evaluator counts them in real time and as they expire."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from adapters.postgres.directory_queries import PostgresDirectory
from domain.customer.aggregate import ClassifiedMessage, Customer
from domain.customer.classified import CLASSIFIED_SIGNAL
from domain.policy.vocabulary import Channel
from tests.integration.test_segments import T0, World

pytestmark = pytest.mark.integration
COMPLAINED_TWICE: dict[str, Any] = {
    "type": "classified",
    "intent": "refund",
    "sentiment": "negative",
    "within": "30d",
    "op": "gte",
    "value": 2,
}
ANA = "email:ana@example.org"
T0_PLUS_HOUR = T0 + timedelta(hours=1)


class Classifying(World):
    async def customer(self, who: str) -> UUID:
        found: UUID = await self.pool.fetchval(
            "SELECT customer_id FROM customer_directory WHERE $1 = ANY(identities)", who
        )
        return found

    async def classified(
        self, who: str, sentiment: str = "negative", at: datetime | None = None
    ) -> UUID:
        message_id = uuid4()
        customer_id = await self.customer(who)
        async with self.store() as uow:
            customers = uow.repository(Customer)
            customer = (await customers.get([customer_id]))[customer_id]
            message = ClassifiedMessage(
                message_id,
                Channel.EMAIL,
                at or self.clock.now(),
                "refund",
                0.93,
                sentiment,
                -0.6 if sentiment == "negative" else 0.5,
                "high",
            )
            customer.note_classified(message, self.clock.now())
            customers.add(customer)
        return message_id


@pytest.fixture
async def world(pool: asyncpg.Pool) -> Classifying:
    found = Classifying(pool)
    await found.signal("customer.updated", ANA)
    await found.settle()
    return found


class TestClassifiedMessagesInSegments:
    async def test_a_second_angry_refund_request_enters_the_segment(
        self, world: Classifying
    ) -> None:
        await world.segment("complained", COMPLAINED_TWICE)
        await world.classified(ANA)
        await world.classified(ANA, sentiment="positive")
        await world.settle()
        assert await world.members("complained") == set()
        await world.classified(ANA)
        await world.settle()
        assert await world.members("complained") == {ANA}

    async def test_the_customer_leaves_when_the_older_request_expires(
        self, world: Classifying
    ) -> None:
        await world.segment("complained", COMPLAINED_TWICE)
        await world.classified(ANA)
        world.clock.advance(timedelta(days=10))
        await world.classified(ANA)
        await world.settle()
        assert await world.members("complained") == {ANA}
        world.clock.advance(timedelta(days=21))
        await world.settle()
        assert await world.members("complained") == set()

    async def test_a_new_segment_counts_messages_classified_before_it(
        self, world: Classifying
    ) -> None:
        await world.classified(ANA)
        await world.classified(ANA)
        await world.settle()
        await world.segment("complained", COMPLAINED_TWICE)
        await world.settle()
        assert await world.members("complained") == {ANA}

    async def test_classified_messages_are_kept_once_and_are_no_signals_to_count(
        self, world: Classifying
    ) -> None:
        message_id = await world.classified(ANA)
        await world.settle()
        await world.settle()
        rows = await world.pool.fetch(
            "SELECT signal_id, properties FROM customer_signals WHERE signal_type = $1",
            CLASSIFIED_SIGNAL,
        )
        assert [row["signal_id"] for row in rows] == [message_id]
        assert '"intent": "refund"' in rows[0]["properties"]
        assert "text" not in rows[0]["properties"]


class TestTheReadModel:
    async def test_a_rebuild_keeps_the_classified_messages_the_live_model_kept(
        self, world: Classifying
    ) -> None:
        await world.classified(ANA)
        await world.classified(ANA, sentiment="positive", at=T0_PLUS_HOUR)
        await world.settle()
        tables = ("customer_signals", "signal_counters")
        live = [await rows_of(world.pool, t) for t in tables]
        assert any(CLASSIFIED_SIGNAL in row for row in live[0])
        await world.runner.rebuild("signal_activity")
        assert [await rows_of(world.pool, t) for t in tables] == live

    async def test_the_customers_activity_counts_no_classified_message(
        self, world: Classifying
    ) -> None:
        await world.classified(ANA)
        await world.settle()
        activity = await PostgresDirectory(world.pool).activity(
            await world.customer(ANA), T0 - timedelta(days=1)
        )
        assert [count.signal_type for count in activity] == ["customer.updated"]


async def rows_of(pool: asyncpg.Pool, table: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in await pool.fetch(f"SELECT * FROM {table}"))
