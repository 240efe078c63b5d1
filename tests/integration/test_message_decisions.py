from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
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
    store = PostgresUnitsOfWork(pool)
    made = await UpsertCustomer(store, SystemClock(), RandomIds())(
        (IdentityClaim(Identity("email", "ana@example.org"), Verification.VERIFIED),), {}, {}
    )
    return made.customer_id


def requester(pool: asyncpg.Pool, rules: RuleSet = GLOBAL_CAP_OF_3) -> RequestMessage:
    return RequestMessage(
        PostgresUnitsOfWork(pool),
        DefaultRuleSets(rules),
        SystemClock(),
        RandomIds(),
        customers=PostgresCustomerRecords(pool),
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
        decided = await requester(pool, default_rule_set(3))(
            customer_id, SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,))
        )
        view = await DecisionQueries(PostgresCustomerRecords(pool)).by_id(decided.decision_id)
        assert view.outcome == "suppress"
        assert view.rule_set_version == 3
        assert view.fired[-1]["rule_id"] == "channels"
        assert view.request["team"] == "growth"

    async def test_an_opt_in_then_a_stop_changes_the_next_decision_at_once(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id = await a_customer(pool)
        store = PostgresUnitsOfWork(pool)
        change = ChangeConsent(store, SystemClock(), PostgresCustomerRecords(pool))
        send = RequestMessage(
            store,
            DefaultRuleSets(),
            SystemClock(),
            RandomIds(),
            customers=PostgresCustomerRecords(pool),
        )
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


class TestDeferredMessagesComeBack:
    async def test_a_message_deferred_by_quiet_hours_is_decided_again_when_due(
        self, pool: asyncpg.Pool
    ) -> None:
        from datetime import UTC, datetime

        from adapters.system.clock import ManualClock
        from application.messages.redecide_due import RedecideDueMessages

        clock = ManualClock(datetime(2026, 11, 27, 14, tzinfo=UTC))  # 23:00 in Tokyo
        store = PostgresUnitsOfWork(pool)
        ids = RandomIds()
        made = await UpsertCustomer(store, clock, ids)(
            (IdentityClaim(Identity("phone", "+81312345678"), Verification.VERIFIED),),
            {"time_zone": "Asia/Tokyo"},
            {},
        )
        rules = DefaultRuleSets()
        await ChangeConsent(store, clock, PostgresCustomerRecords(pool))(
            made.customer_id, [ConsentRecord(Channel.SMS, Purpose.SERVICE, True, "app")]
        )
        first = await RequestMessage(
            store, rules, clock, ids, customers=PostgresCustomerRecords(pool)
        )(made.customer_id, SendRequest("care", Purpose.SERVICE, (Channel.SMS,)))
        assert first.decision is not None
        assert first.decision.outcome.value == "defer"
        redecide = RedecideDueMessages(PostgresUnitsOfWork(pool), rules, clock, ids)
        assert await redecide() == 0  # not due yet
        clock.set(datetime(2026, 11, 27, 23, 0, 1, tzinfo=UTC))  # 08:00:01 in Tokyo
        assert await redecide() == 1
        assert await redecide() == 0  # decided once
        outcomes = [
            row[0]
            for row in await pool.fetch(
                "SELECT topic FROM events WHERE topic LIKE '%:Customer.Message%' ORDER BY position"
            )
        ]
        assert [t.rpartition(".")[2] for t in outcomes] == ["MessageDeferred", "MessageAllowed"]
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM decisions WHERE message_id = $1", first.message_id
            )
            == 2
        )
        assert await pool.fetchval("SELECT count(*) FROM deferred_messages") == 0

    async def test_two_schedulers_decide_each_due_message_once(self, pool: asyncpg.Pool) -> None:
        from datetime import UTC, datetime

        from adapters.system.clock import ManualClock
        from application.messages.redecide_due import RedecideDueMessages

        clock = ManualClock(datetime(2026, 11, 27, 22, tzinfo=UTC))  # 22:00 in London: quiet
        ids = RandomIds()
        rules = DefaultRuleSets()
        customers = []
        for n in range(10):
            made = await UpsertCustomer(PostgresUnitsOfWork(pool), clock, ids)(
                (IdentityClaim(Identity("device_token", f"dvc-{n}"), Verification.VERIFIED),),
                {"time_zone": "Europe/London"},
                {},
            )
            customers.append(made.customer_id)
        send = RequestMessage(
            PostgresUnitsOfWork(pool), rules, clock, ids, customers=PostgresCustomerRecords(pool)
        )
        for customer_id in customers:
            await send(customer_id, SendRequest("care", Purpose.TRANSACTIONAL, (Channel.PUSH,)))
            await send(customer_id, SendRequest("care", Purpose.SERVICE, (Channel.PUSH,)))
        assert await pool.fetchval("SELECT count(*) FROM deferred_messages") == 10
        clock.set(datetime(2026, 11, 28, 9, tzinfo=UTC))
        schedulers = [
            RedecideDueMessages(PostgresUnitsOfWork(pool), rules, clock, ids) for _ in range(2)
        ]
        done = await asyncio.gather(*(s(limit=3) for s in schedulers for _ in range(4)))
        assert sum(done) == 10
        assert await pool.fetchval("SELECT count(*) FROM deferred_messages") == 0
        allowed = await pool.fetchval(
            "SELECT count(*) FROM events WHERE topic LIKE '%:Customer.MessageAllowed'"
        )
        assert allowed == 20


