"""The story of one message, read from the in-memory log: what asked for it, its decisions,
what was sent, its attempts, statuses with their source, and its cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import pytest

from adapters.inmemory.audit_log import InMemoryAuditLog
from adapters.templates.jinja import JinjaRenderer
from application.audit.message_story import MessageNotKnown, ReadMessageStory, requested_by
from application.conversations.replies import Reply
from application.messages.compose import MessageContent
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.campaign.origin import SendOrigin
from domain.customer.contact import ConsentRecord
from domain.message.aggregate import Attempt, Message, MessageStatus
from domain.message.content import Content
from domain.message.origin import api_origin, reply_origin
from domain.policy.decision import Outcome, SendRequest
from domain.policy.vocabulary import Channel, Purpose
from domain.templates.aggregate import Variant
from tests.unit.application.conversations.desk import Desk
from tests.unit.application.conversations.desk import ana as agent_ana
from tests.unit.in_memory_chorus import InMemoryChorus, claim

if TYPE_CHECKING:
    from collections.abc import Callable

ANA = claim("email", "ana@example.org")
ANA_PHONE = claim("phone", "+351912345678")
NIGHT = datetime(2026, 11, 30, 23, tzinfo=UTC)
MORNING = datetime(2026, 12, 1, 8, tzinfo=UTC)
MARKETING_SMS = SendRequest("growth", Purpose.MARKETING, (Channel.SMS,))
TEXT = MessageContent(inline=Content(body="Hi {{ customer.first_name }}"))
KEY = UUID("00000000-0000-4000-8000-00000000000a")


async def ana(chorus: InMemoryChorus) -> UUID:
    upserted = await chorus.upsert((ANA, ANA_PHONE), {"first_name": "Ana"}, {})
    consent = ConsentRecord(Channel.SMS, Purpose.MARKETING, True, "signup form")
    await chorus.change_consent(upserted.customer_id, [consent])
    return upserted.customer_id


async def change(chorus: InMemoryChorus, message_id: UUID, how: Callable[[Message], None]) -> None:
    async with chorus.uows() as uow:
        messages = uow.repository(Message)
        message = (await messages.get([message_id]))[message_id]
        how(message)
        messages.add(message)


def story(chorus: InMemoryChorus) -> ReadMessageStory:
    return ReadMessageStory(InMemoryAuditLog(chorus.storage))


class TestMessageStory:
    async def test_a_message_deferred_then_sent_then_bounced_tells_all_of_it(self) -> None:
        chorus = InMemoryChorus(at=NIGHT)
        customer = await ana(chorus)
        asked = await chorus.request_message(
            customer, MARKETING_SMS, content=TEXT, origin=api_origin(KEY)
        )
        chorus.clock.set(MORNING)
        assert await chorus.redecide_due() == 1
        sent_at = MORNING + timedelta(seconds=2)
        attempt = Attempt("fake-sms", sent_at, 12.5, True, "p-1")
        await change(
            chorus,
            asked.message_id,
            lambda m: m.accepted(
                (attempt,), "fake-sms", "p-1", MessageStatus.SENT, Decimal("0.05"), "EUR"
            ),
        )
        bounced_at = MORNING + timedelta(minutes=1)
        await change(
            chorus,
            asked.message_id,
            lambda m: m.report(MessageStatus.BOUNCED, "fake-sms", bounced_at, "unknown number"),
        )

        told = await story(chorus)(asked.message_id)

        assert (told.customer_id, told.team, told.status) == (customer, "growth", "bounced")
        assert (told.requested_by.kind, told.requested_by.key_id) == ("api", KEY)
        assert told.requested_by.team == "growth"
        assert [(d.outcome, d.decided_at, d.origin) for d in told.decisions] == [
            ("defer", NIGHT, api_origin(KEY)),
            ("send", MORNING, "scheduler"),
        ]
        deferred, allowed = told.decisions
        assert deferred.defer_until == MORNING
        assert "deferred" in [rule["effect"] for rule in deferred.fired]
        assert allowed.decision_id != deferred.decision_id
        assert deferred.rule_set_version == allowed.rule_set_version == 1
        assert (told.channel, told.recipient, told.content) == (
            "sms",
            "+351912345678",
            {"body": "Hi Ana"},
        )
        assert [(a.provider, a.accepted, a.answer) for a in told.attempts] == [
            ("fake-sms", True, "p-1")
        ]
        assert [(s.status, s.by, s.source, s.reason) for s in told.statuses] == [
            ("sent", "provider", "receipt", None),
            ("bounced", "provider", "webhook", "unknown number"),
        ]
        assert (told.cost, told.currency) == ("0.05", "EUR")

    async def test_a_message_never_allowed_tells_its_decisions_and_nothing_sent(self) -> None:
        chorus = InMemoryChorus(at=NIGHT)
        customer = await ana(chorus)
        asked = await chorus.request_message(customer, MARKETING_SMS, content=TEXT)
        told = await story(chorus)(asked.message_id)
        assert (told.status, told.requested_by.kind) == ("deferred", "api")
        assert [d.outcome for d in told.decisions] == [Outcome.DEFER.value]
        assert (told.content, told.attempts, told.statuses) == (None, [], [])

    async def test_a_deferred_message_names_the_template_and_version_it_will_send(
        self,
    ) -> None:
        chorus = InMemoryChorus(at=NIGHT)
        customer = await ana(chorus)
        publish = PublishTemplate(
            chorus.uows, chorus.templates.repository, chorus.clock, JinjaRenderer()
        )
        for body in ("Hi {{ customer.first_name }}", "Hello {{ customer.first_name }}"):
            await publish(
                "welcome", TemplateDraft((Variant(Channel.SMS, "en", body=body),), "en"), "t"
            )
        asked = await chorus.request_message(
            customer, MARKETING_SMS, content=MessageContent(template="welcome", version=1)
        )
        told = await story(chorus)(asked.message_id)
        assert (told.status, told.template, told.template_version) == ("deferred", "welcome", 1)
        assert told.content is None  # what it says is the customer's: shown once it is sent

        chorus.clock.set(MORNING)
        assert await chorus.redecide_due() == 1
        sent = await story(chorus)(asked.message_id)
        assert (sent.status, sent.template, sent.template_version) == ("queued", "welcome", 1)
        assert sent.content == {"body": "Hi Ana"}

    async def test_a_message_deferred_with_inline_content_names_no_template(self) -> None:
        chorus = InMemoryChorus(at=NIGHT)
        customer = await ana(chorus)
        asked = await chorus.request_message(customer, MARKETING_SMS, content=TEXT)
        told = await story(chorus)(asked.message_id)
        assert (told.status, told.template, told.template_version) == ("deferred", None, None)

    async def test_a_campaign_send_names_its_campaign_whatever_became_of_it(self) -> None:
        chorus = InMemoryChorus(at=NIGHT)
        customer = await ana(chorus)
        origin = str(SendOrigin("welcome", 2, "hello", uuid4()))
        deferred = await chorus.request_message(
            customer, MARKETING_SMS, content=TEXT, origin=origin
        )
        opt_out = ConsentRecord(Channel.SMS, Purpose.MARKETING, False, "STOP")
        await chorus.change_consent(customer, [opt_out])
        suppressed = await chorus.request_message(
            customer, MARKETING_SMS, content=TEXT, origin=origin
        )
        told = story(chorus)
        for asked, status in ((deferred, "deferred"), (suppressed, "suppressed")):
            found = await told(asked.message_id)
            assert (found.status, found.campaign, found.requested_by.campaign) == (
                status,
                "welcome",
                "welcome",
            )
            assert found.decisions[-1].outcome in ("defer", "suppress")  # as decided

    async def test_a_withdrawn_message_shows_the_status_chorus_recorded_itself(self) -> None:
        chorus = InMemoryChorus(at=MORNING)
        customer = await ana(chorus)
        asked = await chorus.request_message(customer, MARKETING_SMS, content=TEXT)
        await change(
            chorus,
            asked.message_id,
            lambda m: m.give_up("the journey moved on", MORNING) and None,
        )
        await change(chorus, asked.message_id, lambda m: m.withdraw(MORNING) and None)
        told = await story(chorus)(asked.message_id)
        assert [(s.status, s.by, s.source) for s in told.statuses] == [
            ("superseded", "chorus", "fallback")
        ]

    async def test_an_unknown_message_is_not_found(self) -> None:
        chorus = InMemoryChorus()
        with pytest.raises(MessageNotKnown):
            await story(chorus)(uuid4())


class TestARepliesStory:
    async def test_a_reply_names_its_conversation_and_agent_sent_or_suppressed(self) -> None:
        desk = Desk()
        await desk.staffed()
        sent_in = await desk.conversation(Channel.WHATSAPP)
        sent = await desk.reply(sent_in, agent_ana("support"), Reply(text="On its way!"))
        suppressed_in = await desk.conversation(Channel.SMS)
        customer = (await desk.thread(suppressed_in)).customer_id
        await desk.change_suppression(customer, Channel.SMS, "carrier complaint", active=True)
        suppressed = await desk.reply(suppressed_in, agent_ana("support"), Reply(text="Hi"))
        told = story(desk)
        for answer, conversation in ((sent, sent_in), (suppressed, suppressed_in)):
            asked = (await told(answer.message_id)).requested_by
            assert (asked.kind, asked.conversation_id, asked.agent) == (
                "conversation",
                conversation,
                "ana.silva",
            )

    async def test_a_reply_recorded_before_origins_named_agents_finds_its_agent_in_the_thread(
        self,
    ) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        sent = await desk.reply(conversation, agent_ana("support"), Reply(text="On its way!"))
        thread = await InMemoryAuditLog(desk.storage).stream(conversation)
        asked = requested_by(f"conversation:{conversation}", "support", thread, sent.message_id)
        assert asked.agent == "ana.silva"


class TestRequestedBy:
    def test_a_campaign_send_names_its_campaign_version_step_and_enrollment(self) -> None:
        enrollment = uuid4()
        origin = str(SendOrigin("welcome", 3, "hello", enrollment))
        asked = requested_by(origin, "growth", [], uuid4())
        assert (asked.kind, asked.campaign, asked.campaign_version, asked.step) == (
            "campaign",
            "welcome",
            3,
            "hello",
        )
        assert asked.enrollment_id == enrollment

    def test_a_request_over_nats_or_from_before_keys_were_recorded_names_its_channel(
        self,
    ) -> None:
        assert requested_by("nats", "billing", [], uuid4()).kind == "nats"
        key = uuid4()
        keyed = requested_by(f"nats:key:{key}", "billing", [], uuid4())
        assert (keyed.kind, keyed.key_id) == ("nats", key)
        old = requested_by("api", "billing", [], uuid4())
        assert (old.kind, old.key_id) == ("api", None)

    def test_a_reply_recorded_before_replies_named_their_agent_names_its_conversation(
        self,
    ) -> None:
        thread = uuid4()
        asked = requested_by(f"conversation:{thread}", "support", [], uuid4())
        assert (asked.kind, asked.conversation_id, asked.agent) == ("conversation", thread, None)

    def test_an_agent_whose_name_holds_colons_is_named_whole(self) -> None:
        thread = uuid4()
        origin = reply_origin(thread, "ops: night (admin key 1)")
        assert requested_by(origin, "support", [], uuid4()).agent == "ops: night (admin key 1)"
