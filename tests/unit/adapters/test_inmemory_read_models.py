"""The in-memory read models answer as PostgreSQL's do, from the same log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from adapters.inmemory.api_keys import InMemoryApiKeyStore
from adapters.inmemory.directory import InMemoryDirectory
from adapters.inmemory.ids import SequentialIds
from adapters.system.clock import ManualClock
from domain.segments.aggregate import Membership, segment_id
from ports.api_keys import Role
from ports.directory import DirectorySearch, InvalidCursor
from tests.unit.in_memory_chorus import MONDAY_NOON, InMemoryChorus, claim, report

ANA = claim("email", "ana@example.org")
BEA = claim("email", "bea@example.org")
BEA_PHONE = claim("phone", "+351912345678")


async def two_customers(chorus: InMemoryChorus) -> tuple[UUID, UUID]:
    ana = await chorus.upsert((ANA,), {"country": "PT"}, {"tier": "gold"})
    bea = await chorus.upsert((BEA, BEA_PHONE), {"country": "ES"}, {"tier": "silver"})
    return ana.customer_id, bea.customer_id


class TestDirectory:
    async def test_customers_are_found_by_identity_type_attribute_and_profile(self) -> None:
        chorus = InMemoryChorus()
        ana, bea = await two_customers(chorus)
        directory = InMemoryDirectory(chorus.storage)

        async def found(**criteria: object) -> list[UUID]:
            page = await directory.search(DirectorySearch(**criteria), after=None, limit=10)  # type: ignore[arg-type]
            return [entry.customer_id for entry in page.customers]

        assert await found(identity="email:bea@example.org") == [bea]
        assert await found(identity_type="phone") == [bea]
        assert await found(attributes={"tier": "gold"}) == [ana]
        assert await found(attributes={"country": "ES"}) == [bea]
        assert await found() == [ana, bea]

    async def test_pages_continue_after_their_cursor(self) -> None:
        chorus = InMemoryChorus()
        ana, bea = await two_customers(chorus)
        directory = InMemoryDirectory(chorus.storage)
        first = await directory.search(DirectorySearch(), after=None, limit=1)
        rest = await directory.search(DirectorySearch(), after=first.next_cursor, limit=1)
        assert [e.customer_id for e in (*first.customers, *rest.customers)] == [ana, bea]
        assert rest.next_cursor is None
        with pytest.raises(InvalidCursor):
            await directory.search(DirectorySearch(), after="not a cursor", limit=1)

    async def test_segment_members_and_merged_customers(self) -> None:
        chorus = InMemoryChorus()
        ana, bea = await two_customers(chorus)
        vip = segment_id("vip")
        entered = Membership.Entered(  # type: ignore[call-arg]
            originator_id=UUID(int=77),
            originator_version=1,
            timestamp=MONDAY_NOON,
            segment_id=vip,
            segment_key="vip",
            segment_version=1,
            customer_id=bea,
        )
        chorus.storage.events.append([(entered, bea)])
        directory = InMemoryDirectory(chorus.storage)
        page = await directory.search(DirectorySearch(segment_id=vip), after=None, limit=10)
        assert [e.customer_id for e in page.customers] == [bea]
        await chorus.upsert((ANA, BEA), {}, {})
        everyone = await directory.search(DirectorySearch(), after=None, limit=10)
        assert [e.customer_id for e in everyone.customers] == [ana]

    async def test_activity_counts_signals_per_type_from_the_whole_hour(self) -> None:
        chorus = InMemoryChorus()
        at = MONDAY_NOON
        signals = [
            report("e-1", ANA, occurred_at=at - timedelta(hours=2)),
            report("e-2", ANA, occurred_at=at - timedelta(minutes=30)),
            report("e-3", ANA, kind="order.placed", occurred_at=at),
        ]
        (outcome, *_) = await chorus.ingest(signals)
        assert outcome.customer_id is not None
        since = at - timedelta(minutes=10)  # 11:50: the 11:00 hour counts
        counts = await InMemoryDirectory(chorus.storage).activity(outcome.customer_id, since)
        assert [(c.signal_type, c.count, c.last_at) for c in counts] == [
            ("order.placed", 1, at),
            ("page.viewed", 1, at - timedelta(minutes=30)),
        ]


class TestApiKeys:
    async def test_a_key_authenticates_by_its_secret_only(self) -> None:
        keys = InMemoryApiKeyStore(ManualClock(datetime(2026, 12, 5, tzinfo=UTC)), SequentialIds())
        made = await keys.create(Role.MARKETER, "campaigns")
        assert await keys.authenticate(made.secret) == made.key
        assert await keys.authenticate(made.secret + "x") is None

    async def test_a_secret_created_again_takes_the_new_role(self) -> None:
        keys = InMemoryApiKeyStore(ManualClock(datetime(2026, 12, 5, tzinfo=UTC)), SequentialIds())
        first = await keys.create(Role.AUDITOR, "ops", secret="s3cret")
        await keys.create(Role.ADMIN, "ops again", secret="s3cret")
        found = await keys.authenticate("s3cret")
        assert found is not None
        assert (found.id, found.role) == (first.key.id, Role.ADMIN)
