"""Messages that must never leave: replaced by their channel fallback, or past their expiry,
before any provider took them. And what Chorus's clock says about what providers report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from application.delivery.give_up import GiveUpMessage
from application.messages.compose import MessageContent
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.message.aggregate import Message, MessageStatus
from domain.message.content import Content
from domain.policy.decision import Outcome, SendRequest
from domain.policy.vocabulary import Channel, Purpose
from ports.delivery import Fallback
from tests.unit.application.test_delivery import RECEIPT, RECEIPT_CONTENT, Delivery
from tests.unit.in_memory_chorus import claim

if TYPE_CHECKING:
    from uuid import UUID


async def fallback_asked(delivery: Delivery) -> tuple[UUID, UUID]:
    """Ana's receipt by email, on SMS if not delivered within a minute; her id, the email's."""
    chorus = delivery.chorus
    ana = await chorus.upsert(
        (claim("email", "ana@example.org"), claim("phone", "+351912345678")), {}, {}
    )
    content = MessageContent(
        inline=Content(subject="Your order", body="It ships today."),
        fallback=Fallback((Channel.SMS,), after_seconds=60),
    )
    decided = await chorus.request_message(ana.customer_id, RECEIPT, content=content)
    return ana.customer_id, decided.message_id


async def message(delivery: Delivery, message_id: UUID) -> Message:
    found = await delivery.chorus.delivery.get(message_id)
    assert found is not None
    return found


def providers_down(delivery: Delivery, rounds: int = 1) -> None:
    for _ in range(rounds):
        delivery.first.fail_next("503")
        delivery.second.fail_next("503")


class TestAFallbackWithdrawsTheFirstMessage:
    async def test_a_message_waiting_for_a_retry_is_superseded_and_never_sent(self) -> None:
        delivery = Delivery()
        _, email_id = await fallback_asked(delivery)
        providers_down(delivery)
        (retried,) = await delivery.round()
        assert retried.outcome == "retry"
        delivery.chorus.clock.advance(timedelta(seconds=60))
        assert await delivery.chorus.fall_back_due() == 1
        email = await message(delivery, email_id)
        assert email.status is MessageStatus.SUPERSEDED
        assert email.fell_back_to is not None
        last = email.statuses[-1]
        assert (last.status, last.source) == (MessageStatus.SUPERSEDED, "fallback")
        assert last.reason is not None
        assert str(email.fell_back_to) in last.reason
        delivery.chorus.clock.advance(timedelta(minutes=5))
        assert await delivery.round() == []  # out of the outbox: no provider ever sees it
        assert delivery.first.sent == delivery.second.sent == []

    async def test_a_message_a_dispatcher_holds_is_withdrawn_when_its_round_fails(self) -> None:
        delivery = Delivery()
        _, email_id = await fallback_asked(delivery)
        delivery.chorus.clock.advance(timedelta(seconds=60))
        (held,) = await delivery.dispatch.claim(Channel.EMAIL, 10)
        assert await delivery.chorus.fall_back_due() == 1
        assert (await message(delivery, email_id)).status is MessageStatus.QUEUED  # in flight
        providers_down(delivery)
        ended = await delivery.dispatch.send(held)
        await delivery.dispatch.settle([(held.message, ended)])
        email = await message(delivery, email_id)
        assert email.status is MessageStatus.SUPERSEDED
        assert len(email.attempts) == 2  # the round's calls are kept
        delivery.chorus.clock.advance(timedelta(minutes=5))
        assert await delivery.round() == []

    async def test_a_message_a_dispatcher_holds_goes_if_a_provider_takes_it(self) -> None:
        delivery = Delivery()
        _, email_id = await fallback_asked(delivery)
        delivery.chorus.clock.advance(timedelta(seconds=60))
        (held,) = await delivery.dispatch.claim(Channel.EMAIL, 10)
        assert await delivery.chorus.fall_back_due() == 1
        ended = await delivery.dispatch.send(held)
        await delivery.dispatch.settle([(held.message, ended)])
        email = await message(delivery, email_id)
        assert (email.status, email.provider) == (MessageStatus.SENT, "mail-a")
        assert email.fell_back_to is not None  # both may reach the customer: said in the docs
        assert len(await delivery.chorus.lease(Channel.SMS)) == 1

    async def test_a_message_claimed_after_its_fallback_went_is_withdrawn_not_sent(
        self,
    ) -> None:
        delivery = Delivery()
        _, email_id = await fallback_asked(delivery)
        delivery.chorus.clock.advance(timedelta(seconds=60))
        async with delivery.chorus.uows() as uow:  # a fallback that found it under lease
            messages = uow.repository(Message)
            email = (await messages.get([email_id]))[email_id]
            email.fall_back(email_id, "not delivered", delivery.chorus.clock.now(), replaced=True)
            messages.add(email)
        (withdrawn,) = await delivery.round()
        assert withdrawn.outcome == "withdrawn"
        assert (await message(delivery, email_id)).status is MessageStatus.SUPERSEDED
        assert delivery.first.sent == []

    async def test_a_suppressed_fallback_leaves_the_first_message_its_chance(self) -> None:
        delivery = Delivery()
        ana, email_id = await fallback_asked(delivery)
        await delivery.chorus.change_suppression(ana, Channel.SMS, "asked", active=True)
        providers_down(delivery)
        await delivery.round()
        delivery.chorus.clock.advance(timedelta(seconds=60))
        assert await delivery.chorus.fall_back_due() == 1
        email = await message(delivery, email_id)
        assert (email.status, email.replaced) == (MessageStatus.QUEUED, False)
        assert email.fell_back_to is not None
        (sent,) = await delivery.round()
        assert sent.outcome == "accepted"


class TestAnExpiringMessage:
    async def queue(self, delivery: Delivery, expires_in: timedelta) -> UUID:
        chorus = delivery.chorus
        ana = (await chorus.upsert((claim("email", "ana@example.org"),), {}, {})).customer_id
        request = SendRequest(
            "care",
            Purpose.TRANSACTIONAL,
            (Channel.EMAIL,),
            expires_at=chorus.clock.now() + expires_in,
        )
        decided = await chorus.request_message(ana, request, content=RECEIPT_CONTENT)
        return decided.message_id

    async def test_carries_the_requests_expiry(self) -> None:
        delivery = Delivery()
        message_id = await self.queue(delivery, timedelta(minutes=5))
        queued = await message(delivery, message_id)
        assert queued.expires_at == delivery.chorus.clock.now() + timedelta(minutes=5)

    async def test_claimed_after_its_expiry_it_expires_and_no_provider_sees_it(self) -> None:
        delivery = Delivery()
        message_id = await self.queue(delivery, timedelta(seconds=30))
        delivery.chorus.clock.advance(timedelta(seconds=30))
        (ended,) = await delivery.round()
        assert ended.outcome == "withdrawn"
        expired = await message(delivery, message_id)
        assert expired.status is MessageStatus.EXPIRED
        assert expired.statuses[-1].reason is not None
        assert "expires at" in expired.statuses[-1].reason
        assert delivery.first.sent == []
        assert await delivery.round() == []

    async def test_it_expires_at_once_when_its_next_try_would_come_too_late(self) -> None:
        delivery = Delivery()
        message_id = await self.queue(delivery, timedelta(seconds=30))  # retries wait 60 s
        providers_down(delivery)
        await delivery.round()
        assert (await message(delivery, message_id)).status is MessageStatus.EXPIRED
        delivery.chorus.clock.advance(timedelta(minutes=2))
        assert await delivery.round() == []

    async def test_before_its_expiry_it_goes_as_usual(self) -> None:
        delivery = Delivery()
        message_id = await self.queue(delivery, timedelta(minutes=5))
        (sent,) = await delivery.round()
        assert sent.outcome == "accepted"
        assert (await message(delivery, message_id)).status is MessageStatus.SENT


class TestWhatProvidersReportIsOnChorussClock:
    async def test_a_status_is_recorded_when_chorus_learns_it_with_the_providers_time_kept(
        self,
    ) -> None:
        delivery = Delivery()
        _, message_id = await delivery.queue()
        await delivery.round()
        delivery.chorus.clock.advance(timedelta(minutes=3))
        await delivery.webhook(
            delivery.first,
            statuses=[{"id": "mail-a-1", "status": "delivered", "at": "2020-01-01T00:00:00+00:00"}],
        )
        delivered = (await message(delivery, message_id)).statuses[-1]
        assert delivered.at == delivery.chorus.clock.now()
        assert delivered.reported_at is not None
        assert delivered.reported_at.year == 2020

    async def test_an_inbound_message_happens_when_chorus_receives_it(self) -> None:
        delivery = Delivery()
        chorus = delivery.chorus
        ana = (await chorus.upsert((claim("email", "ana@example.org"),), {}, {})).customer_id
        handled = await delivery.webhook(
            delivery.first,
            inbound=[
                {"id": "in-1", "from": "ana@example.org", "text": "thanks", "at": "2020-01-01"}
            ],
        )
        assert handled.inbound == 1
        (recorded,) = [e for e in chorus.storage.events.log if e.topic.endswith("Signal.Recorded")]
        assert recorded.subject_id == ana
        assert datetime.fromisoformat(recorded.data["occurred_at"]) == chorus.clock.now()
        assert recorded.data["properties"]["sent_at"].startswith("2020-01-01")


class TestGiveUpMessage:
    """A journey that waited for a send's delivery moves on to another send instead."""

    async def test_a_message_still_in_the_outbox_is_withdrawn_with_the_reason(self) -> None:
        delivery = Delivery()
        _, email_id = await fallback_asked(delivery)
        providers_down(delivery)
        await delivery.round()
        give_up = GiveUpMessage(
            delivery.chorus.uows,
            delivery.chorus.clock,
            delivery.chorus.rule_sets,
            delivery.chorus.ids,
        )
        assert await give_up(email_id, "not delivered within 10m: the journey went on to sms")
        email = await message(delivery, email_id)
        assert email.status is MessageStatus.SUPERSEDED
        assert email.statuses[-1].reason == (
            "withdrawn: not delivered within 10m: the journey went on to sms,"
            " before a provider took it"
        )
        delivery.chorus.clock.advance(timedelta(minutes=5))
        assert await delivery.round() == []
        assert await delivery.chorus.fall_back_due() == 0  # its fallback went with it
        assert delivery.first.sent == delivery.second.sent == []
        assert await give_up(email_id, "again")  # already withdrawn: still true

    async def test_a_message_a_dispatcher_holds_is_withdrawn_when_its_round_fails(self) -> None:
        delivery = Delivery()
        _, message_id = await delivery.queue()
        (held,) = await delivery.dispatch.claim(Channel.EMAIL, 10)
        give_up = GiveUpMessage(
            delivery.chorus.uows,
            delivery.chorus.clock,
            delivery.chorus.rule_sets,
            delivery.chorus.ids,
        )
        assert await give_up(message_id, "the journey went on")
        assert (await message(delivery, message_id)).status is MessageStatus.QUEUED
        providers_down(delivery)
        await delivery.dispatch.settle([(held.message, await delivery.dispatch.send(held))])
        assert (await message(delivery, message_id)).status is MessageStatus.SUPERSEDED

    async def test_a_message_a_provider_took_cannot_be_taken_back(self) -> None:
        delivery = Delivery()
        _, message_id = await delivery.queue()
        await delivery.round()
        give_up = GiveUpMessage(
            delivery.chorus.uows,
            delivery.chorus.clock,
            delivery.chorus.rule_sets,
            delivery.chorus.ids,
        )
        assert not await give_up(message_id, "the journey went on")
        sent = await message(delivery, message_id)
        assert (sent.status, sent.replaced) == (MessageStatus.SENT, False)

    async def test_a_provider_that_took_it_after_all_is_believed(self) -> None:
        """A dispatcher whose lease ran out sends the message it holds after it was withdrawn:
        what the provider did is what the customer got."""
        delivery = Delivery()
        _, message_id = await delivery.queue()
        (stale,) = await delivery.dispatch.claim(Channel.EMAIL, 10)
        delivery.chorus.clock.advance(timedelta(seconds=31))  # its lease ran out
        give_up = GiveUpMessage(
            delivery.chorus.uows,
            delivery.chorus.clock,
            delivery.chorus.rule_sets,
            delivery.chorus.ids,
        )
        assert await give_up(message_id, "the journey went on")
        assert (await message(delivery, message_id)).status is MessageStatus.SUPERSEDED
        await delivery.dispatch.settle([(stale.message, await delivery.dispatch.send(stale))])
        taken = await message(delivery, message_id)
        assert (taken.status, taken.provider) == (MessageStatus.SENT, "mail-a")


