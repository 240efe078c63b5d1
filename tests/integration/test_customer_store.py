from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

import pytest

from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock, SystemClock
from adapters.system.ids import RandomIds
from application.customer.signals import IngestSignals
from application.customer.upsert_customer import UpsertCustomer
from application.queries.customers import CustomerQueries
from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.customer.identities import Identity, IdentityClaim, IdentityNormalizer, Verification
from domain.signals.aggregate import Signal, SignalReport
from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration
GB = IdentityNormalizer("GB")
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def report(event_id: str, *identities: str, **extra: object) -> SignalReport:
    claims = tuple(IdentityClaim(GB.parse(i)) for i in identities)
    return SignalReport(event_id, "order.placed", T0, claims, {"total": 10}, "orders", **extra)  # type: ignore[arg-type]


def ingest_with(store: PostgresUnitsOfWork) -> IngestSignals:
    return IngestSignals(store, SystemClock(), RandomIds())


class DescendingIds:
    """Each id sorts before the one made before it, so the id order contradicts creation order."""

    def __init__(self) -> None:
        self.next = 2**128 - 1

    def new_id(self) -> UUID:
        self.next -= 1
        return UUID(int=self.next)


async def count_signals(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval("SELECT count(*) FROM events WHERE topic LIKE '%:Signal.Recorded'")
    )


