"""Consent, send requests with caps and quiet hours, deferrals decided again when due, and
idempotency keys: the decisions the rules make on a customer's own stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from application.messages.compose import MessageContent
from application.messages.request_message import IdempotencyKeyReused
from domain.customer.contact import ConsentRecord
from domain.message.content import Content
from domain.policy.decision import Outcome, SendRequest
from domain.policy.rules import ChannelOverride, FrequencyCap, OnExceed
from domain.policy.tone import ChannelTone, Structure
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import NotFound
from tests.unit.in_memory_chorus import MONDAY_NOON, InMemoryChorus, claim

if TYPE_CHECKING:
    from uuid import UUID

    from application.messages.request_message import MessageDecided
    from domain.message.aggregate import Message

ANA = claim("email", "ana@example.org")
ANA_PHONE = claim("phone", "+351912345678")  # several time zones: the rules' default, UTC
MARKETING_EMAIL = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,))
MARKETING_SMS = SendRequest("growth", Purpose.MARKETING, (Channel.SMS,))
HELLO = MessageContent(inline=Content(subject="Hello {{ customer.first_name }}", body="Hi!"))
TEXT = MessageContent(inline=Content(body="Hi {{ customer.first_name }}"))
DAY = timedelta(days=1)


def opted_in(channel: Channel) -> ConsentRecord:
    return ConsentRecord(channel, Purpose.MARKETING, True, "signup form")


async def subscriber(chorus: InMemoryChorus, *channels: Channel) -> UUID:
    """Ana, with an email address and a phone, opted in to marketing on `channels`."""
    upserted = await chorus.upsert((ANA, ANA_PHONE), {"first_name": "Ana"}, {})
    await chorus.change_consent(upserted.customer_id, [opted_in(c) for c in channels])
    return upserted.customer_id


def outcome(decided: MessageDecided) -> Outcome:
    assert decided.decision is not None
    return decided.decision.outcome


class TestChangeConsent:
    async def test_a_change_already_in_force_changes_nothing(self) -> None:
        chorus = InMemoryChorus()
        ana = await subscriber(chorus, Channel.EMAIL)
        assert await chorus.change_consent(ana, [opted_in(Channel.EMAIL)]) == 0
        withdrawn = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, False, "preference centre")
        assert await chorus.change_consent(ana, [withdrawn, withdrawn]) == 1
        consent = (await chorus.customer(ana)).consents[(Channel.EMAIL, Purpose.MARKETING)]
        assert (consent.granted, consent.source) == (False, "preference centre")

    async def test_after_an_opt_out_a_marketing_send_is_suppressed(self) -> None:
        chorus = InMemoryChorus()
        ana = await subscriber(chorus, Channel.EMAIL)
        assert outcome(await chorus.request_message(ana, MARKETING_EMAIL)) is Outcome.SEND
        opt_out = ConsentRecord(Channel.EMAIL, None, False, "unsubscribe link")
        await chorus.change_consent(ana, [opt_out])
        decided = await chorus.request_message(ana, MARKETING_EMAIL, content=HELLO)
        assert outcome(decided) is Outcome.SUPPRESS
        assert chorus.storage.outbox == {}

    async def test_a_change_for_a_merged_customer_reaches_its_survivor(self) -> None:
        chorus = InMemoryChorus()
        older = await chorus.upsert((ANA,), {}, {})
        newer = await chorus.upsert((ANA_PHONE,), {}, {})
        await chorus.upsert((ANA, ANA_PHONE), {}, {})
        assert await chorus.change_consent(newer.customer_id, [opted_in(Channel.SMS)]) == 1
        survivor = await chorus.customer(older.customer_id)
        assert survivor.consents[(Channel.SMS, Purpose.MARKETING)].granted

    async def test_an_unknown_customer_is_not_found(self) -> None:
        chorus = InMemoryChorus()
        with pytest.raises(NotFound):
            await chorus.change_consent(chorus.ids.new_id(), [opted_in(Channel.EMAIL)])


class TestRequestMessage:
    async def test_an_allowed_message_with_content_is_rendered_and_queued(self) -> None:
        chorus = InMemoryChorus()
        ana = await subscriber(chorus, Channel.EMAIL)
        decided = await chorus.request_message(ana, MARKETING_EMAIL, content=HELLO)
        assert outcome(decided) is Outcome.SEND
        (message,) = await chorus.lease(Channel.EMAIL)
        assert (message.id, message.decision_id) == (decided.message_id, decided.decision_id)
        assert (message.recipient, message.content.subject) == ("ana@example.org", "Hello Ana")
        assert await chorus.delivery.decisions_of(decided.message_id) == [decided.decision_id]
        recorded = await chorus.customers.decision(decided.decision_id)
        assert recorded is not None
        assert (recorded.stream_id, recorded.type) == (ana, "MessageAllowed")

    async def test_a_decision_without_content_is_advice_and_queues_nothing(self) -> None:
        chorus = InMemoryChorus()
        ana = await subscriber(chorus, Channel.EMAIL)
        assert outcome(await chorus.request_message(ana, MARKETING_EMAIL)) is Outcome.SEND
        assert chorus.storage.outbox == {}

    async def test_the_message_over_a_frequency_cap_is_refused(self) -> None:
        chorus = InMemoryChorus()
        await chorus.publish(caps=(FrequencyCap("cap.daily", 2, DAY, on_exceed=OnExceed.SUPPRESS),))
        ana = await subscriber(chorus, Channel.EMAIL)
        decided = []
        for _ in range(3):
            decided.append(await chorus.request_message(ana, MARKETING_EMAIL, content=HELLO))
            chorus.clock.advance(timedelta(minutes=5))
        assert [outcome(d) for d in decided] == [Outcome.SEND, Outcome.SEND, Outcome.SUPPRESS]
        assert decided[2].decision is not None
        assert [r.rule_id for r in decided[2].decision.fired][-1] == "cap.daily"
        assert len(chorus.storage.outbox) == 2
        chorus.clock.advance(DAY)
        assert outcome(await chorus.request_message(ana, MARKETING_EMAIL)) is Outcome.SEND

    async def test_over_a_deferring_cap_the_message_waits_until_the_window_frees(self) -> None:
        chorus = InMemoryChorus()
        await chorus.publish(caps=(FrequencyCap("cap.daily", 1, DAY),))
        ana = await subscriber(chorus, Channel.EMAIL)
        await chorus.request_message(ana, MARKETING_EMAIL, content=HELLO)
        deferred = await chorus.request_message(ana, MARKETING_EMAIL, content=HELLO)
        assert deferred.decision is not None
        assert (deferred.decision.outcome, deferred.decision.defer_until) == (
            Outcome.DEFER,
            MONDAY_NOON + DAY,
        )
        assert await chorus.redecide_due() == 0
        chorus.clock.set(MONDAY_NOON + DAY)
        assert await chorus.redecide_due() == 1
        queued = await chorus.delivery.get(deferred.message_id)
        assert queued is not None
        assert queued.content.subject == "Hello Ana"  # rendered when it was requested
        assert len(await chorus.delivery.decisions_of(deferred.message_id)) == 2

    async def test_a_text_in_quiet_hours_is_deferred_then_sent_when_they_end(self) -> None:
        chorus = InMemoryChorus(at=datetime(2026, 11, 30, 23, tzinfo=UTC))
        ana = await subscriber(chorus, Channel.SMS)
        deferred = await chorus.request_message(ana, MARKETING_SMS, content=TEXT)
        morning = datetime(2026, 12, 1, 8, tzinfo=UTC)
        assert deferred.decision is not None
        assert (deferred.decision.outcome, deferred.decision.defer_until) == (
            Outcome.DEFER,
            morning,
        )
        assert chorus.storage.outbox == {}
        chorus.clock.set(morning - timedelta(minutes=1))
        assert await chorus.redecide_due() == 0
        chorus.clock.set(morning)
        assert await chorus.redecide_due() == 1
        assert await chorus.redecide_due() == 0  # decided for good: no longer deferred
        (message,) = await chorus.lease(Channel.SMS)
        assert (message.id, message.content.body) == (deferred.message_id, "Hi Ana")
        customer = await chorus.customer(ana)
        assert customer.decisions[deferred.message_id] == message.decision_id

    async def test_a_request_repeated_with_its_key_answers_the_first_decision(self) -> None:
        chorus = InMemoryChorus()
        ana = await subscriber(chorus, Channel.EMAIL)
        first = await chorus.request_message(
            ana, MARKETING_EMAIL, idempotency_key="k-1", content=HELLO
        )
        again = await chorus.request_message(
            ana, MARKETING_EMAIL, idempotency_key="k-1", content=HELLO
        )
        assert again.repeated
        assert (again.message_id, again.decision_id) == (first.message_id, first.decision_id)
        assert len(chorus.storage.outbox) == 1
        assert len((await chorus.customer(ana)).decisions) == 1

    async def test_a_key_reused_for_a_different_request_is_refused(self) -> None:
        chorus = InMemoryChorus()
        ana = await subscriber(chorus, Channel.EMAIL, Channel.SMS)
        await chorus.request_message(ana, MARKETING_EMAIL, idempotency_key="k-1", content=HELLO)
        with pytest.raises(IdempotencyKeyReused):
            await chorus.request_message(ana, MARKETING_SMS, idempotency_key="k-1", content=TEXT)
        assert len(chorus.storage.outbox) == 1

    async def test_a_request_for_a_merged_customer_is_decided_on_its_survivor(self) -> None:
        chorus = InMemoryChorus()
        older = await chorus.upsert((ANA,), {}, {})
        newer = await chorus.upsert((ANA_PHONE,), {}, {})
        await chorus.upsert((ANA, ANA_PHONE), {}, {})
        await chorus.change_consent(older.customer_id, [opted_in(Channel.EMAIL)])
        decided = await chorus.request_message(newer.customer_id, MARKETING_EMAIL)
        assert (decided.customer_id, outcome(decided)) == (older.customer_id, Outcome.SEND)

    async def test_a_request_for_an_unknown_customer_is_not_found(self) -> None:
        chorus = InMemoryChorus()
        with pytest.raises(NotFound):
            await chorus.request_message(chorus.ids.new_id(), MARKETING_EMAIL)


class TestCampaignSendsTakeTheChannelsTone:
    """A campaign send's text goes out as `POST /v1/templates/{key}/variants` shows it: shaped
    by the channel's tone in the rule set."""

    LONG = Content(
        body="Hi {{ customer.first_name }} 🎉\n\nSee https://a.example/1 and https://a.example/2."
    )

    async def sms(self, chorus: InMemoryChorus, campaign: str | None) -> Message:
        ana = await subscriber(chorus, Channel.SMS)
        content = MessageContent(inline=self.LONG, campaign=campaign)
        decided = await chorus.request_message(ana, MARKETING_SMS, content=content)
        assert outcome(decided) is Outcome.SEND
        (message,) = await chorus.lease(Channel.SMS)
        return message

    async def test_a_campaign_sms_is_shaped_by_the_default_tone(self) -> None:
        message = await self.sms(InMemoryChorus(), "spring")
        assert message.content.body == "Hi Ana See https://a.example/1 and."

    async def test_a_tone_in_the_rule_set_shapes_the_campaign_send(self) -> None:
        chorus = InMemoryChorus()
        # Naming SMS for its tone alone: its consent and STOP stay as built in.
        sms = ChannelOverride(
            tone=ChannelTone(12, Structure.ONE_PARAGRAPH, emoji=True, links=False)
        )
        await chorus.publish(channels={Channel.SMS: sms})
        message = await self.sms(chorus, "spring")
        assert message.content.body == "Hi Ana 🎉…"

    async def test_a_send_outside_a_campaign_says_what_was_asked(self) -> None:
        message = await self.sms(InMemoryChorus(), None)
        assert message.content.body == (
            "Hi Ana 🎉\n\nSee https://a.example/1 and https://a.example/2."
        )
