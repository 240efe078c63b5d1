from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from adapters.postgres.customer_store import PostgresCustomerStore
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from adapters.system.rule_sets import DefaultRuleSets
from application.customer.change_consent import ChangeConsent
from application.customer.upsert_customer import UpsertCustomer
from application.messages.request_message import RequestMessage
from application.queries.decisions import DecisionQueries
from domain.customer.contact import ConsentRecord
from domain.customer.identities import Identity, IdentityClaim, Verification
from domain.policy.decision import SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.rules import FrequencyCap, RuleSet
from domain.policy.vocabulary import Channel, Purpose

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

pytestmark = pytest.mark.integration
GLOBAL_CAP_OF_3 = RuleSet(version=3, caps=(FrequencyCap("cap.global.daily", 3, timedelta(days=1)),))


async def a_customer(pool: asyncpg.Pool) -> UUID:
    store = PostgresCustomerStore(pool)
    made = await UpsertCustomer(store, SystemClock(), RandomIds())(
        (IdentityClaim(Identity("email", "ana@example.org"), Verification.VERIFIED),), {}, {}
    )
    return made.customer_id


def requester(pool: asyncpg.Pool, rules: RuleSet = GLOBAL_CAP_OF_3) -> RequestMessage:
    return RequestMessage(
        PostgresCustomerStore(pool), DefaultRuleSets(rules), SystemClock(), RandomIds()
    )


class TestCapsUnderConcurrency:
    async def test_fifty_requests_from_five_teams_allow_exactly_three(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id = await a_customer(pool)
        services = [requester(pool) for _ in range(5)]  # five processes, five caches
        teams = ["growth", "billing", "support", "retention", "product"]
        requests = [
            services[n % 5](
                customer_id, SendRequest(teams[n % 5], Purpose.SERVICE, (Channel.EMAIL,))
            )
            for n in range(50)
        ]
        decided = await asyncio.gather(*requests)
        outcomes = [d.decision.outcome.value for d in decided if d.decision is not None]
        assert outcomes.count("send") == 3
        assert outcomes.count("defer") == 47
        allowed = await pool.fetchval(
            "SELECT count(*) FROM events WHERE topic LIKE '%:Customer.MessageAllowed'"
        )
        assert allowed == 3


class TestIdempotency:
    async def test_a_retried_request_answers_with_the_first_decision(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id = await a_customer(pool)
        send = requester(pool)
        request = SendRequest("billing", Purpose.TRANSACTIONAL, (Channel.EMAIL,))
        first, *retries = await asyncio.gather(
            *(send(customer_id, request, idempotency_key="billing:invoice-7") for _ in range(5))
        )
        assert {r.decision_id for r in [first, *retries]} == {first.decision_id}
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 1


class TestDecisionsAreRecorded:
    async def test_a_decision_reads_back_as_recorded_with_its_rule_set_version(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id = await a_customer(pool)
        store = PostgresCustomerStore(pool)
        decided = await requester(pool, default_rule_set(3))(
            customer_id, SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,))
        )
        view = await DecisionQueries(store).by_id(decided.decision_id)
        assert view.outcome == "suppress"
        assert view.rule_set_version == 3
        assert view.fired[-1]["rule_id"] == "channels"
        assert view.request["team"] == "growth"

    async def test_an_opt_in_then_a_stop_changes_the_next_decision_at_once(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id = await a_customer(pool)
        store = PostgresCustomerStore(pool)
        change = ChangeConsent(store, SystemClock())
        send = RequestMessage(store, DefaultRuleSets(), SystemClock(), RandomIds())
        promo = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,), priority=10)
        await change(
            customer_id, [ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")]
        )
        first = await send(customer_id, promo)
        await change(
            customer_id,
            [ConsentRecord(Channel.EMAIL, Purpose.MARKETING, False, "unsubscribe link")],
        )
        second = await send(customer_id, promo)
        assert first.decision is not None
        assert second.decision is not None
        assert first.decision.outcome.value == "send"
        assert second.decision.outcome.value == "suppress"
        assert "unsubscribe link" in " ".join(r.reason for r in second.decision.fired)
