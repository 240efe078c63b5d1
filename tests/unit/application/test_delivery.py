"""Dispatching queued messages through providers in failover order, and the providers'
webhooks: statuses once each, bounces suppressing, inbound messages becoming signals."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest
import tenacity

from adapters.inmemory.providers import InMemoryProviders, RecordingProvider
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from application.delivery.dispatch import DispatchMessages
from application.delivery.fall_back import FallBackDue
from application.delivery.webhooks import ApplyParkedStatuses, HandleWebhook
from application.messages.compose import MessageContent
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityNormalizer
from domain.message.aggregate import Message, MessageStatus
from domain.message.content import Content
from domain.policy.decision import SendRequest
from domain.policy.vocabulary import Channel, Purpose
from ports.delivery import Fallback
from ports.providers import InvalidSignature
from tests.unit.in_memory_chorus import InMemoryChorus, claim

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from typing import Any
    from uuid import UUID

    from adapters.inmemory.unit_of_work import InMemoryUnitOfWork
    from application.delivery.dispatch import Round

RECEIPT = SendRequest("care", Purpose.TRANSACTIONAL, (Channel.EMAIL,))
RECEIPT_CONTENT = MessageContent(inline=Content(subject="Your order", body="It ships today."))


class Delivery:
    """A chorus with two email providers, `first` then `second`, and one queued message."""

    def __init__(self) -> None:
        self.chorus = InMemoryChorus()
        self.first = RecordingProvider("mail-a", Channel.EMAIL)
        self.second = RecordingProvider("mail-b", Channel.EMAIL)
        self.providers = InMemoryProviders(self.first, self.second)
        self.dispatch = DispatchMessages(
            self.chorus.uows,
            self.providers,
            self.chorus.clock,
            max_rounds=2,
            backoff=tenacity.wait_fixed(60),
        )
        self.webhooks = HandleWebhook(
            self.providers,
            self.chorus.uows,
            self.chorus.delivery,
            self.chorus.change_suppression,
            self.chorus.ingest,
            IdentityNormalizer(),
            self.chorus.clock,
        )

    async def queue(self) -> tuple[UUID, UUID]:
        """Ana's order receipt, queued; her id and the message's."""
        chorus = self.chorus
        ana = (await chorus.upsert((claim("email", "ana@example.org"),), {}, {})).customer_id
        decided = await chorus.request_message(ana, RECEIPT, content=RECEIPT_CONTENT)
        return ana, decided.message_id

    async def round(self) -> list[Round]:
        claimed = await self.dispatch.claim(Channel.EMAIL, 10)
        rounds = [await self.dispatch.send(item) for item in claimed]
        await self.dispatch.settle([(c.message, r) for c, r in zip(claimed, rounds, strict=True)])
        return rounds

    async def webhook(self, provider: RecordingProvider, **document: Any) -> Any:
        body = msgspec.json.encode(document)
        return await self.webhooks(provider.name, {"X-Signature": "secret"}, body, "/hook")


class TestDispatchMessages:
    async def test_a_queued_message_goes_out_through_the_first_provider_once(self) -> None:
        delivery = Delivery()
        _, message_id = await delivery.queue()
        (sent,) = await delivery.round()
        assert sent.outcome == "accepted"
        assert [m.message_id for m in delivery.first.sent] == [message_id]
        assert delivery.first.sent[0].idempotency_key == str(message_id)
        message = await delivery.chorus.delivery.get(message_id)
        assert message is not None
        assert (message.provider, message.status) == ("mail-a", MessageStatus.SENT)
        assert await delivery.round() == []  # out of the outbox

    async def test_a_provider_that_fails_hands_the_message_to_the_next(self) -> None:
        delivery = Delivery()
        _, message_id = await delivery.queue()
        delivery.first.fail_next("timeout")
        (sent,) = await delivery.round()
        assert [(a.provider, a.accepted) for a in sent.attempts] == [
            ("mail-a", False),
            ("mail-b", True),
        ]
        message = await delivery.chorus.delivery.get(message_id)
        assert message is not None
        assert message.provider == "mail-b"

    async def test_when_every_provider_fails_the_message_is_tried_again_later(self) -> None:
        delivery = Delivery()
        _, message_id = await delivery.queue()
        delivery.first.fail_next()
        delivery.second.fail_next()
        (retried,) = await delivery.round()
        assert (retried.message_id, retried.outcome, retried.retry_in) == (message_id, "retry", 60)
        assert await delivery.round() == []  # not due yet
        delivery.chorus.clock.advance(timedelta(seconds=61))
        (sent,) = await delivery.round()
        assert sent.outcome == "accepted"

    async def test_a_refusal_is_recorded_without_the_address_it_echoes(self) -> None:
        delivery = Delivery()
        await delivery.queue()
        delivery.first.fail_next("smtp RCPT refused: 550 5.1.1 <ana@example.org>: no such user")
        (sent,) = await delivery.round()
        assert sent.attempts[0].answer == "smtp RCPT refused: 550 5.1.1 <…>: no such user"

    async def test_retries_run_out_and_the_failure_is_recorded(self) -> None:
        delivery = Delivery()
        _, message_id = await delivery.queue()
        for provider in (delivery.first, delivery.second) * 2:
            provider.fail_next()
        await delivery.round()
        delivery.chorus.clock.advance(timedelta(seconds=61))
        (failed,) = await delivery.round()
        assert failed.outcome == "failed"
        message = await delivery.chorus.delivery.get(message_id)
        assert message is not None
        assert message.failure is not None
        assert message.failure.startswith("retries exhausted")


class TestHandleWebhook:
    async def test_a_status_is_recorded_once_however_often_the_provider_repeats_it(
        self,
    ) -> None:
        delivery = Delivery()
        _, message_id = await delivery.queue()
        await delivery.round()
        delivered = {"statuses": [{"id": "mail-a-1", "status": "delivered"}]}
        first = await delivery.webhook(delivery.first, **delivered)
        again = await delivery.webhook(delivery.first, **delivered)
        assert (first.statuses, again.statuses, again.duplicates) == (1, 0, 1)
        message = await delivery.chorus.delivery.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.DELIVERED

    async def test_a_hard_bounce_suppresses_the_channel_for_the_customer(self) -> None:
        delivery = Delivery()
        ana, _ = await delivery.queue()
        await delivery.round()
        await delivery.webhook(delivery.first, statuses=[{"id": "mail-a-1", "status": "bounced"}])
        customer = await delivery.chorus.customer(ana)
        assert customer.suppressed == {Channel.EMAIL: "hard bounce reported by mail-a"}

    async def test_a_reason_is_kept_without_the_addresses_and_numbers_it_names(self) -> None:
        delivery = Delivery()
        ana, message_id = await delivery.queue()
        await delivery.round()
        said = "550 5.1.1 <ana@example.org>: Recipient address rejected (+351912345678)"
        bounced = {"id": "mail-a-1", "status": "bounced", "reason": said}
        await delivery.webhook(delivery.first, statuses=[bounced])
        message = await delivery.chorus.delivery.get(message_id)
        assert message is not None
        kept = "550 5.1.1 <…>: Recipient address rejected (…)"
        assert message.statuses[-1].reason == kept
        customer = await delivery.chorus.customer(ana)
        assert customer.suppressed == {Channel.EMAIL: f"hard bounce reported by mail-a: {kept}"}

    async def test_a_parked_status_keeps_no_address_either(self) -> None:
        delivery = Delivery()
        _, message_id = await delivery.queue()
        said = "hard bounce: ana@example.org does not exist"
        early = await delivery.webhook(
            delivery.first, statuses=[{"id": "mail-a-1", "status": "bounced", "reason": said}]
        )
        assert early.parked == 1
        (parked,) = delivery.chorus.delivery.storage.parked
        assert (parked.reason, parked.raw) == ("hard bounce: … does not exist", {})
        await delivery.round()
        assert await ApplyParkedStatuses(delivery.chorus.delivery, delivery.webhooks)() == 1
        message = await delivery.chorus.delivery.get(message_id)
        assert message is not None
        assert message.statuses[-1].reason == "hard bounce: … does not exist"

    async def test_a_status_ahead_of_its_message_is_parked_and_applied_once_it_is_known(
        self,
    ) -> None:
        delivery = Delivery()
        _, message_id = await delivery.queue()
        early = await delivery.webhook(
            delivery.first, statuses=[{"id": "mail-a-1", "status": "delivered"}]
        )
        assert early.parked == 1
        apply_parked = ApplyParkedStatuses(delivery.chorus.delivery, delivery.webhooks)
        assert await apply_parked() == 0
        await delivery.round()
        assert await apply_parked() == 1
        assert await apply_parked() == 0
        message = await delivery.chorus.delivery.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.DELIVERED

    async def test_an_inbound_stop_opts_the_sender_out(self) -> None:
        delivery = Delivery()
        sms = RecordingProvider("sms-a", Channel.SMS)
        delivery.providers.providers.append(sms)
        chorus = delivery.chorus
        ana = (await chorus.upsert((claim("phone", "+351912345678"),), {}, {})).customer_id
        await chorus.change_consent(
            ana, [ConsentRecord(Channel.SMS, Purpose.MARKETING, True, "form")]
        )
        handled = await delivery.webhook(
            sms, inbound=[{"id": "in-1", "from": "+351912345678", "text": "STOP"}]
        )
        assert handled.inbound == 1
        assert Channel.SMS in (await chorus.customer(ana)).opted_out

    async def test_a_webhook_without_the_providers_signature_records_nothing(self) -> None:
        delivery = Delivery()
        await delivery.queue()
        await delivery.round()
        with pytest.raises(InvalidSignature):
            await delivery.webhooks("mail-a", {}, b'{"statuses": []}', "/hook")


class CrashBeforeFellBack:
    """Units of work that crash, once, when one is about to commit a `FellBack`: the process
    dies there, and what that unit held is never committed."""

    def __init__(self, uows: InMemoryUnitsOfWork) -> None:
        self.uows = uows
        self.crashed = False

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[InMemoryUnitOfWork]:
        async with self.uows() as uow:
            yield uow
            pending = [e for a in uow.added.values() for e in a.pending_events]
            if not self.crashed and any(isinstance(e, Message.FellBack) for e in pending):
                self.crashed = True
                raise RuntimeError("the process died before its commit")


class DeliveredMeanwhile:
    """Units of work in which, once, as one is about to commit a `FellBack`, another process
    records the first message delivered (its provider's webhook) and commits first."""

    def __init__(self, chorus: InMemoryChorus, message_id: UUID) -> None:
        self.uows = chorus.uows
        self.other = InMemoryUnitsOfWork(chorus.storage)  # another process: its own locks
        self.message_id = message_id
        self.clock = chorus.clock
        self.done = False

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[InMemoryUnitOfWork]:
        async with self.uows() as uow:
            yield uow
            pending = [e for a in uow.added.values() for e in a.pending_events]
            if not self.done and any(isinstance(e, Message.FellBack) for e in pending):
                self.done = True
                async with self.other() as theirs:
                    messages = theirs.repository(Message)
                    found = (await messages.get([self.message_id]))[self.message_id]
                    found.report(MessageStatus.DELIVERED, "mail-a", self.clock.now())
                    messages.add(found)


def fallbacks_decided(chorus: InMemoryChorus) -> list[UUID]:
    """The messages decided as fallbacks (origin `fallback`), in log order."""
    decided = chorus.storage.events.read()
    return [
        e.event.message_id
        for e in decided
        if isinstance(e.event, Customer.MessageDecided) and e.event.origin == "fallback"
    ]


class TestFallBackDue:
    async def fallback_asked(self, delivery: Delivery) -> UUID:
        """Ana's receipt by email, on SMS if not delivered within a minute."""
        chorus = delivery.chorus
        ana = await chorus.upsert(
            (claim("email", "ana@example.org"), claim("phone", "+351912345678")), {}, {}
        )
        content = MessageContent(
            inline=Content(subject="Your order", body="It ships today."),
            fallback=Fallback((Channel.SMS,), after_seconds=60),
        )
        decided = await chorus.request_message(ana.customer_id, RECEIPT, content=content)
        return decided.message_id

    async def test_a_message_not_delivered_in_time_is_requested_on_the_next_channel(
        self,
    ) -> None:
        delivery = Delivery()
        email_id = await self.fallback_asked(delivery)
        chorus = delivery.chorus
        assert await chorus.fall_back_due() == 0
        chorus.clock.advance(timedelta(seconds=60))
        assert await chorus.fall_back_due() == 1
        assert await chorus.fall_back_due() == 0
        email = await chorus.delivery.get(email_id)
        assert email is not None
        assert email.fell_back_to is not None
        (sms,) = await chorus.lease(Channel.SMS)
        assert (sms.id, sms.recipient) == (email.fell_back_to, "+351912345678")

    async def test_a_message_delivered_in_time_falls_back_to_nothing(self) -> None:
        delivery = Delivery()
        email_id = await self.fallback_asked(delivery)
        await delivery.round()
        await delivery.webhook(delivery.first, statuses=[{"id": "mail-a-1", "status": "delivered"}])
        delivery.chorus.clock.advance(timedelta(minutes=5))
        assert await delivery.chorus.fall_back_due() == 1
        email = await delivery.chorus.delivery.get(email_id)
        assert email is not None
        assert email.fell_back_to is None
        assert await delivery.chorus.lease(Channel.SMS) == []

    async def test_a_failed_message_falls_back_at_once(self) -> None:
        delivery = Delivery()
        await self.fallback_asked(delivery)
        delivery.first.fail_next(retryable=False)
        delivery.second.fail_next(retryable=False)
        (failed,) = await delivery.round()
        assert failed.outcome == "failed"
        assert await delivery.chorus.fall_back_due() == 1
        assert len(await delivery.chorus.lease(Channel.SMS)) == 1

    async def test_a_crash_before_the_fallback_is_linked_leaves_no_fallback_unlinked(
        self,
    ) -> None:
        """The fallback's decision and its `FellBack` commit together: a crash between them
        cannot leave a fallback decided (and perhaps sent) that nothing links to its first
        message, even if that message is delivered before the fallback is tried again."""
        delivery = Delivery()
        email_id = await self.fallback_asked(delivery)
        chorus = delivery.chorus
        crashing = FallBackDue(
            CrashBeforeFellBack(chorus.uows), chorus.request_message, chorus.clock
        )
        chorus.clock.advance(timedelta(seconds=60))
        with pytest.raises(RuntimeError):
            await crashing()
        assert fallbacks_decided(chorus) == []  # nothing of it was committed
        await delivery.round()
        await delivery.webhook(delivery.first, statuses=[{"id": "mail-a-1", "status": "delivered"}])
        chorus.clock.advance(timedelta(seconds=31))  # the crashed worker's lease runs out
        assert await chorus.fall_back_due() == 1
        email = await chorus.delivery.get(email_id)
        assert email is not None
        assert (email.status, email.fell_back_to) == (MessageStatus.DELIVERED, None)
        assert fallbacks_decided(chorus) == []
        assert await chorus.lease(Channel.SMS) == []
        assert await chorus.fall_back_due() == 0

    async def test_a_message_delivered_while_its_fallback_is_decided_falls_back_to_nothing(
        self,
    ) -> None:
        """The fallback is decided on the first message as read in the same commit: a delivery
        recorded before that commit makes it conflict, and, tried again, it finds the first
        message delivered and decides no fallback at all."""
        delivery = Delivery()
        email_id = await self.fallback_asked(delivery)
        await delivery.round()
        chorus = delivery.chorus
        chorus.clock.advance(timedelta(seconds=60))
        racing = DeliveredMeanwhile(chorus, email_id)
        assert await FallBackDue(racing, chorus.request_message, chorus.clock)() == 1
        assert racing.done
        email = await chorus.delivery.get(email_id)
        assert email is not None
        assert (email.status, email.fell_back_to) == (MessageStatus.DELIVERED, None)
        assert fallbacks_decided(chorus) == []
        assert await chorus.lease(Channel.SMS) == []
        assert chorus.storage.fallbacks == {}

    async def test_a_fallback_decided_but_never_linked_is_linked_whatever_became_of_the_first(
        self,
    ) -> None:
        """A fallback decided without its `FellBack` (by a version that committed them apart,
        and crashed between) is linked when its row is tried again, though the first message
        was delivered meanwhile: the fallback may go out, and its campaign, the enrollment and
        the first message's story must know of it."""
        delivery = Delivery()
        email_id = await self.fallback_asked(delivery)
        chorus = delivery.chorus
        plan = chorus.storage.fallbacks[email_id].plan
        email = await chorus.delivery.get(email_id)
        assert email is not None
        chorus.clock.advance(timedelta(seconds=60))
        decided = await chorus.request_message(
            email.customer_id,
            plan.request,
            idempotency_key=f"fallback:{email_id}",
            origin="fallback",
            delivery=plan.delivery,
        )
        await delivery.round()
        await delivery.webhook(delivery.first, statuses=[{"id": "mail-a-1", "status": "delivered"}])
        assert await chorus.fall_back_due() == 1
        email = await chorus.delivery.get(email_id)
        assert email is not None
        assert (email.status, email.fell_back_to) == (MessageStatus.DELIVERED, decided.message_id)
        assert email.replaced is False  # a provider had it: it was not taken back
        assert fallbacks_decided(chorus) == [decided.message_id]  # decided once, not again
        (sms,) = await chorus.lease(Channel.SMS)
        assert sms.id == decided.message_id
        assert await chorus.fall_back_due() == 0
