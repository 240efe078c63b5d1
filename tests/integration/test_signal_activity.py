from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.event_store import LogPosition, PostgresEventStore
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.signal_activity import SignalActivity
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from application.customer.change_consent import ChangeConsent
from application.customer.signals import IngestSignals
from application.customer.upsert_customer import UpsertCustomer
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.policy.vocabulary import Channel, Purpose
from domain.signals.aggregate import SignalReport
from tests.integration.readable_log import log_readable, reading_every_commit

pytestmark = pytest.mark.integration
GB = IdentityNormalizer("GB")
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def claims(*identities: str) -> tuple[IdentityClaim, ...]:
    return tuple(IdentityClaim(GB.parse(i)) for i in identities)


def signal(n: int, kind: str, *identities: str, at: datetime = T0, **props: Any) -> SignalReport:
    return SignalReport(f"s-{n}", kind, at, claims(*identities), properties=props)


async def customer_of(pool: asyncpg.Pool, identity: str) -> UUID:
    found = await PostgresCustomerRecords(pool).find(GB.parse(identity))
    assert found is not None
    return found


async def table(pool: asyncpg.Pool, name: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in await pool.fetch(f"SELECT * FROM {name}"))


@pytest.fixture
def store(pool: asyncpg.Pool) -> PostgresUnitsOfWork:
    return PostgresUnitsOfWork(pool)


@pytest.fixture
def ingest(store: PostgresUnitsOfWork) -> IngestSignals:
    return IngestSignals(store, ManualClock(T0), RandomIds())


class TestReadingTopics:
    async def test_a_projection_reads_only_its_topics_and_still_reaches_the_end_of_the_log(
        self, pool: asyncpg.Pool, ingest: IngestSignals
    ) -> None:
        await ingest([signal(n, "page.viewed", f"email:c{n}@example.org") for n in range(6)])
        await log_readable(pool)
        store = PostgresEventStore()
        end = (await store.read_log(pool, LogPosition(), 1000)).next
        page = await store.read_topics(pool, LogPosition(), SignalActivity.topics, 4)
        assert [e.type for e in page.events] == ["Recorded"] * 4
        rest = await store.read_topics(pool, page.next, SignalActivity.topics, 4)
        assert len(rest.events) == 2
        assert rest.next == end
        assert (await store.read_topics(pool, end, SignalActivity.topics, 4)).next == end


class TestSignalActivity:
    async def test_signals_are_kept_per_customer_and_counted_per_hour(
        self, pool: asyncpg.Pool, ingest: IngestSignals, store: PostgresUnitsOfWork
    ) -> None:
        await ingest(
            [
                signal(1, "order.placed", "email:ana@example.org", total=30),
                signal(2, "order.placed", "email:ana@example.org", at=T0 + timedelta(minutes=5)),
                signal(3, "order.placed", "email:ana@example.org", at=T0 + timedelta(hours=2)),
                signal(4, "page.viewed", "email:ana@example.org"),
            ]
        )
        runner = reading_every_commit(ProjectionRunner(pool, [SignalActivity()], page_size=2), pool)
        await runner.setup()
        assert await runner.catch_up() == 4
        ana = await customer_of(pool, "email:ana@example.org")
        counters = await pool.fetch(
            "SELECT signal_type, hour, count, last_at FROM signal_counters"
            " WHERE customer_id = $1 ORDER BY 1, 2",
            ana,
        )
        assert [tuple(r) for r in counters] == [
            ("order.placed", T0, 2, T0 + timedelta(minutes=5)),
            ("order.placed", T0 + timedelta(hours=2), 1, T0 + timedelta(hours=2)),
            ("page.viewed", T0, 1, T0),
        ]
        first = await pool.fetchval(
            "SELECT properties FROM customer_signals WHERE customer_id = $1 AND occurred_at = $2"
            " AND signal_type = 'order.placed'",
            ana,
            T0,
        )
        assert json.loads(first) == {"total": 30}

    async def test_a_merge_moves_the_merged_customers_signals_to_the_survivor(
        self, pool: asyncpg.Pool, ingest: IngestSignals, store: PostgresUnitsOfWork
    ) -> None:
        runner = reading_every_commit(
            ProjectionRunner(pool, [SignalActivity(), CustomerDirectory()], page_size=3), pool
        )
        await runner.setup()
        await ingest([signal(1, "login", "email:ana@example.org")])
        await ingest([signal(2, "login", "phone:020 7946 0958")])
        await runner.catch_up()
        await ingest([signal(3, "login", "email:ana@example.org", "phone:020 7946 0958")])
        await runner.catch_up()
        survivor = await customer_of(pool, "email:ana@example.org")
        rows = await pool.fetch("SELECT DISTINCT customer_id FROM customer_signals")
        assert [r[0] for r in rows] == [survivor]
        assert await pool.fetchval("SELECT sum(count) FROM signal_counters") == 3
        assert (
            await pool.fetchval(
                "SELECT count FROM signal_counters WHERE customer_id = $1", survivor
            )
            == 3
        )

        live = [await table(pool, t) for t in ("customer_signals", "signal_counters")]
        await runner.rebuild("signal_activity")
        assert [await table(pool, t) for t in ("customer_signals", "signal_counters")] == live


class TestDirectoryConsents:
    async def test_the_directory_keeps_consents_and_channel_opt_outs(
        self, pool: asyncpg.Pool, store: PostgresUnitsOfWork
    ) -> None:
        clock = ManualClock(T0)
        upsert = UpsertCustomer(store, clock, RandomIds())
        change = ChangeConsent(store, clock, PostgresCustomerRecords(pool))
        ana = await upsert(claims("email:ana@example.org"), {}, {})
        await change(
            ana.customer_id,
            [
                ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "form"),
                ConsentRecord(Channel.SMS, None, False, "STOP"),
            ],
        )
        runner = reading_every_commit(ProjectionRunner(pool, [CustomerDirectory()]), pool)
        await runner.setup()
        await runner.catch_up()
        consents = json.loads(
            await pool.fetchval(
                "SELECT consents FROM customer_directory WHERE customer_id = $1", ana.customer_id
            )
        )
        assert {key: value["granted"] for key, value in consents.items()} == {
            "email:marketing": True,
            "sms:*": False,
        }
