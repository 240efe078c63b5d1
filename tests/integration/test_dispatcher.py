"""The dispatcher running against real PostgreSQL and fake Twilio servers: failover, breakers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.messages import PostgresDeliveryStore
from adapters.postgres.templates import PostgresTemplates
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.providers.config import parse_provider_config
from adapters.providers.directory import ConfiguredProviderDirectory
from adapters.providers.fakes.twilio_server import FakeTwilio
from adapters.providers.guarded import BreakerState, GuardedProvider
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from adapters.system.rule_sets import DefaultRuleSets
from adapters.templates.jinja import JinjaTemplates
from application.customer.upsert_customer import UpsertCustomer
from application.delivery.dispatch import DispatchMessages
from application.messages.compose import MessageContent
from application.messages.request_message import RequestMessage
from domain.customer.identities import Identity, IdentityClaim, Verification
from domain.message.aggregate import MessageStatus
from domain.message.content import Content
from domain.policy.decision import SendRequest
from domain.policy.vocabulary import Channel, Purpose
from entrypoints.workers.dispatcher import Dispatcher

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from uuid import UUID

    import asyncpg

pytestmark = pytest.mark.integration


class BreakerClock:
    """The breakers' clock: it moves when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def primary() -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token="primary-token") as fake:
        yield fake


@pytest.fixture(scope="module")
def backup() -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token="backup-token") as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_fakes(primary: FakeTwilio, backup: FakeTwilio) -> None:
    primary.reset()
    backup.reset()


def twilio(name: str, fake: FakeTwilio, priority: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "twilio",
        "priority": priority,
        "base_url": fake.base_url,
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "from_number": "+15005550006",
        **extra,
    }


class Delivery:
    """The service's delivery on one database: requests queue messages, a dispatcher sends."""

    def __init__(self, pool: asyncpg.Pool, directory: ConfiguredProviderDirectory) -> None:
        clock, ids = SystemClock(), RandomIds()
        uows = PostgresUnitsOfWork(pool)
        self.pool = pool
        self.directory = directory
        self.store = PostgresDeliveryStore(pool)
        self.upsert = UpsertCustomer(uows, clock, ids)
        self.request = RequestMessage(
            uows,
            DefaultRuleSets(),
            clock,
            ids,
            JinjaTemplates(PostgresTemplates(pool)),
            customers=PostgresCustomerRecords(pool),
        )
        self.dispatch = DispatchMessages(uows, directory, clock, lease_seconds=30)

    async def queue_sms(self, count: int) -> list[UUID]:
        made = await self.upsert(
            (IdentityClaim(Identity("phone", "+14155550100"), Verification.VERIFIED),), {}, {}
        )
        request = SendRequest("billing", Purpose.TRANSACTIONAL, (Channel.SMS,))
        content = MessageContent(inline=Content(body="Your code is 123456"))
        ids = []
        for _ in range(count):
            decided = await self.request(made.customer_id, request, content=content)
            assert decided.message_id is not None
            ids.append(decided.message_id)
        return ids

    def provider(self, name: str) -> GuardedProvider:
        found = self.directory.get(name)
        assert isinstance(found, GuardedProvider)
        return found

    async def accepted_all(self, count: int) -> bool:
        """Whether at least `count` messages were accepted by a provider and recorded."""
        accepted: int = await self.pool.fetchval(
            "SELECT count(*) FROM messages WHERE provider IS NOT NULL"
        )
        return accepted >= count


@pytest.fixture
async def directory_for() -> AsyncIterator[
    Callable[[list[dict[str, Any]], BreakerClock], ConfiguredProviderDirectory]
]:
    built: list[ConfiguredProviderDirectory] = []

    def build(providers: list[dict[str, Any]], clock: BreakerClock) -> ConfiguredProviderDirectory:
        directory = ConfiguredProviderDirectory.from_config(
            parse_provider_config(json.dumps(providers)), clock=clock
        )
        built.append(directory)
        return directory

    yield build
    for directory in built:
        await directory.close()


@pytest.fixture
async def dispatchers() -> AsyncIterator[list[Dispatcher]]:
    running: list[Dispatcher] = []
    yield running
    for dispatcher in running:
        await dispatcher.stop()