class TestGiveUpADeferredMessage:
    """A send the rules deferred is not a message yet: giving it up ends its deferral."""

    NIGHT_SMS = SendRequest("care", Purpose.SERVICE, (Channel.SMS,))

    async def test_it_is_suppressed_as_withdrawn_and_never_decided_again(self) -> None:
        delivery = Delivery()
        chorus = delivery.chorus
        chorus.clock.set(datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
        ana = await chorus.upsert((claim("phone", "+351912345678"),), {"time_zone": "UTC"}, {})
        opt_in = ConsentRecord(Channel.SMS, Purpose.SERVICE, True, "signup form")
        await chorus.change_consent(ana.customer_id, [opt_in])
        content = MessageContent(inline=Content(body="Your parcel is on its way."))
        deferred = await chorus.request_message(ana.customer_id, self.NIGHT_SMS, content=content)
        assert deferred.decision.outcome is Outcome.DEFER
        give_up = GiveUpMessage(chorus.uows, chorus.clock, chorus.rule_sets, chorus.ids)
        assert await give_up(deferred.message_id, "not delivered within 10m: went on to email")
        (withdrawn,) = [
            r.event
            for r in chorus.storage.events.stream(ana.customer_id)
            if isinstance(r.event, Customer.MessageSuppressed)
        ]
        assert withdrawn.message_id == deferred.message_id
        assert [(f.rule_id, f.reason) for f in withdrawn.fired] == [
            ("withdrawn", "not delivered within 10m: went on to email")
        ]
        chorus.clock.advance(timedelta(hours=10))
        assert await chorus.redecide_due() == 0
        assert await chorus.delivery.get(deferred.message_id) is None
        assert not await give_up(deferred.message_id, "again")
