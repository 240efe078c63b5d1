"""Upserting a customer by its identities: created once, updated after, merged when they disagree."""

from __future__ import annotations

from datetime import timedelta

from application.customer.upsert_customer import Upserted
from tests.unit.in_memory_chorus import InMemoryChorus, claim

ANA = claim("email", "ana@example.org")
ANA_PHONE = claim("phone", "+351912345678")


class TestUpsertCustomer:
    async def test_unknown_identities_create_a_customer_with_the_profile_given(self) -> None:
        chorus = InMemoryChorus()
        upserted = await chorus.upsert((ANA,), {"first_name": "Ana"}, {"tier": "gold"})
        assert (upserted.created, upserted.merged) == (True, ())
        customer = await chorus.customer(upserted.customer_id)
        assert (customer.profile.first_name, customer.attributes) == ("Ana", {"tier": "gold"})
        assert await chorus.owner("email", "ana@example.org") == upserted.customer_id

    async def test_the_same_upsert_twice_changes_nothing_the_second_time(self) -> None:
        chorus = InMemoryChorus()
        first = await chorus.upsert((ANA,), {"first_name": "Ana"}, {})
        log = list(chorus.storage.events.log)
        again = await chorus.upsert((ANA,), {"first_name": "Ana"}, {})
        assert again == Upserted(first.customer_id, created=False, merged=())
        assert chorus.storage.events.log == log

    async def test_a_new_identity_is_linked_to_the_customer_its_other_identity_names(
        self,
    ) -> None:
        chorus = InMemoryChorus()
        first = await chorus.upsert((ANA,), {}, {})
        linked = await chorus.upsert((ANA, ANA_PHONE), {}, {})
        assert (linked.customer_id, linked.created) == (first.customer_id, False)
        assert await chorus.owner("phone", "+351912345678") == first.customer_id

    async def test_identities_of_two_customers_merge_them_into_the_oldest(self) -> None:
        chorus = InMemoryChorus()
        older = await chorus.upsert((ANA,), {"first_name": "Ana"}, {})
        chorus.clock.advance(timedelta(minutes=1))
        newer = await chorus.upsert((ANA_PHONE,), {"last_name": "Lima"}, {"tier": "gold"})
        merged = await chorus.upsert((ANA_PHONE, ANA), {}, {})
        assert merged == Upserted(older.customer_id, created=False, merged=(newer.customer_id,))
        survivor = await chorus.customer(older.customer_id)
        assert (survivor.profile.first_name, survivor.profile.last_name) == ("Ana", "Lima")
        assert survivor.attributes == {"tier": "gold"}
        assert await chorus.customers.survivor(newer.customer_id) == older.customer_id
