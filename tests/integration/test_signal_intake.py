"""Intake commits each producer id once, also under concurrent overlapping batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec
import pytest

from adapters.postgres.customer_store import PostgresCustomerStore
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.signal_intake import PostgresSignalIntake
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from application.customer.accept_signals import AcceptSignals
from application.customer.attribute_signals import AttributeSignals
from application.customer.ingest_signals import IngestSignals
from domain.customer.identities import IdentityNormalizer
from domain.signals.aggregate import signal_id_for
from domain.signals.intake import RECEIVED_TOPIC, intake_id_for
from entrypoints.signal_schema import SignalIn, SignalMapper
from ports.intake import ReceivedSignal

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 27, 10, tzinfo=UTC)
MAPPER = SignalMapper(IdentityNormalizer("GB"))


def received(event_id: str, email: str = "ana@example.org") -> ReceivedSignal:
    body = {
        "id": event_id,
        "type": "page.viewed",
        "occurred_at": "2026-11-27T09:00:00Z",
        "identities": [{"type": "email", "value": email}],
    }
    return ReceivedSignal(event_id, msgspec.json.encode(body))


async def stored(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch("SELECT payload FROM events WHERE topic = $1", RECEIVED_TOPIC)
    return sorted(msgspec.json.decode(row["payload"])["id"] for row in rows)


class TestIntake:
    async def test_each_producer_id_is_committed_once(self, pool: asyncpg.Pool) -> None:
        intake = PostgresSignalIntake(pool)
        batch = [received("a"), received("b"), received("a")]
        assert await intake.receive(batch, AT) == [True, True, False]
        assert await intake.receive([received("b"), received("c")], AT) == [False, True]
        assert await stored(pool) == ["a", "b", "c"]
        streams = await pool.fetch("SELECT stream_id FROM events WHERE topic = $1", RECEIVED_TOPIC)
        assert {row[0] for row in streams} == {intake_id_for(i) for i in "abc"}

    async def test_repeats_are_left_out_however_new_and_repeated_batches_alternate(
        self, pool: asyncpg.Pool
    ) -> None:
        intake = PostgresSignalIntake(pool)
        assert await intake.receive([received("a")], AT) == [True]
        assert await intake.receive([received("b"), received("a")], AT) == [True, False]
        assert await intake.receive([received("a")], AT) == [False]
        assert await intake.receive([received("c"), received("d")], AT) == [True, True]
        assert await intake.receive([received("e")], AT) == [True]
        assert await intake.receive([received("f"), received("e")], AT) == [True, False]
        assert await stored(pool) == ["a", "b", "c", "d", "e", "f"]

    async def test_overlapping_batches_in_opposite_orders_commit_each_id_once(
        self, pool: asyncpg.Pool
    ) -> None:
        intake = PostgresSignalIntake(pool)
        ids = [f"race-{n}" for n in range(300)]
        batches = [[received(i) for i in (ids if n % 2 else ids[::-1])] for n in range(8)]
        answers = await asyncio.gather(*(intake.receive(batch, AT) for batch in batches))
        assert sum(sum(answer) for answer in answers) == len(ids)
        assert await stored(pool) == sorted(ids)


class TestAttribution:
    async def test_received_signals_reach_their_customers_once_and_are_then_found(
        self, pool: asyncpg.Pool
    ) -> None:
        store = PostgresCustomerStore(pool)
        ingest = IngestSignals(store, SystemClock(), RandomIds())
        accept = AcceptSignals(PostgresSignalIntake(pool), SystemClock(), ingest, poll_every=0.01)
        assert await accept([received("x-1"), received("x-2", "bo@example.org")]) == [True, True]
        signal_ids = [signal_id_for("x-1"), signal_id_for("x-2")]
        assert await accept.attributed(signal_ids, 0.05) == {}

        refused: list[str] = []
        runner = ProjectionRunner(
            pool,
            [AttributeSignals(ingest, MAPPER.parse, lambda _, reason: refused.append(reason))],
        )
        await runner.setup()
        await runner.catch_up()
        found = await accept.attributed(signal_ids, 1.0)
        assert set(found) == set(signal_ids)
        assert found[signal_ids[0]] == await store.find(
            IdentityNormalizer("GB").normalize("email", "ana@example.org")
        )
        # Applied again from the start (a crash before the position moved): nothing changes.
        await pool.execute("UPDATE projection_positions SET transaction_id = '0', position = 0")
        await runner.catch_up()
        recorded = await pool.fetchval(
            "SELECT count(*) FROM events WHERE stream_id = ANY($1::uuid[])", signal_ids
        )
        assert recorded == 2
        assert refused == []

    async def test_a_signal_that_acts_on_its_customer_is_attributed_before_the_answer(
        self, pool: asyncpg.Pool
    ) -> None:
        store = PostgresCustomerStore(pool)
        ingest = IngestSignals(store, SystemClock(), RandomIds())
        accept = AcceptSignals(PostgresSignalIntake(pool), SystemClock(), ingest)
        wire = {
            "id": "stop-1",
            "type": "consent.withdrawn",
            "occurred_at": "2026-11-27T09:00:00Z",
            "identities": [{"type": "email", "value": "sal@example.org"}],
            "properties": {"channel": "sms"},
        }
        payload = msgspec.json.encode(wire)
        signal = MAPPER.check(0, payload)
        assert isinstance(signal, SignalIn)
        assert await accept([MAPPER.received(0, signal, payload)]) == [True]
        found = await accept.attributed([signal_id_for("stop-1")], 0)
        assert len(found) == 1