class TestSimulatingADraft:
    async def test_a_looser_cap_would_have_sent_the_deferred_ones(self, pool: asyncpg.Pool) -> None:
        from datetime import UTC, datetime

        from adapters.postgres.history import PostgresHistory
        from adapters.system.clock import ManualClock
        from application.rules.simulate_rules import SimulateRules

        clock = ManualClock(datetime(2026, 11, 27, 10, tzinfo=UTC))
        customer_id = await a_customer(pool)
        send = RequestMessage(
            PostgresUnitsOfWork(pool),
            DefaultRuleSets(GLOBAL_CAP_OF_3),
            clock,
            RandomIds(),
            customers=PostgresCustomerRecords(pool),
        )
        for _ in range(5):
            await send(customer_id, SendRequest("growth", Purpose.SERVICE, (Channel.EMAIL,)))
        looser = RuleSet(version=0, caps=(FrequencyCap("cap.global.daily", 5, timedelta(days=1)),))
        report = await SimulateRules(PostgresHistory(pool))(
            looser, datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC)
        )
        assert report.decisions == 5
        assert report.changed == 2
        assert dict(report.by_outcome) == {"defer -> send": 2}
        assert dict(report.by_rule) == {"cap.global.daily": 2}
        same = await SimulateRules(PostgresHistory(pool))(
            GLOBAL_CAP_OF_3, datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC)
        )
        assert same.changed == 0


class TestPrioritiesAndKeys:
    async def test_when_a_slot_opens_the_highest_priority_waiting_message_takes_it(
        self, pool: asyncpg.Pool
    ) -> None:
        from datetime import UTC, datetime

        from adapters.system.clock import ManualClock
        from application.messages.redecide_due import RedecideDueMessages

        one_a_day = RuleSet(version=5, caps=(FrequencyCap("cap.daily", 1, timedelta(days=1)),))
        clock = ManualClock(datetime(2026, 11, 27, 10, tzinfo=UTC))
        customer_id = await a_customer(pool)
        send = RequestMessage(
            PostgresUnitsOfWork(pool),
            DefaultRuleSets(one_a_day),
            clock,
            RandomIds(),
            customers=PostgresCustomerRecords(pool),
        )
        await send(customer_id, SendRequest("growth", Purpose.SERVICE, (Channel.EMAIL,)))
        waiting = {}
        for priority in (0, 50, 100, 10):
            clock.advance(timedelta(minutes=1))
            decided = await send(
                customer_id,
                SendRequest("care", Purpose.SERVICE, (Channel.EMAIL,), priority=priority),
            )
            assert decided.decision is not None
            assert decided.decision.outcome.value == "defer"
            waiting[decided.message_id] = priority
        clock.set(datetime(2026, 11, 28, 10, 30, tzinfo=UTC))
        await RedecideDueMessages(
            PostgresUnitsOfWork(pool), DefaultRuleSets(one_a_day), clock, RandomIds()
        )()
        allowed = [
            row[0]
            for row in await pool.fetch(
                """SELECT d.message_id FROM decisions d JOIN events e
                   ON e.stream_id = d.customer_id AND e.version = d.stream_version
                   WHERE e.topic LIKE '%:Customer.MessageAllowed' AND e.occurred_at > '2026-11-28'"""
            )
        ]
        assert [waiting[m] for m in allowed] == [100]

    async def test_an_idempotency_key_reused_for_another_request_is_refused(
        self, pool: asyncpg.Pool
    ) -> None:
        from application.messages.request_message import IdempotencyKeyReused

        customer_id = await a_customer(pool)
        send = requester(pool)
        await send(
            customer_id,
            SendRequest("billing", Purpose.TRANSACTIONAL, (Channel.EMAIL,)),
            idempotency_key="billing:k1",
        )
        with pytest.raises(IdempotencyKeyReused):
            await send(
                customer_id,
                SendRequest("billing", Purpose.TRANSACTIONAL, (Channel.SMS,)),
                idempotency_key="billing:k1",
            )