async def until(condition: Callable[[], Any], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.02)


class TestFailover:
    @pytest.mark.parametrize("outage", ["503", "hang"])
    async def test_with_the_primary_down_sends_fail_over_and_its_breaker_opens(
        self,
        pool: asyncpg.Pool,
        primary: FakeTwilio,
        backup: FakeTwilio,
        directory_for: Callable[[list[dict[str, Any]], BreakerClock], ConfiguredProviderDirectory],
        dispatchers: list[Dispatcher],
        outage: str,
    ) -> None:
        guards = {
            "timeout_seconds": 0.3,
            "max_concurrency": 4,
            "breaker": {"failure_threshold": 3, "reset_seconds": 60},
        }
        delivery = Delivery(
            pool,
            directory_for(
                [twilio("sms-primary", primary, 10, **guards), twilio("sms-backup", backup, 20)],
                BreakerClock(),
            ),
        )
        if outage == "503":
            primary.fail_next(1000, 503)
        else:
            primary.hang(30)
        message_ids = await delivery.queue_sms(20)

        dispatcher = Dispatcher(delivery.dispatch, [Channel.SMS])
        dispatchers.append(dispatcher)
        await dispatcher.start()
        await until(lambda: delivery.accepted_all(len(message_ids)))

        assert len(backup.received) == 20
        assert primary.received == []
        guarded = delivery.provider("sms-primary")
        assert guarded.breaker_state is BreakerState.OPEN
        stats = guarded.stats
        assert stats.opened == 1
        assert stats.failed >= 3  # then it opened: the rest were refused without a call
        assert stats.failed + stats.short_circuited == 20
        for message_id in message_ids:
            message = await delivery.store.get(message_id)
            assert message is not None
            assert message.provider == "sms-backup"
            assert message.status is MessageStatus.QUEUED
            first, second = message.attempts
            assert (first.provider, first.accepted, first.retryable) == (
                "sms-primary",
                False,
                True,
            )
            assert first.answer in {
                "circuit open",
                "twilio error 20500: injected failure (HTTP 503)",
                "sms-primary timed out after 0.3s",
                "twilio timed out",
            }
            assert (second.provider, second.accepted) == ("sms-backup", True)
        rows = await pool.fetch("SELECT status, provider FROM messages")
        assert {(row["status"], row["provider"]) for row in rows} == {("queued", "sms-backup")}


class TestOpenBreakers:
    async def test_a_lane_whose_providers_are_all_open_leaves_its_messages_in_the_outbox(
        self,
        pool: asyncpg.Pool,
        primary: FakeTwilio,
        directory_for: Callable[[list[dict[str, Any]], BreakerClock], ConfiguredProviderDirectory],
        dispatchers: list[Dispatcher],
    ) -> None:
        clock = BreakerClock()
        only = twilio(
            "sms-only",
            primary,
            10,
            max_concurrency=2,
            breaker={"failure_threshold": 2, "reset_seconds": 30},
        )
        delivery = Delivery(pool, directory_for([only], clock))
        primary.fail_next(1000, 503)
        await delivery.queue_sms(40)
        dispatcher = Dispatcher(delivery.dispatch, [Channel.SMS], lane_capacity=8, batch=8)
        dispatchers.append(dispatcher)
        await dispatcher.start()
        guarded = delivery.provider("sms-only")

        async def opened() -> bool:
            return guarded.breaker_state is BreakerState.OPEN

        await until(opened)
        await asyncio.sleep(1.0)  # the lane polls and finds every provider open

        # One batch had a round (two real failures, the rest short-circuited); the others
        # were never claimed, so an outage does not use up their rounds.
        tried = await pool.fetchval("SELECT count(*) FROM outbox WHERE attempts > 0")
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 40
        assert tried <= 8
        assert guarded.stats.short_circuited <= 8

        primary.reset()  # the provider is back
        clock.now += 30  # the breaker lets one trial through; the lane claims that one first
        await until(lambda: delivery.accepted_all(40 - tried))
        assert guarded.breaker_state is BreakerState.CLOSED
        assert guarded.stats.short_circuited <= 8  # none while the trial was out
        assert len(primary.received) >= 40 - tried  # and those tried before, once due again
        assert primary.duplicates == 0