class TestIngestingSignals:
    async def test_a_signal_creates_its_customer_and_is_found_by_identity(
        self, pool: asyncpg.Pool
    ) -> None:
        store = PostgresUnitsOfWork(pool)
        (outcome,) = await ingest_with(store)([report("o-1", "email:Ana@Example.org")])
        assert outcome.status == "recorded"
        assert (
            await PostgresCustomerRecords(pool).find(Identity("email", "ana@example.org"))
            == outcome.customer_id
        )

    async def test_a_second_signal_with_the_same_id_changes_nothing(
        self, pool: asyncpg.Pool
    ) -> None:
        ingest = ingest_with(PostgresUnitsOfWork(pool))
        await ingest([report("o-1", "email:ana@example.org")])
        again = await ingest(
            [report("o-1", "email:ana@example.org"), report("o-1", "email:ana@example.org")]
        )
        assert [o.status for o in again] == ["duplicate", "duplicate"]
        assert await count_signals(pool) == 1

    async def test_the_same_new_phone_from_two_racing_producers_ends_on_one_customer(
        self, pool: asyncpg.Pool
    ) -> None:
        producers = [ingest_with(PostgresUnitsOfWork(pool)) for _ in range(2)]
        results = await asyncio.gather(
            producers[0]([report("a-1", "phone:+44 20 7946 0958")]),
            producers[1]([report("b-1", "phone:020 7946 0958")]),
        )
        owners = {outcomes[0].customer_id for outcomes in results}
        assert len(owners) == 1
        assert await pool.fetchval("SELECT count(*) FROM identities") == 1

    async def test_many_racing_batches_never_give_an_identity_two_owners(
        self, pool: asyncpg.Pool
    ) -> None:
        phones = [f"phone:+4420794609{n:02d}" for n in range(20)]
        batches = [[report(f"p{p}-{i}", phone) for i, phone in enumerate(phones)] for p in range(6)]
        await asyncio.gather(*(ingest_with(PostgresUnitsOfWork(pool))(b) for b in batches))
        assert await pool.fetchval("SELECT count(*) FROM identities") == 20
        assert await pool.fetchval("SELECT count(DISTINCT customer_id) FROM identities") == 20
        assert await count_signals(pool) == 120

    async def test_a_signal_linking_two_customers_merges_them(self, pool: asyncpg.Pool) -> None:
        store = PostgresUnitsOfWork(pool)
        ingest = ingest_with(store)
        (first,) = await ingest([report("e-1", "email:ana@example.org")])
        (second,) = await ingest([report("p-1", "phone:+442079460958")])
        (linking,) = await ingest([report("l-1", "email:ana@example.org", "phone:+442079460958")])
        assert linking.customer_id == first.customer_id
        queries = CustomerQueries(PostgresCustomerRecords(pool))
        assert second.customer_id is not None
        merged = await queries.by_id(second.customer_id)
        assert merged.id == first.customer_id
        assert {(i.type, i.value) for i in merged.identities} == {
            ("email", "ana@example.org"),
            ("phone", "+442079460958"),
        }
        assert merged.merged_from == [second.customer_id]
        _, page = await queries.timeline(second.customer_id, limit=10, before=None)
        types = [e.topic.rpartition(":")[2] for e in page.events]
        assert "Customer.Absorbed" in types
        assert "Customer.MergedInto" in types
        assert types.count("Signal.Recorded") == 3

    async def test_the_customer_created_first_survives_a_merge_at_the_same_instant(
        self, pool: asyncpg.Pool
    ) -> None:
        ingest = IngestSignals(PostgresUnitsOfWork(pool), ManualClock(T0), DescendingIds())
        (first,) = await ingest([report("e-1", "email:ana@example.org")])
        (second,) = await ingest([report("p-1", "phone:+442079460958")])
        assert first.customer_id is not None
        assert second.customer_id is not None
        assert second.customer_id < first.customer_id
        (linking,) = await ingest([report("l-1", "email:ana@example.org", "phone:+442079460958")])
        assert linking.customer_id == first.customer_id

    async def test_the_customer_created_first_in_one_batch_survives_its_merge(
        self, pool: asyncpg.Pool
    ) -> None:
        ingest = IngestSignals(PostgresUnitsOfWork(pool), ManualClock(T0), DescendingIds())
        first, second, linking = await ingest(
            [
                report("e-1", "email:ana@example.org"),
                report("p-1", "phone:+442079460958"),
                report("l-1", "email:ana@example.org", "phone:+442079460958"),
            ]
        )
        assert first.customer_id is not None
        assert second.customer_id is not None
        assert second.customer_id < first.customer_id
        assert linking.customer_id == first.customer_id

    async def test_a_fresh_store_reads_what_another_wrote(self, pool: asyncpg.Pool) -> None:
        await ingest_with(PostgresUnitsOfWork(pool))(
            [
                report(
                    "o-1",
                    "email:ana@example.org",
                    profile={"time_zone": "Asia/Tokyo"},
                    attributes={"tier": "gold"},
                )
            ]
        )
        view = await CustomerQueries(PostgresCustomerRecords(pool)).by_identity(
            Identity("email", "ana@example.org")
        )
        assert view.profile["time_zone"] == "Asia/Tokyo"
        assert view.attributes == {"tier": "gold"}

    async def test_a_stale_cached_customer_is_reloaded_not_overwritten(
        self, pool: asyncpg.Pool
    ) -> None:
        one, two = PostgresUnitsOfWork(pool), PostgresUnitsOfWork(pool)
        upsert_one = UpsertCustomer(one, SystemClock(), RandomIds())
        upsert_two = UpsertCustomer(two, SystemClock(), RandomIds())
        ana = (IdentityClaim(Identity("email", "ana@example.org")),)
        await upsert_one(ana, {}, {"a": 1})
        await upsert_two(ana, {}, {"b": 2})
        await upsert_one(ana, {}, {"c": 3})  # `one` holds version 2 in its cache; the store has 3
        view = await CustomerQueries(PostgresCustomerRecords(pool)).by_identity(
            Identity("email", "ana@example.org")
        )
        assert view.attributes == {"a": 1, "b": 2, "c": 3}

    async def test_a_customer_read_uncached_is_as_the_store_holds_it_and_commits_first_time(
        self, pool: asyncpg.Pool
    ) -> None:
        one, two = PostgresUnitsOfWork(pool), PostgresUnitsOfWork(pool)
        ana = (IdentityClaim(Identity("email", "ana@example.org")),)
        made = await UpsertCustomer(one, SystemClock(), RandomIds())(ana, {}, {"a": 1})
        await UpsertCustomer(two, SystemClock(), RandomIds())(ana, {}, {"b": 2})
        async with one() as uow:  # `one` keeps version 2; the store has 3
            customers = uow.repository(Customer)
            (customer,) = (await customers.get([made.customer_id], cached=False)).values()
            assert customer.version == 3
            customer.update_profile(T0, {}, {"c": 3})
            customers.add(customer)  # no conflict to retry
        async with one() as uow:  # the commit left the new one in the cache
            (kept,) = (await uow.repository(Customer).get([made.customer_id])).values()
            assert kept.version == 4


class TestEventsAreImmutable:
    async def test_an_event_cannot_be_edited_or_deleted(self, pool: asyncpg.Pool) -> None:
        await ingest_with(PostgresUnitsOfWork(pool))([report("o-1", "email:ana@example.org")])
        with pytest.raises(Exception, match="never edited"):
            await pool.execute("UPDATE events SET topic = 'x'")
        with pytest.raises(Exception, match="never edited"):
            await pool.execute("DELETE FROM events")


class TestUpsert:
    async def test_upsert_by_identity_creates_then_updates(self, pool: asyncpg.Pool) -> None:
        upsert = UpsertCustomer(PostgresUnitsOfWork(pool), SystemClock(), RandomIds())
        claim = (IdentityClaim(Identity("account_id", "42"), Verification.AUTHENTICATED),)
        created = await upsert(claim, {"first_name": "Ana"}, {})
        updated = await upsert(claim, {"last_name": "Lee"}, {})
        assert created.created
        assert not updated.created
        assert created.customer_id == updated.customer_id


