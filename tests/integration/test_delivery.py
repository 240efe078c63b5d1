"""Delivery against real PostgreSQL and fake Twilio servers: outbox, dispatch, failover, webhooks."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from adapters.inmemory.providers import InMemoryProviders
from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.messages import PostgresDeliveryStore
from adapters.postgres.templates import PostgresTemplates
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.providers.email_api import EmailApiProvider
from adapters.providers.fakes.email_api_server import FakeEmailApi
from adapters.providers.fakes.twilio_server import FakeTwilio
from adapters.providers.fakes.whatsapp_server import FakeWhatsApp
from adapters.providers.twilio_sms import TwilioSmsProvider
from adapters.providers.whatsapp_cloud import WhatsAppCloudProvider
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from adapters.system.rule_sets import DefaultRuleSets
from adapters.templates.jinja import JinjaTemplates
from application.customer.change_suppression import ChangeSuppression
from application.customer.signals import IngestSignals
from application.customer.upsert_customer import UpsertCustomer
from application.delivery.dispatch import DispatchMessages
from application.delivery.fall_back import FallBackDue
from application.delivery.give_up import GiveUpMessage
from application.delivery.webhooks import ApplyParkedStatuses, HandleWebhook
from application.messages.compose import MessageContent
from application.messages.request_message import RequestMessage
from domain.customer.identities import Identity, IdentityClaim, IdentityNormalizer, Verification
from domain.message.aggregate import Message, MessageStatus
from domain.message.content import Content
from domain.policy.decision import SendRequest
from domain.policy.vocabulary import Channel, Purpose
from ports.delivery import Fallback
from ports.providers import InvalidSignature
from ports.templates import RenderError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from uuid import UUID

    import asyncpg

    from adapters.postgres.unit_of_work import PostgresUnitOfWork


pytestmark = pytest.mark.integration

PHONE = "+14155550100"
HOOK = "https://chorus.example.com/v1/webhooks/"


@pytest.fixture(scope="module")
def primary() -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token="primary-token") as fake:
        yield fake


@pytest.fixture(scope="module")
def secondary() -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token="secondary-token", price=None) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_fakes(primary: FakeTwilio, secondary: FakeTwilio) -> None:
    primary.reset()
    secondary.reset()


def twilio(name: str, fake: FakeTwilio) -> TwilioSmsProvider:
    return TwilioSmsProvider(
        name,
        base_url=fake.base_url,
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        from_number="+15005550006",
        timeout=2.0,
    )


class Delivery:
    """Chorus's delivery, wired on one database."""

    def __init__(
        self, pool: asyncpg.Pool, directory: InMemoryProviders, max_rounds: int = 8
    ) -> None:
        clock, ids = ManualClock(), RandomIds()
        self.clock = clock
        self.uows = PostgresUnitsOfWork(pool)
        self.customers = PostgresCustomerRecords(pool)
        self.store = PostgresDeliveryStore(pool)
        self.pool = pool
        self.request = RequestMessage(
            self.uows,
            DefaultRuleSets(),
            clock,
            ids,
            JinjaTemplates(PostgresTemplates(pool)),
            customers=self.customers,
        )
        self.dispatch = DispatchMessages(
            self.uows, directory, clock, max_rounds=max_rounds, lease_seconds=30
        )
        self.webhook = HandleWebhook(
            directory,
            self.uows,
            self.store,
            ChangeSuppression(self.uows, clock, self.customers),
            IngestSignals(self.uows, clock, ids),
            IdentityNormalizer("US"),
            clock,
        )
        self.upsert = UpsertCustomer(self.uows, clock, ids)
        self.fall_back = FallBackDue(self.uows, self.request, clock)

    async def customer(self) -> UUID:
        made = await self.upsert(
            (IdentityClaim(Identity("phone", PHONE), Verification.VERIFIED),),
            {"first_name": "Ana"},
            {},
        )
        return made.customer_id

    async def send_sms(
        self,
        customer_id: UUID,
        body: str = "Hi {{ customer.first_name }}",
        fallback: Fallback | None = None,
        team: str = "billing",
    ) -> UUID:
        decided = await self.request(
            customer_id,
            SendRequest(team, Purpose.TRANSACTIONAL, (Channel.SMS,)),
            content=MessageContent(
                # On WhatsApp (the fallback), outside the 24-hour window: an approved template.
                inline=Content(body=body, whatsapp_template="renewal_reminder"),
                campaign="renewals",
                fallback=fallback,
            ),
        )
        return decided.message_id

    async def run_round(self, channel: Channel = Channel.SMS) -> int:
        claimed = await self.dispatch.claim(channel, 100)
        rounds = [(c.message, await self.dispatch.send(c)) for c in claimed]
        await self.dispatch.settle(rounds)
        return len(rounds)

    async def outbox(self) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT message_id, attempts FROM outbox")


