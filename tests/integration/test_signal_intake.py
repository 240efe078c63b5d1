"""Intake commits each producer id once, also under concurrent overlapping batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec
import pytest

from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.signal_intake import PostgresSignalIntake
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from application.customer.signals import (
    AcceptSignals,
    AttributeSignals,
    IngestSignals,
    SignalOutcome,
)
from domain.customer.identities import IdentityNormalizer
from domain.shared.errors import DomainError
from domain.signals.aggregate import signal_id_for
from domain.signals.document import ReceivedSignal, SignalIn, SignalReader
from domain.signals.intake import RECEIVED_TOPIC, REFUSED_TOPIC, intake_id_for
from ports.intake import Attribution
from tests.integration.readable_log import reading_every_commit

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    import asyncpg

    from domain.signals.aggregate import SignalReport

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 27, 10, tzinfo=UTC)
READER = SignalReader(IdentityNormalizer("GB"))


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


def accepting(pool: asyncpg.Pool, ingesting: type[IngestSignals] = IngestSignals) -> AcceptSignals:
    ingest = ingesting(PostgresUnitsOfWork(pool), SystemClock(), RandomIds())
    return AcceptSignals(PostgresSignalIntake(pool), SystemClock(), ingest, poll_every=0.01)


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
        store = PostgresUnitsOfWork(pool)
        ingest = IngestSignals(store, SystemClock(), RandomIds())
        intake = PostgresSignalIntake(pool)
        accept = AcceptSignals(intake, SystemClock(), ingest, poll_every=0.01)
        assert await accept([received("x-1"), received("x-2", "bo@example.org")]) == [True, True]
        signal_ids = [signal_id_for("x-1"), signal_id_for("x-2")]
        assert await accept.attributed(["x-1", "x-2"], 0.05) == {}

        refused: list[str] = []
        attribution = AttributeSignals(
            ingest, READER, intake, SystemClock(), lambda _, reason: refused.append(reason)
        )
        runner = reading_every_commit(ProjectionRunner(pool, [attribution]), pool)
        await runner.setup()
        await runner.catch_up()
        found = await accept.attributed(["x-1", "x-2"], 1.0)
        assert set(found) == {"x-1", "x-2"}
        assert found["x-1"] == Attribution(
            await PostgresCustomerRecords(pool).find(
                IdentityNormalizer("GB").normalize("email", "ana@example.org")
            )
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
        accept = accepting(pool)
        wire = {
            "id": "stop-1",
            "type": "consent.withdrawn",
            "occurred_at": "2026-11-27T09:00:00Z",
            "identities": [{"type": "email", "value": "sal@example.org"}],
            "properties": {"channel": "sms"},
        }
        payload = msgspec.json.encode(wire)
        signal = READER.check(0, payload)
        assert isinstance(signal, SignalIn)
        assert await accept([READER.received(0, signal, payload)]) == [True]
        found = await accept.attributed(["stop-1"], 0)
        assert found["stop-1"].customer_id is not None

    async def test_a_signal_that_acts_on_its_customer_is_recorded_before_it_is_received(
        self, pool: asyncpg.Pool
    ) -> None:
        # Attribution wakes as soon as a received signal commits: it must find it recorded
        # rather than race the answer to record it.
        accept = accepting(pool)
        assert await accept([inbound("stop-2", "bea@example.org", "STOP")]) == [True]
        place = "SELECT position FROM events WHERE stream_id = $1 ORDER BY version LIMIT 1"
        recorded = await pool.fetchval(place, signal_id_for("stop-2"))
        assert recorded < await pool.fetchval(place, intake_id_for("stop-2"))
        assert await accept([inbound("stop-2", "bea@example.org", "STOP")]) == [False]


class RefusingPoison(IngestSignals):
    """Refuses, as a rule of the customer would, any batch holding a signal named poison-*."""

    async def __call__(self, reports: Sequence[SignalReport]) -> list[SignalOutcome]:
        poisoned = [r.event_id for r in reports if r.event_id.startswith("poison")]
        if poisoned:
            raise DomainError(f"{poisoned[0]} breaks a rule")
        return await super().__call__(reports)


def inbound(event_id: str, email: str, text: str = "Where is my order?") -> ReceivedSignal:
    wire = {
        "id": event_id,
        "type": "message.received",
        "occurred_at": "2026-11-27T09:00:00Z",
        "identities": [{"type": "email", "value": email}],
        "properties": {"channel": "email", "text": text},
    }
    payload = msgspec.json.encode(wire)
    signal = READER.check(0, payload)
    assert isinstance(signal, SignalIn)
    return READER.received(0, signal, payload)


class TestRefusedAtAttribution:
    async def test_a_signal_acting_on_its_customer_that_it_refuses_is_received_and_refused(
        self, pool: asyncpg.Pool
    ) -> None:
        accept = accepting(pool, RefusingPoison)
        batch = [
            inbound("poison-2", "pia@example.org", "STOP"),
            inbound("fine-1", "fin@example.org", "stop."),
        ]
        assert await accept(batch) == [True, True]
        assert await accept.attributed(["poison-2", "fine-1"], 0) == {}  # left to attribution
        attribution = AttributeSignals(accept.ingest, READER, accept.intake, SystemClock())
        runner = reading_every_commit(ProjectionRunner(pool, [attribution]), pool)
        await runner.setup()
        await runner.catch_up()
        found = await accept.attributed(["poison-2", "fine-1"], 1.0)
        assert found["poison-2"] == Attribution(refused="DomainError: poison-2 breaks a rule")
        assert found["fine-1"].customer_id is not None
        # Sent again by its producer to a customer that would take it now: it stays refused.
        willing = accepting(pool)
        assert await willing([inbound("poison-2", "pia@example.org", "STOP")]) == [False]
        assert await accept.attributed(["poison-2"], 0) == {"poison-2": found["poison-2"]}

    async def test_a_signal_its_customer_refuses_is_recorded_as_refused_and_the_rest_go_on(
        self, pool: asyncpg.Pool
    ) -> None:
        store = PostgresUnitsOfWork(pool)
        intake = PostgresSignalIntake(pool)
        ingest = RefusingPoison(store, SystemClock(), RandomIds())
        accept = AcceptSignals(intake, SystemClock(), ingest, poll_every=0.01)
        ids = ["ok-1", "ok-2", "poison-1", "ok-3", "ok-4", "ok-5"]
        await accept([received(i, f"{i}@example.org") for i in ids])
        refused: list[tuple[UUID, str]] = []
        attribution = AttributeSignals(
            ingest, READER, intake, SystemClock(), lambda *r: refused.append(r)
        )
        runner = reading_every_commit(ProjectionRunner(pool, [attribution]), pool)
        await runner.setup()
        assert await runner.catch_up() == len(ids)

        found = await accept.attributed(ids, 1.0)
        assert found["poison-1"] == Attribution(refused="DomainError: poison-1 breaks a rule")
        assert all(found[i].customer_id is not None for i in ids if i != "poison-1")
        assert refused == [(intake_id_for("poison-1"), "DomainError: poison-1 breaks a rule")]
        # Applied again from the start: the refusal is kept once, nothing else changes.
        await pool.execute("UPDATE projection_positions SET transaction_id = '0', position = 0")
        await runner.catch_up()
        assert (
            await pool.fetchval("SELECT count(*) FROM events WHERE topic = $1", REFUSED_TOPIC) == 1
        )
        assert await accept.attributed(ids, 0) == found