class TestConcurrentMerges:
    async def test_racing_merges_all_commit_and_leave_one_consistent_graph(
        self, pool: asyncpg.Pool
    ) -> None:
        import random

        rng = random.Random(7)
        emails = [f"email:m{n}@example.org" for n in range(6)]
        await ingest_with(PostgresUnitsOfWork(pool))(
            [report(f"seed-{n}", e) for n, e in enumerate(emails)]
        )
        stores = [PostgresUnitsOfWork(pool) for _ in range(4)]
        batches = [[report(f"link-{b}", *rng.sample(emails, 2))] for b in range(12)]
        await asyncio.gather(
            *(ingest_with(stores[n % 4])(batch) for n, batch in enumerate(batches))
        )
        owners = {row[0] for row in await pool.fetch("SELECT DISTINCT customer_id FROM identities")}
        merged = {row[0] for row in await pool.fetch("SELECT merged_id FROM customer_merges")}
        assert not owners & merged  # no identity points at a merged customer
        survivors = {row[0] for row in await pool.fetch("SELECT survivor_id FROM customer_merges")}
        assert not survivors & merged  # every merged id resolves in one step to a live customer
        assert await count_signals(pool) == 18


class TestUnitOfWork:
    async def test_what_a_failing_unit_of_work_enlisted_is_not_written(
        self, pool: asyncpg.Pool
    ) -> None:
        uows = PostgresUnitsOfWork(pool)
        ana = Customer.register(
            RandomIds().new_id(), T0, (IdentityClaim(GB.parse("email:a@x.org")),)
        )

        async def failing() -> None:
            async with uows() as uow:
                await uow.identities.claim({GB.parse("email:a@x.org"): ana.id})
                uow.repository(Customer).add(ana)
                raise RuntimeError("the command failed")

        with pytest.raises(RuntimeError):
            await failing()
        assert await pool.fetchval("SELECT count(*) FROM events") == 0
        assert await pool.fetchval("SELECT count(*) FROM identities") == 0

    async def test_repositories_of_two_types_commit_together_and_ring_the_bell_with_their_topics(
        self, pool: asyncpg.Pool
    ) -> None:
        rung: list[frozenset[str]] = []
        uows = PostgresUnitsOfWork(pool, on_committed=rung.append)
        ana = Customer.register(RandomIds().new_id(), T0, ())
        order = report("o-1")
        async with uows() as uow:
            uow.repository(Customer).add(ana)
            uow.repository(Signal).record(Signal.recorded(order, ana.id, T0))
        async with uows() as uow:
            assert await uow.repository(Signal).existing([order.signal_id]) == {order.signal_id}
            assert set(await uow.repository(Customer).get([ana.id])) == {ana.id}
        assert rung == [frozenset({topic_of(Customer.Registered), topic_of(Signal.Recorded)})]

    async def test_a_stream_written_twice_from_stale_copies_is_a_conflict(
        self, pool: asyncpg.Pool
    ) -> None:
        uows = PostgresUnitsOfWork(pool, cached=())
        ana = Customer.register(RandomIds().new_id(), T0, ())
        async with uows() as uow:
            uow.repository(Customer).add(ana)
        async with uows() as first:
            one = (await first.repository(Customer).get([ana.id]))[ana.id]
        async with uows() as second:
            two = (await second.repository(Customer).get([ana.id]))[ana.id]
            two.update_profile(T0, {}, {"a": 1})
            second.repository(Customer).add(two)
        one.update_profile(T0, {}, {"b": 2})

        async def stale() -> None:
            async with uows() as uow:
                uow.repository(Customer).add(one)

        with pytest.raises(ConcurrencyConflict):
            await stale()

    async def test_reads_begin_no_transaction_and_one_append_commits_on_its_own(
        self, pool: asyncpg.Pool
    ) -> None:
        uows = PostgresUnitsOfWork(pool, cached=())
        ana = Customer.register(
            RandomIds().new_id(), T0, (IdentityClaim(GB.parse("email:a@x.org")),)
        )
        async with uows() as uow:
            await uow.identities.claim({GB.parse("email:a@x.org"): ana.id})
            assert uow.reader.is_in_transaction()  # a write apart from the append: BEGIN
            uow.repository(Customer).add(ana)
        order = report("o-1")
        async with uows() as uow:
            customers, signals = uow.repository(Customer), uow.repository(Signal)
            assert await uow.identities.resolve([GB.parse("email:a@x.org")]) == {
                GB.parse("email:a@x.org"): ana.id
            }
            assert await signals.existing([order.signal_id]) == set()
            customer = (await customers.get([ana.id]))[ana.id]
            assert not uow.reader.is_in_transaction()
            customer.update_profile(T0, {}, {"a": 1})
            customers.add(customer)
            signals.record(Signal.recorded(order, ana.id, T0))
        assert await count_signals(pool) == 1
        async with uows() as uow:
            assert (await uow.repository(Customer).get([ana.id]))[ana.id].version == 2