class TestOutboxAndDispatch:
    async def test_an_allowed_message_is_queued_with_its_decision_and_reaches_the_provider_once(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        message_id = await delivery.send_sms(await delivery.customer())
        assert [row["message_id"] for row in await delivery.outbox()] == [message_id]

        assert await delivery.run_round() == 1

        assert [form["Body"] for form in primary.received] == ["Hi Ana"]
        assert primary.received[0]["To"] == PHONE
        assert await delivery.outbox() == []
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.provider == "twilio-main"
        assert message.status is MessageStatus.QUEUED  # Twilio queued it; webhooks tell the rest
        assert message.cost == Decimal("0.00790")
        assert len(await delivery.store.decisions_of(message_id)) == 1

    async def test_a_missing_variable_fails_the_request_and_records_nothing(
        self, pool: asyncpg.Pool
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders())
        customer_id = await delivery.customer()
        with pytest.raises(RenderError) as refused:
            await delivery.send_sms(customer_id, "Your code is {{ vars.code }}")
        assert refused.value.variable == "vars.code"
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 0
        assert await delivery.outbox() == []

    async def test_a_failing_primary_fails_over_to_the_next_provider(
        self, pool: asyncpg.Pool, primary: FakeTwilio, secondary: FakeTwilio
    ) -> None:
        delivery = Delivery(
            pool,
            InMemoryProviders(twilio("twilio-main", primary), twilio("twilio-backup", secondary)),
        )
        primary.fail_next(1, status=503)
        message_id = await delivery.send_sms(await delivery.customer())

        await delivery.run_round()

        assert primary.received == []
        assert len(secondary.received) == 1
        message = await delivery.store.get(message_id)
        assert message is not None
        assert [(a.provider, a.accepted) for a in message.attempts] == [
            ("twilio-main", False),
            ("twilio-backup", True),
        ]
        assert message.provider == "twilio-backup"

    async def test_retryable_failures_come_back_later_then_end_in_a_recorded_failure(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)), max_rounds=2)
        primary.fail_next(10, status=500)
        message_id = await delivery.send_sms(await delivery.customer())

        await delivery.run_round()
        assert [row["attempts"] for row in await delivery.outbox()] == [1]
        assert await delivery.run_round() == 0  # not due yet: backing off
        await pool.execute("UPDATE outbox SET due_at = now()")
        await delivery.run_round()

        assert await delivery.outbox() == []
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.FAILED
        assert message.failure is not None
        assert "retries exhausted" in message.failure
        assert len(message.attempts) == 2

    async def test_a_round_repeated_after_a_crash_reaches_the_provider_once(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        message_id = await delivery.send_sms(await delivery.customer())
        dispatch = delivery.dispatch
        dying = DispatchMessages(
            delivery.uows, dispatch.providers, dispatch.clock, lease_seconds=0.05
        )
        claimed = await dying.claim(Channel.SMS, 10)
        await dying.send(claimed[0])  # sent, then the worker dies before recording

        await pool.execute("SELECT pg_sleep(0.1)")
        await delivery.run_round()

        assert len(primary.received) == 1
        assert primary.duplicates == 1
        assert await delivery.outbox() == []
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.provider_message_id is not None


class TestWebhooks:
    async def accepted(self, delivery: Delivery) -> tuple[UUID, UUID, str]:
        customer_id = await delivery.customer()
        message_id = await delivery.send_sms(customer_id)
        await delivery.run_round()
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.provider_message_id is not None
        return customer_id, message_id, message.provider_message_id

    async def test_a_delivered_status_is_recorded_once_however_often_it_arrives(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        _, message_id, sid = await self.accepted(delivery)
        url = HOOK + "twilio-main"
        headers, body = primary.signed_status_callback(url, sid, "delivered")

        first = await delivery.webhook("twilio-main", headers, body, url)
        again = await delivery.webhook("twilio-main", headers, body, url)

        assert (first.statuses, again.statuses, again.duplicates) == (1, 0, 1)
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.DELIVERED
        row = await pool.fetchrow("SELECT status FROM messages WHERE message_id = $1", message_id)
        assert row is not None
        assert row["status"] == "delivered"

    async def test_a_forged_signature_is_refused_and_records_nothing(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        _, message_id, sid = await self.accepted(delivery)
        url = HOOK + "twilio-main"
        headers, body = primary.signed_status_callback(url, sid, "delivered")
        forged = body.replace(b"delivered", b"failed")

        with pytest.raises(InvalidSignature):
            await delivery.webhook("twilio-main", headers, forged, url)

        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.QUEUED

    async def test_an_undelivered_sms_ends_failed(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        customer_id, message_id, sid = await self.accepted(delivery)
        url = HOOK + "twilio-main"
        # 30003: the handset is unreachable now (off, out of coverage): the number stays usable.
        headers, body = primary.signed_status_callback(url, sid, "undelivered", error_code="30003")
        await delivery.webhook("twilio-main", headers, body, url)
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.FAILED
        customer = await delivery.customers.get(customer_id)
        assert customer is not None
        assert customer.suppressed == {}

    async def test_an_sms_to_an_unknown_number_bounces_and_suppresses_sms(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        customer_id, message_id, sid = await self.accepted(delivery)
        url = HOOK + "twilio-main"
        # What the demo's fake sends for `bounced`: the number does not exist.
        headers, body = primary.signed_status_callback(url, sid, "undelivered", error_code="30005")
        await delivery.webhook("twilio-main", headers, body, url)
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.BOUNCED
        assert message.statuses[-1].reason is not None
        assert message.statuses[-1].reason.startswith("twilio error 30005")
        customer = await delivery.customers.get(customer_id)
        assert customer is not None
        assert customer.suppressed[Channel.SMS].startswith(
            "hard bounce reported by twilio-main: twilio error 30005"
        )

    async def test_a_status_that_overtakes_its_message_is_applied_once_the_message_is_known(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        message_id = await delivery.send_sms(await delivery.customer())
        claimed = await delivery.dispatch.claim(Channel.SMS, 10)
        sent = await delivery.dispatch.send(claimed[0])  # accepted, not yet recorded
        assert sent.receipt is not None
        url = HOOK + "twilio-main"
        sid = sent.receipt.provider_message_id
        headers, body = primary.signed_status_callback(url, sid, "delivered")

        handled = await delivery.webhook("twilio-main", headers, body, url)
        await delivery.webhook("twilio-main", headers, body, url)  # the provider retries
        assert handled.parked == 1
        apply = ApplyParkedStatuses(delivery.store, delivery.webhook)
        assert await apply() == 0  # its message is not recorded yet

        await delivery.dispatch.settle([(claimed[0].message, sent)])
        assert await apply() == 1
        assert await apply() == 0
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.DELIVERED

    async def test_an_inbound_stop_becomes_a_signal_that_opts_the_customer_out(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        customer_id = await delivery.customer()
        url = HOOK + "twilio-main"
        headers, body = primary.signed_inbound(url, PHONE, "STOP")

        handled = await delivery.webhook("twilio-main", headers, body, url)
        await delivery.webhook("twilio-main", headers, body, url)  # the provider retries

        assert handled.inbound == 1
        customer = await delivery.customers.get(customer_id)
        assert customer is not None
        assert Channel.SMS in customer.opted_out
        signals = await pool.fetchval(
            "SELECT count(*) FROM events WHERE topic LIKE '%Signal.Recorded'"
        )
        assert signals == 1


class TestWhatsAppTemplates:
    async def test_free_text_claimed_as_an_approved_template_is_not_sent_outside_the_window(
        self, pool: asyncpg.Pool
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders())
        customer_id = await delivery.customer()
        decided = await delivery.request(
            customer_id,
            SendRequest(
                "support", Purpose.TRANSACTIONAL, (Channel.WHATSAPP,), approved_template=True
            ),
            content=MessageContent(inline=Content(body="free text")),
        )
        assert decided.decision is not None
        assert not decided.decision.allows_send

    async def test_an_approved_template_goes_without_the_callers_flag(
        self, pool: asyncpg.Pool
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders())
        customer_id = await delivery.customer()
        decided = await delivery.request(
            customer_id,
            SendRequest("support", Purpose.TRANSACTIONAL, (Channel.WHATSAPP,)),
            content=MessageContent(inline=Content(whatsapp_template="order_shipped")),
        )
        assert decided.decision is not None
        assert decided.decision.allows_send


class TestBouncesAndComplaints:
    @pytest.mark.parametrize(
        ("status", "expected", "why"),
        [
            ("bounced", MessageStatus.BOUNCED, "hard bounce"),
            ("complained", MessageStatus.COMPLAINED, "spam complaint"),
        ],
    )
    async def test_a_hard_bounce_or_a_complaint_suppresses_email_for_the_customer(
        self, pool: asyncpg.Pool, status: str, expected: MessageStatus, why: str
    ) -> None:
        with FakeEmailApi() as fake:
            provider = EmailApiProvider(
                "mail",
                base_url=fake.base_url,
                api_key=fake.api_key,
                webhook_secret=fake.webhook_secret,
                sender="orders@shop.example",
            )
            delivery = Delivery(pool, InMemoryProviders(provider))
            made = await delivery.upsert(
                (IdentityClaim(Identity("email", "ana@example.org"), Verification.VERIFIED),),
                {"first_name": "Ana"},
                {},
            )
            decided = await delivery.request(
                made.customer_id,
                SendRequest("orders", Purpose.TRANSACTIONAL, (Channel.EMAIL,)),
                content=MessageContent(inline=Content(subject="Hi", body="Hello")),
            )
            await delivery.run_round(Channel.EMAIL)
            message = await delivery.store.get(decided.message_id)
            assert message is not None
            assert message.provider_message_id is not None
            webhook = fake.status_webhook(
                HOOK + "mail",
                message.provider_message_id,
                None,
                status,  # type: ignore[arg-type]
            )
            assert webhook is not None

            await delivery.webhook("mail", webhook.headers, webhook.body, HOOK + "mail")
            await provider.close()

        message = await delivery.store.get(decided.message_id)
        assert message is not None
        assert message.status is expected
        customer = await delivery.customers.get(made.customer_id)
        assert customer is not None
        assert why in customer.suppressed[Channel.EMAIL]

    async def test_a_number_not_on_whatsapp_bounces_and_suppresses_whatsapp_alone(
        self, pool: asyncpg.Pool
    ) -> None:
        with FakeWhatsApp() as fake:
            provider = WhatsAppCloudProvider(
                "wa",
                base_url=fake.base_url,
                phone_number_id=fake.phone_number_id,
                access_token=fake.access_token,
                app_secret=fake.app_secret,
            )
            delivery = Delivery(pool, InMemoryProviders(provider))
            customer_id = await delivery.customer()
            decided = await delivery.request(
                customer_id,
                SendRequest("support", Purpose.TRANSACTIONAL, (Channel.WHATSAPP,)),
                content=MessageContent(inline=Content(whatsapp_template="order_shipped")),
            )
            await delivery.run_round(Channel.WHATSAPP)
            message = await delivery.store.get(decided.message_id)
            assert message is not None
            assert message.provider_message_id is not None
            # What the fake sends for `bounced`: `failed` with 131026, message undeliverable.
            webhook = fake.status_webhook(
                HOOK + "wa", message.provider_message_id, fake.received[0], "bounced"
            )
            assert webhook is not None

            await delivery.webhook("wa", webhook.headers, webhook.body, HOOK + "wa")
            await provider.close()

        message = await delivery.store.get(decided.message_id)
        assert message is not None
        assert message.status is MessageStatus.BOUNCED
        assert message.statuses[-1].reason is not None
        assert message.statuses[-1].reason.startswith("whatsapp error 131026")
        customer = await delivery.customers.get(customer_id)
        assert customer is not None
        assert set(customer.suppressed) == {Channel.WHATSAPP}
        assert customer.suppressed[Channel.WHATSAPP].startswith(
            "hard bounce reported by wa: whatsapp error 131026"
        )


class TestChannelFallback:
    TEN_MINUTES = Fallback((Channel.WHATSAPP,), 600)

    async def test_a_message_not_delivered_in_time_is_requested_on_the_fallback_channel(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        message_id = await delivery.send_sms(await delivery.customer(), fallback=self.TEN_MINUTES)
        await delivery.run_round()
        assert await delivery.fall_back() == 0  # not due yet

        delivery.clock.advance(timedelta(minutes=11))
        assert await delivery.fall_back() == 1
        assert await delivery.fall_back() == 0  # once

        first = await delivery.store.get(message_id)
        assert first is not None
        assert first.fell_back_to is not None
        second = await delivery.store.get(first.fell_back_to)
        assert second is not None
        assert second.channel is Channel.WHATSAPP
        assert second.content.body == "Hi Ana"
        decisions = await delivery.store.decisions_of(second.id)
        assert len(decisions) == 1

    async def test_a_delivered_message_drops_its_fallback(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        message_id = await delivery.send_sms(await delivery.customer(), fallback=self.TEN_MINUTES)
        await delivery.run_round()
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.provider_message_id is not None
        url = HOOK + "twilio-main"
        headers, body = primary.signed_status_callback(
            url, message.provider_message_id, "delivered"
        )
        await delivery.webhook("twilio-main", headers, body, url)

        delivery.clock.advance(timedelta(minutes=11))
        assert await delivery.fall_back() == 1
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.fell_back_to is None
        assert await pool.fetchval("SELECT count(*) FROM fallbacks") == 0

    async def test_a_failed_message_falls_back_at_once(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        primary.fail_next(1, status=400)  # refused for good
        message_id = await delivery.send_sms(await delivery.customer(), fallback=self.TEN_MINUTES)
        await delivery.run_round()

        assert await delivery.fall_back() == 1
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.FAILED
        assert message.fell_back_to is not None


class DiesBeforeFellBack:
    """Units of work that die, once, as one is about to commit a `FellBack`: nothing it
    holds is committed."""

    def __init__(self, uows: PostgresUnitsOfWork) -> None:
        self.uows = uows
        self.died = False

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[PostgresUnitOfWork]:
        async with self.uows() as uow:
            yield uow
            pending = [e for a in uow.to_save.values() for e in a.pending_events]
            if not self.died and any(isinstance(e, Message.FellBack) for e in pending):
                self.died = True
                raise RuntimeError("the worker died before its commit")


class TestAFallbackIsAlwaysLinked:
    """A fallback's decision and its first message's `FellBack` commit together: no fallback
    is ever decided (and sent) that nothing links to the send it answers for."""

    TEN_MINUTES = Fallback((Channel.WHATSAPP,), 600)

    async def delivered(self, delivery: Delivery, primary: FakeTwilio, message_id: UUID) -> None:
        message = await delivery.store.get(message_id)
        assert message is not None
        assert message.provider_message_id is not None
        url = HOOK + "twilio-main"
        headers, body = primary.signed_status_callback(
            url, message.provider_message_id, "delivered"
        )
        await delivery.webhook("twilio-main", headers, body, url)

    async def test_a_worker_that_dies_before_the_commit_leaves_no_fallback(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        message_id = await delivery.send_sms(await delivery.customer(), fallback=self.TEN_MINUTES)
        await delivery.run_round()
        delivery.clock.advance(timedelta(minutes=11))
        dying = FallBackDue(
            DiesBeforeFellBack(delivery.uows), delivery.request, delivery.clock, lease_seconds=0
        )
        with pytest.raises(RuntimeError):
            await dying()
        channels = "SELECT channel FROM messages ORDER BY channel"
        assert [row["channel"] for row in await pool.fetch(channels)] == ["sms"]
        await self.delivered(delivery, primary, message_id)  # before it is tried again

        assert await delivery.fall_back() == 1
        message = await delivery.store.get(message_id)
        assert message is not None
        assert (message.status, message.fell_back_to) == (MessageStatus.DELIVERED, None)
        assert [row["channel"] for row in await pool.fetch(channels)] == ["sms"]
        assert await pool.fetchval("SELECT count(*) FROM fallbacks") == 0

    async def test_a_fallback_decided_apart_by_an_earlier_version_is_linked_when_tried_again(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        message_id = await delivery.send_sms(await delivery.customer(), fallback=self.TEN_MINUTES)
        await delivery.run_round()
        delivery.clock.advance(timedelta(minutes=11))
        async with delivery.uows() as uow:  # an earlier version's worker: lease out at once
            (due,) = await uow.outbox.claim_fallbacks(delivery.clock.now(), 1, 0.0)
        decided = await delivery.request(  # decided in a commit of its own; then it died
            due.customer_id,
            due.plan_request,
            idempotency_key=f"fallback:{message_id}",
            origin="fallback",
            delivery=due.plan_delivery,
        )
        await self.delivered(delivery, primary, message_id)

        assert await delivery.fall_back() == 1
        message = await delivery.store.get(message_id)
        assert message is not None
        assert (message.status, message.fell_back_to) == (
            MessageStatus.DELIVERED,
            decided.message_id,
        )
        assert len(await delivery.store.decisions_of(decided.message_id)) == 1  # not again
        assert await pool.fetchval("SELECT count(*) FROM fallbacks") == 0


class TestCosts:
    async def test_the_cost_report_totals_equal_the_sum_of_message_costs(
        self, pool: asyncpg.Pool, primary: FakeTwilio, secondary: FakeTwilio
    ) -> None:
        priced = InMemoryProviders(twilio("twilio-main", primary))
        delivery = Delivery(pool, priced)
        customer_id = await delivery.customer()
        for _ in range(3):
            await delivery.send_sms(customer_id)
        await delivery.run_round()

        now = datetime.now(UTC)
        lines = await delivery.store.costs(now - timedelta(hours=1), now, ["channel", "provider"])
        assert [(line.group, line.messages, line.cost) for line in lines] == [
            ({"channel": "sms", "provider": "twilio-main"}, 3, Decimal("0.02370"))
        ]

    async def test_a_cost_report_limited_to_teams_counts_only_their_messages(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        customer_id = await delivery.customer()
        for team in ("billing", "growth", "growth"):
            await delivery.send_sms(customer_id, team=team)
        await delivery.run_round()

        now = datetime.now(UTC)
        since = now - timedelta(hours=1)
        growth = await delivery.store.costs(since, now, ["team"], teams=frozenset({"growth"}))
        assert [(line.group, line.messages, line.cost) for line in growth] == [
            ({"team": "growth"}, 2, Decimal("0.01580"))
        ]
        assert await delivery.store.costs(since, now, ["team"], teams=frozenset()) == []
        everyone = await delivery.store.costs(since, now, ["team"])
        assert [line.group["team"] for line in everyone] == ["billing", "growth"]


class TestAFallbackWithdrawsTheFirstMessage:
    TEN_MINUTES = Fallback((Channel.WHATSAPP,), 600)

    async def test_a_message_waiting_for_its_retry_is_superseded_and_never_sent(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        primary.fail_next(1, status=503)
        message_id = await delivery.send_sms(await delivery.customer(), fallback=self.TEN_MINUTES)
        await delivery.run_round()
        delivery.clock.advance(timedelta(minutes=11))
        assert await delivery.fall_back() == 1

        first = await delivery.store.get(message_id)
        assert first is not None
        assert first.status is MessageStatus.SUPERSEDED
        assert str(first.fell_back_to) in (first.statuses[-1].reason or "")
        assert await pool.fetchval(
            "SELECT status FROM messages WHERE message_id = $1", message_id
        ) == ("superseded")
        assert [row["message_id"] for row in await delivery.outbox()] == [first.fell_back_to]
        await pool.execute("UPDATE outbox SET due_at = now()")  # past any backoff
        assert await delivery.run_round() == 0
        assert primary.received == []

    async def test_a_message_a_dispatcher_holds_is_withdrawn_by_it_if_no_provider_takes_it(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        message_id = await delivery.send_sms(await delivery.customer(), fallback=self.TEN_MINUTES)
        delivery.clock.advance(timedelta(minutes=11))
        (held,) = await delivery.dispatch.claim(Channel.SMS, 10)
        assert await delivery.fall_back() == 1
        first = await delivery.store.get(message_id)
        assert first is not None
        assert (first.status, first.replaced) == (MessageStatus.QUEUED, True)

        primary.fail_next(1, status=503)
        await delivery.dispatch.settle([(held.message, await delivery.dispatch.send(held))])
        first = await delivery.store.get(message_id)
        assert first is not None
        assert first.status is MessageStatus.SUPERSEDED
        assert message_id not in [row["message_id"] for row in await delivery.outbox()]

    async def test_racing_a_dispatcher_a_fallback_never_lets_a_withdrawn_message_go(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        customer_id = await delivery.customer()
        first_ids = [
            await delivery.send_sms(customer_id, fallback=self.TEN_MINUTES) for _ in range(12)
        ]
        delivery.clock.advance(timedelta(minutes=11))

        async def dispatch() -> None:
            for _ in range(12):  # one at a time, so the fallbacks overtake some
                claimed = await delivery.dispatch.claim(Channel.SMS, 1)
                rounds = [(c.message, await delivery.dispatch.send(c)) for c in claimed]
                await delivery.dispatch.settle(rounds)
                await asyncio.sleep(0.05)

        async def fall_back() -> None:
            while await delivery.fall_back(limit=3):
                pass

        await asyncio.gather(dispatch(), fall_back())
        await delivery.run_round()  # whatever the race left behind

        firsts = [await delivery.store.get(m) for m in first_ids]
        statuses = [m.status for m in firsts if m is not None]
        assert set(statuses) <= {MessageStatus.QUEUED, MessageStatus.SUPERSEDED}
        accepted = [m for m in firsts if m is not None and m.provider_message_id is not None]
        superseded = [m for m in firsts if m is not None and m.status is MessageStatus.SUPERSEDED]
        assert len(accepted) + len(superseded) == len(first_ids)  # each ends one way, not both
        assert all(not m.attempts for m in superseded)
        assert len(primary.received) == len(accepted)

    async def test_a_message_given_up_leaves_the_outbox_with_its_fallback(
        self, pool: asyncpg.Pool, primary: FakeTwilio
    ) -> None:
        delivery = Delivery(pool, InMemoryProviders(twilio("twilio-main", primary)))
        primary.fail_next(1, status=503)
        message_id = await delivery.send_sms(await delivery.customer(), fallback=self.TEN_MINUTES)
        await delivery.run_round()
        give_up = GiveUpMessage(delivery.uows, delivery.clock, DefaultRuleSets(), RandomIds())
        assert await give_up(message_id, "the journey went on to email")
        given_up = await delivery.store.get(message_id)
        assert given_up is not None
        assert given_up.status is MessageStatus.SUPERSEDED
        assert await delivery.outbox() == []
        assert await pool.fetchval("SELECT count(*) FROM fallbacks") == 0
        assert primary.received == []
