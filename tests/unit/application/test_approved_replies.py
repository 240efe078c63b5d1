"""A conversation reply held for approval goes into its thread once settled: approved or
edited, as the agent's outbound message; rejected or expired, as an internal note."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from application.approvals.settle_approval import ApprovalEdit, SettleApproval
from application.conversations.replies import Reply
from application.messages.compose import MessageContent
from domain.conversation.aggregate import Conversation, ConversationStatus, Direction
from domain.message.content import Content
from domain.policy.decision import Outcome, SendRequest
from domain.policy.vocabulary import Channel, Purpose
from tests.unit.application.conversations.desk import Desk, ana
from tests.unit.application.test_approvals import OPERATOR, REFUND, TEXT

if TYPE_CHECKING:
    from uuid import UUID

    from application.conversations.replies import ReplyOutcome


class HeldReply:
    """Ana answers a conversation classified as a confident refund request: the rules hold it."""

    def __init__(self) -> None:
        self.desk = Desk()
        desk = self.desk
        self.settle = SettleApproval(
            desk.uows, desk.rule_sets, desk.clock, desk.ids, desk.templates
        )

    async def held(self) -> tuple[UUID, ReplyOutcome]:
        desk = self.desk
        await desk.publish(approvals=(REFUND,))
        await desk.staffed()
        conversation_id = await desk.conversation(Channel.EMAIL)
        async with desk.uows() as uow:
            conversations = uow.repository(Conversation)
            conversation = (await conversations.get([conversation_id]))[conversation_id]
            conversation.classify("request_refund", None, "classifier", desk.clock.now(), 0.88)
            conversations.add(conversation)
        answer = await desk.reply(
            conversation_id, ana("support"), Reply(text="We refund you 50 EUR.")
        )
        assert (answer.outcome, answer.sent) == (Outcome.HOLD, False)
        thread = await desk.thread(conversation_id)
        assert [m.direction for m in thread.messages] == [Direction.INBOUND]
        return conversation_id, answer

    async def outbound(self, conversation_id: UUID) -> list[tuple[str, str, Channel]]:
        thread = await self.desk.thread(conversation_id)
        return [
            (m.author, m.text, m.channel)
            for m in thread.messages
            if m.direction is Direction.OUTBOUND
        ]


class TestApproved:
    async def test_the_approved_reply_is_in_the_thread_as_the_agents_message(self) -> None:
        world = HeldReply()
        conversation_id, answer = await world.held()
        settled = await world.settle.approve(answer.decision_id, OPERATOR)
        assert settled.outcome is Outcome.SEND
        assert await world.outbound(conversation_id) == [
            ("ana.silva", "We refund you 50 EUR.", Channel.EMAIL)
        ]
        thread = await world.desk.thread(conversation_id)
        assert thread.messages[-1].message_id == answer.message_id
        assert thread.status is ConversationStatus.WAITING_ON_CUSTOMER
        assert thread.notes == []

    async def test_an_edited_reply_is_in_the_thread_as_edited(self) -> None:
        world = HeldReply()
        conversation_id, answer = await world.held()
        edited = MessageContent(inline=Content(subject="Your refund", body="We refund 40 EUR."))
        await world.settle.edit(answer.decision_id, OPERATOR, ApprovalEdit(content=edited))
        assert await world.outbound(conversation_id) == [
            ("ana.silva", "We refund 40 EUR.", Channel.EMAIL)
        ]

    async def test_a_resolved_conversation_reopens_for_the_approved_reply(self) -> None:
        world = HeldReply()
        conversation_id, answer = await world.held()
        await world.desk.resolve(conversation_id, ana("support"))
        await world.settle.approve(answer.decision_id, OPERATOR)
        thread = await world.desk.thread(conversation_id)
        assert thread.status is ConversationStatus.WAITING_ON_CUSTOMER
        assert len(await world.outbound(conversation_id)) == 1


class TestNotSent:
    async def test_a_rejected_reply_is_a_note_and_never_a_message_of_the_thread(self) -> None:
        world = HeldReply()
        conversation_id, answer = await world.held()
        await world.settle.reject(answer.decision_id, OPERATOR, "not eligible")
        thread = await world.desk.thread(conversation_id)
        assert await world.outbound(conversation_id) == []
        (note,) = thread.notes
        assert note.note_id == answer.message_id
        assert note.author == OPERATOR
        assert note.text == (
            f"Reply not sent (rejected by {OPERATOR}: not eligible): We refund you 50 EUR."
        )

    async def test_an_expired_reply_is_a_note_by_the_scheduler(self) -> None:
        world = HeldReply()
        conversation_id, _ = await world.held()
        world.desk.clock.advance(timedelta(hours=4))
        assert await world.desk.redecide_due() == 1
        thread = await world.desk.thread(conversation_id)
        assert await world.outbound(conversation_id) == []
        (note,) = thread.notes
        assert note.author == "scheduler"
        assert note.text.startswith("Reply not sent (expired by scheduler: no operator approved")


class TestOtherSends:
    async def test_an_approved_send_that_is_no_reply_touches_no_conversation(self) -> None:
        world = HeldReply()
        conversation_id, _ = await world.held()
        desk = world.desk
        customer_id = (await desk.thread(conversation_id)).customer_id
        request = SendRequest(
            "support",
            Purpose.SERVICE,
            (Channel.EMAIL,),
            intent="request_refund",
            intent_confidence=0.9,
        )
        decided = await desk.request_message(customer_id, request, content=TEXT)
        assert decided.decision is not None
        assert decided.decision.outcome is Outcome.HOLD
        await world.settle.approve(decided.decision_id, OPERATOR)
        assert await world.outbound(conversation_id) == []
