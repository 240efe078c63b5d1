"""Messages the rules hold for an operator: approved, edited, rejected, or expired, each once,
each an event with who settled it, each followed by the decision it led to."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest

from adapters.inmemory.audit_log import InMemoryAuditLog
from application.approvals.settle_approval import (
    ApprovalAlreadySettled,
    ApprovalEdit,
    SettleApproval,
)
from application.audit.message_story import ReadMessageStory
from application.conversations.replies import Reply
from application.delivery.give_up import GiveUpMessage
from application.messages.compose import MessageContent
from application.processes.outbound_events import OutboundEvents
from domain.conversation.aggregate import Conversation
from domain.customer.aggregate import Customer
from domain.message.content import Content
from domain.policy.decision import Effect, Outcome, SendRequest
from domain.policy.rules import ApprovalRule
from domain.policy.vocabulary import Channel, Purpose
from ports.approvals import ApprovalStatus
from tests.unit.application.conversations.desk import Desk, ana
from tests.unit.application.test_campaign_enrollments import Journeys
from tests.unit.application.test_outbound_events import RecordingPublisher
from tests.unit.domain.campaign.journeys import journey, send
from tests.unit.in_memory_chorus import InMemoryChorus, claim

if TYPE_CHECKING:
    from application.messages.request_message import MessageDecided

ANA = claim("email", "ana@example.org")
ANA_PHONE = claim("phone", "+351912345678")
REFUND = ApprovalRule(
    "approval.refund",
    intents=frozenset({"request_refund"}),
    min_confidence=0.6,
    expires_after=timedelta(hours=4),
)
REFUND_REPLY = SendRequest(
    "support",
    Purpose.SERVICE,
    (Channel.EMAIL,),
    intent="request_refund",
    intent_confidence=0.9,
)
TEXT = MessageContent(inline=Content(subject="Your refund", body="We refund you 50 EUR."))
OPERATOR = "lea (admin key k1)"


class World:
    def __init__(self) -> None:
        self.chorus = InMemoryChorus()
        chorus = self.chorus
        self.settle = SettleApproval(
            chorus.uows, chorus.rule_sets, chorus.clock, chorus.ids, chorus.templates
        )

    async def held(self, request: SendRequest = REFUND_REPLY) -> MessageDecided:
        chorus = self.chorus
        await chorus.publish(approvals=(REFUND,))
        upserted = await chorus.upsert((ANA, ANA_PHONE), {"first_name": "Ana"}, {})
        decided = await chorus.request_message(upserted.customer_id, request, content=TEXT)
        assert decided.decision is not None
        assert decided.decision.outcome is Outcome.HOLD
        return decided


class TestAHold:
    async def test_a_confident_refund_answer_waits_with_nothing_in_the_outbox(self) -> None:
        world = World()
        decided = await world.held()
        assert decided.decision is not None
        (held,) = [r for r in decided.decision.fired if r.effect is Effect.HELD]
        assert held.rule_id == "approval.refund"
        assert world.chorus.storage.outbox == {}
        record = world.chorus.storage.approvals[decided.decision_id]
        assert record.status is ApprovalStatus.PENDING
        assert record.expires_at == world.chorus.clock.now() + timedelta(hours=4)

    async def test_an_unsure_refund_answer_is_not_held_by_the_refund_rule(self) -> None:
        world = World()
        chorus = world.chorus
        await chorus.publish(approvals=(REFUND,))
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        unsure = SendRequest(
            "support",
            Purpose.SERVICE,
            (Channel.EMAIL,),
            intent="request_refund",
            intent_confidence=0.3,
        )
        decided = await chorus.request_message(ana, unsure, content=TEXT)
        assert decided.decision is not None
        assert decided.decision.outcome is Outcome.SEND


class TestApprove:
    async def test_an_approved_hold_is_sent_through_the_outbox_citing_who_approved(self) -> None:
        world = World()
        decided = await world.held()
        settled = await world.settle.approve(decided.decision_id, OPERATOR)
        assert (settled.status, settled.outcome) == (ApprovalStatus.APPROVED, Outcome.SEND)
        assert decided.message_id in world.chorus.storage.outbox
        record = world.chorus.storage.approvals[decided.decision_id]
        assert (record.status, record.settled_by) == (ApprovalStatus.APPROVED, OPERATOR)
        assert record.decision_id == settled.decision_id
        (event,) = [e for e in world.chorus.storage.events.log if "ApprovalSettled" in e.topic]
        assert getattr(event.event, "by", None) == OPERATOR
        assert getattr(event.event, "verdict", None) == "approved"

    async def test_a_hold_is_settled_once(self) -> None:
        world = World()
        decided = await world.held()
        await world.settle.approve(decided.decision_id, OPERATOR)
        with pytest.raises(ApprovalAlreadySettled):
            await world.settle.reject(decided.decision_id, OPERATOR)

    async def test_approval_lifts_only_the_hold_the_other_rules_still_decide(self) -> None:
        world = World()
        decided = await world.held()
        customer_id = decided.customer_id
        await world.chorus.change_suppression(
            customer_id, Channel.EMAIL, "hard bounce", active=True
        )
        settled = await world.settle.approve(decided.decision_id, OPERATOR)
        assert settled.outcome is Outcome.SUPPRESS
        assert world.chorus.storage.outbox == {}


class TestEdit:
    async def test_an_edited_hold_is_rendered_again_and_decided_again(self) -> None:
        world = World()
        decided = await world.held()
        changed = MessageContent(inline=Content(subject="Your refund", body="We refund 40 EUR."))
        edit = ApprovalEdit(content=changed)
        settled = await world.settle.edit(decided.decision_id, OPERATOR, edit, "40 is right")
        assert (settled.status, settled.outcome) == (ApprovalStatus.EDITED, Outcome.SEND)
        (message,) = await world.chorus.lease(Channel.EMAIL)
        assert "40 EUR" in str(message.content)

    async def test_a_channel_the_message_was_not_written_for_needs_content(self) -> None:
        world = World()
        decided = await world.held()
        with pytest.raises(ValueError, match="not written for sms"):
            await world.settle.edit(decided.decision_id, OPERATOR, ApprovalEdit(Channel.SMS))


class TestReject:
    async def test_a_rejected_hold_is_suppressed_citing_its_rule_and_who_rejected(self) -> None:
        world = World()
        decided = await world.held()
        settled = await world.settle.reject(decided.decision_id, OPERATOR, "not eligible")
        assert settled.outcome is Outcome.SUPPRESS
        assert world.chorus.storage.outbox == {}
        assert world.chorus.storage.deferred == {}
        assert world.chorus.storage.approvals[decided.decision_id].note == "not eligible"


class TestExpiry:
    async def test_an_unsettled_hold_expires_once_with_a_recorded_outcome(self) -> None:
        world = World()
        decided = await world.held()
        chorus = world.chorus
        chorus.clock.advance(timedelta(hours=3, minutes=59))
        assert await chorus.redecide_due() == 0
        chorus.clock.advance(timedelta(minutes=1))
        assert await chorus.redecide_due() == 1
        assert await chorus.redecide_due() == 0
        record = chorus.storage.approvals[decided.decision_id]
        assert (record.status, record.settled_by) == (ApprovalStatus.EXPIRED, "scheduler")
        assert chorus.storage.outbox == {}
        with pytest.raises(ApprovalAlreadySettled):
            await world.settle.approve(decided.decision_id, OPERATOR)


class TestAReplyToARefund:
    async def test_a_reply_to_a_conversation_classified_as_a_refund_waits_for_approval(
        self,
    ) -> None:
        desk = Desk()
        await desk.publish(approvals=(REFUND,))
        await desk.staffed()
        conversation_id = await desk.conversation(Channel.EMAIL)
        async with desk.uows() as uow:
            conversations = uow.repository(Conversation)
            conversation = (await conversations.get([conversation_id]))[conversation_id]
            conversation.classify("request_refund", None, "classifier", desk.clock.now(), 0.88)
            conversations.add(conversation)
        answer = await desk.reply(conversation_id, ana("support"), Reply(text="Refunded!"))
        assert (answer.outcome, answer.sent) == (Outcome.HOLD, False)
        assert desk.storage.outbox == {}
        settle = SettleApproval(desk.uows, desk.rule_sets, desk.clock, desk.ids, desk.templates)
        settled = await settle.approve(answer.decision_id, OPERATOR)
        assert settled.outcome is Outcome.SEND
        (message,) = await desk.lease(Channel.EMAIL)
        assert message.id == answer.message_id


class TestOnNats:
    async def test_a_hold_and_its_verdict_go_out_as_approval_events(self) -> None:
        world = World()
        decided = await world.held()
        await world.settle.reject(decided.decision_id, OPERATOR, "not eligible")
        process = OutboundEvents(RecordingPublisher())
        events = [e.event for e in world.chorus.storage.events.log if e.event is not None]
        sent = {}
        for event in events:
            if type(event) in process.handles:
                _, message = process.message(event)
                sent[message.subject] = msgspec.json.decode(message.payload)["data"]
        requested = sent["chorus.out.approvals.requested"]
        decided_on = sent["chorus.out.approvals.decided"]
        assert requested["approval_id"] == str(decided.decision_id)
        assert requested["rule_id"] == "approval.refund"
        assert (decided_on["verdict"], decided_on["by"]) == ("rejected", OPERATOR)


class TestWithdrawal:
    async def test_a_hold_its_sender_gives_up_on_ends_withdrawn_and_never_expires(self) -> None:
        world = World()
        decided = await world.held()
        chorus = world.chorus
        give_up = GiveUpMessage(chorus.uows, chorus.clock, chorus.rule_sets, chorus.ids)
        assert await give_up(decided.message_id, "the journey moved on")
        record = chorus.storage.approvals[decided.decision_id]
        assert (record.status, record.note) == (ApprovalStatus.WITHDRAWN, "the journey moved on")
        chorus.clock.advance(timedelta(days=2))
        assert await chorus.redecide_due() == 0
        with pytest.raises(ApprovalAlreadySettled):
            await world.settle.approve(decided.decision_id, OPERATOR)


class TestABroadcast:
    async def test_a_campaign_send_says_its_audience_and_a_broadcast_rule_holds_it(self) -> None:
        world = Journeys()
        broadcast = ApprovalRule(
            "approval.broadcast", audience_above=0, purposes=frozenset({Purpose.MARKETING})
        )
        await world.chorus.publish(approvals=(broadcast,))
        await world.templates()
        ana = await world.subscriber()
        campaign = await world.campaign("welcome", journey({"welcome": send()}))
        await world.enroll(campaign, ana)
        await world.settle()
        (decision,) = world.decisions()
        assert isinstance(decision, Customer.MessageHeld)
        assert decision.request.audience == 1
        (record,) = world.chorus.storage.approvals.values()
        assert (record.rule_id, record.purpose) == ("approval.broadcast", "marketing")
        assert world.messages() == []


class TestTheMessagesAudit:
    async def test_its_story_tells_the_hold_the_verdict_and_the_decision_it_led_to(self) -> None:
        world = World()
        decided = await world.held()
        await world.settle.approve(decided.decision_id, OPERATOR, "refund agreed")
        told = await ReadMessageStory(InMemoryAuditLog(world.chorus.storage))(decided.message_id)
        assert [d.outcome for d in told.decisions] == ["hold", "send"]
        (verdict,) = told.approvals
        assert (verdict.approval_id, verdict.verdict) == (decided.decision_id, "approved")
        assert (verdict.by, verdict.note) == (OPERATOR, "refund agreed")
        assert told.decisions[0].decided_at <= verdict.at <= told.decisions[1].decided_at

    async def test_a_rejected_hold_tells_who_rejected_it_before_its_suppression(self) -> None:
        world = World()
        decided = await world.held()
        await world.settle.reject(decided.decision_id, OPERATOR, "not owed")
        told = await ReadMessageStory(InMemoryAuditLog(world.chorus.storage))(decided.message_id)
        assert [d.outcome for d in told.decisions] == ["hold", "suppress"]
        assert [(a.verdict, a.by) for a in told.approvals] == [("rejected", OPERATOR)]

    async def test_an_edited_hold_tells_the_message_as_held_and_as_approved(self) -> None:
        world = World()
        decided = await world.held()
        changed = MessageContent(inline=Content(subject="Your refund", body="We refund 40 EUR."))
        await world.settle.edit(decided.decision_id, OPERATOR, ApprovalEdit(content=changed))
        told = await ReadMessageStory(InMemoryAuditLog(world.chorus.storage))(decided.message_id)
        (verdict,) = told.approvals
        assert verdict.verdict == "edited"
        assert verdict.edited is not None
        before, after = verdict.edited["before"], verdict.edited["after"]
        assert before["channels"] == after["channels"] == ["email"]
        assert before["contents"]["email"]["body"] == "We refund you 50 EUR."
        assert after["contents"]["email"]["body"] == "We refund 40 EUR."
        assert verdict.edited["changed"] == ["email.body"]
        assert told.content is not None
        assert told.content["body"] == "We refund 40 EUR."

    async def test_each_verdict_names_the_decision_it_led_to_and_its_outcome(self) -> None:
        world = World()
        approved, rejected, expiring = [await world.held() for _ in range(3)]
        await world.settle.approve(approved.decision_id, OPERATOR)
        await world.settle.reject(rejected.decision_id, OPERATOR)
        world.chorus.clock.advance(timedelta(hours=4))
        assert await world.chorus.redecide_due() == 1
        read = ReadMessageStory(InMemoryAuditLog(world.chorus.storage))
        for held, verdict, outcome in (
            (approved, "approved", "send"),
            (rejected, "rejected", "suppress"),
            (expiring, "expired", "suppress"),
        ):
            told = await read(held.message_id)
            (settled,) = told.approvals
            assert (settled.verdict, settled.outcome) == (verdict, outcome)
            assert settled.decision_id == told.decisions[-1].decision_id
            assert settled.edited is None
