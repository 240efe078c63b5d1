"""`chorus audit verify` on the in-memory log: messages without an allowing decision, and
decisions that the policy engine, asked again, would not make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from adapters.inmemory.verified_log import InMemoryVerifiedLog
from application.approvals.settle_approval import ApprovalEdit, SettleApproval
from application.audit.verify import (
    CHECK_DECISIONS,
    CHECK_SENT,
    CheckReport,
    VerifyLog,
)
from application.messages.compose import MessageContent
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.message.aggregate import Message
from domain.message.content import Content
from domain.policy.decision import ApprovedHold, Effect, FiredRule, Outcome, SendRequest
from domain.policy.rules import ApprovalRule, FrequencyCap
from domain.policy.vocabulary import Channel, Purpose
from tests.unit.in_memory_chorus import InMemoryChorus, claim

ANA = claim("email", "ana@example.org")
ANA_PHONE = claim("phone", "+351912345678")
NIGHT = datetime(2026, 11, 30, 23, tzinfo=UTC)
MORNING = datetime(2026, 12, 1, 8, tzinfo=UTC)
MARKETING_SMS = SendRequest("growth", Purpose.MARKETING, (Channel.SMS,))
MARKETING_EMAIL = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,))
TEXT = MessageContent(inline=Content(body="Hi {{ customer.first_name }}"))
HELLO = MessageContent(inline=Content(subject="Hello", body="Hi {{ customer.first_name }}"))
REFUND = ApprovalRule(
    "approval.refund",
    intents=frozenset({"request_refund"}),
    min_confidence=0.6,
    expires_after=timedelta(hours=4),
)
REFUND_REPLY = SendRequest(
    "support",
    Purpose.SERVICE,
    (Channel.EMAIL, Channel.SMS),
    intent="request_refund",
    intent_confidence=0.9,
)
OPERATOR = "lea (admin key k1)"


class Bars:
    """A progress display that remembers where each check got to."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def begin(self, check: str, total: int) -> None:
        self.totals[check] = total

    def reached(self, check: str, done: int) -> None:
        self.done[check] = done


async def history() -> tuple[InMemoryChorus, UUID]:
    """Ana, opted in to SMS only: a text deferred at night and sent in the morning, a second
    over a published cap suppressed, an email suppressed for want of consent; after a STOP
    two days later, a text suppressed."""
    chorus = InMemoryChorus(at=NIGHT)
    ana = (await chorus.upsert((ANA, ANA_PHONE), {"first_name": "Ana"}, {})).customer_id
    consent = ConsentRecord(Channel.SMS, Purpose.MARKETING, True, "signup form")
    await chorus.change_consent(ana, [consent])
    await chorus.request_message(ana, MARKETING_SMS, content=TEXT)
    chorus.clock.set(MORNING)
    assert await chorus.redecide_due() == 1
    await chorus.publish(caps=(FrequencyCap("cap.one", 1, timedelta(days=1)),))
    await chorus.request_message(ana, MARKETING_SMS, content=TEXT)
    await chorus.request_message(ana, MARKETING_EMAIL, content=HELLO)
    withdrawn = ConsentRecord(Channel.SMS, Purpose.MARKETING, False, "STOP")
    await chorus.change_consent(ana, [withdrawn])
    chorus.clock.advance(timedelta(days=2))
    await chorus.request_message(ana, MARKETING_SMS, content=TEXT)
    return chorus, ana


async def verify(chorus: InMemoryChorus) -> tuple[dict[str, CheckReport], Bars]:
    bars = Bars()
    reports = await VerifyLog(InMemoryVerifiedLog(chorus.storage), None)(bars)
    return {report.check: report for report in reports}, bars


async def forge_decision(chorus: InMemoryChorus, customer_id: UUID, **changes: Any) -> UUID:
    """A decision appended to the customer's stream without asking the rules."""
    customer = await chorus.customer(customer_id)
    decision_id = uuid4()
    fields: dict[str, Any] = {
        "timestamp": chorus.clock.now(),
        "message_id": uuid4(),
        "decision_id": decision_id,
        "origin": "forged",
        "request": MARKETING_EMAIL,
        "outcome": Outcome.SEND,
        "channel": Channel.EMAIL,
        "defer_until": None,
        "rule_set_version": 1,
        "fired": (),
        **changes,
    }
    customer.trigger_event(Customer.MessageAllowed, **fields)
    chorus.storage.events.save(customer)
    return decision_id


async def settled_holds() -> tuple[InMemoryChorus, UUID, dict[str, UUID]]:
    """Four refund replies held for approval: one approved, one edited onto SMS, one rejected
    and one left to expire; returns each hold's approval id by its verdict."""
    chorus = InMemoryChorus(at=MORNING)
    await chorus.publish(approvals=(REFUND,))
    ana = (await chorus.upsert((ANA, ANA_PHONE), {"first_name": "Ana"}, {})).customer_id
    consent = ConsentRecord(Channel.SMS, Purpose.SERVICE, True, "signup form")
    await chorus.change_consent(ana, [consent])
    held = {}
    for verdict in ("approved", "edited", "rejected", "expired"):
        decided = await chorus.request_message(ana, REFUND_REPLY, content=HELLO)
        assert decided.decision is not None
        assert decided.decision.outcome is Outcome.HOLD
        held[verdict] = decided.decision_id
    settle = SettleApproval(
        chorus.uows, chorus.rule_sets, chorus.clock, chorus.ids, chorus.templates
    )
    await settle.approve(held["approved"], OPERATOR)
    await settle.edit(held["edited"], OPERATOR, ApprovalEdit(channel=Channel.SMS))
    await settle.reject(held["rejected"], OPERATOR, "not without a receipt")
    chorus.clock.advance(timedelta(hours=5))
    assert await chorus.redecide_due() == 1
    return chorus, ana, held


def queue_without_decision(
    chorus: InMemoryChorus, customer_id: UUID, decision_id: UUID, message_id: UUID | None = None
) -> UUID:
    """A message put in the store directly, naming `decision_id`, as a bug or a hand might."""
    message = Message(
        id=message_id or uuid4(),
        timestamp=chorus.clock.now(),
        customer_id=customer_id,
        decision_id=decision_id,
        channel=Channel.EMAIL,
        purpose=Purpose.MARKETING,
        team="growth",
        recipient="ana@example.org",
        content=Content(subject="Hi", body="Hi"),
        campaign=None,
        template=None,
        template_version=None,
        correlation_id=None,
    )
    chorus.storage.events.save(message)
    return message.id


class TestVerifyLog:
    async def test_a_history_made_by_the_rules_passes_every_check(self) -> None:
        chorus, _ = await history()
        reports, bars = await verify(chorus)
        assert {check: r.differences for check, r in reports.items()} == {
            CHECK_SENT: 0,
            CHECK_DECISIONS: 0,
        }
        assert (reports[CHECK_SENT].checked, reports[CHECK_DECISIONS].checked) == (1, 5)
        assert bars.done == bars.totals

    async def test_a_message_queued_without_a_decision_is_reported(self) -> None:
        chorus, ana = await history()
        decision_id = uuid4()
        message_id = queue_without_decision(chorus, ana, decision_id)
        reports, _ = await verify(chorus)
        sent = reports[CHECK_SENT]
        assert sent.differences == 1
        assert sent.shown[0].subject == f"message {message_id}"
        assert str(decision_id) in sent.shown[0].detail

    async def test_a_message_queued_on_a_decision_that_did_not_allow_it_is_reported(self) -> None:
        chorus, ana = await history()
        message_id = uuid4()
        suppressed = await forge_decision(
            chorus, ana, message_id=message_id, outcome=Outcome.SUPPRESS, channel=None
        )
        queue_without_decision(chorus, ana, suppressed, message_id)
        reports, _ = await verify(chorus)
        assert "did not allow it: suppress" in reports[CHECK_SENT].shown[0].detail

    async def test_a_decision_the_rules_would_not_make_is_reported_with_both_outcomes(
        self,
    ) -> None:
        chorus, ana = await history()
        forged = await forge_decision(chorus, ana)  # marketing email without consent
        reports, _ = await verify(chorus)
        decisions = reports[CHECK_DECISIONS]
        assert decisions.differences == 1
        (shown,) = decisions.shown
        assert shown.subject.startswith(f"decision {forged}")
        assert shown.detail.startswith("recorded send on email (no rule); decided again: suppress")

    async def test_a_decision_under_a_rule_set_never_published_is_reported(self) -> None:
        chorus, ana = await history()
        await forge_decision(chorus, ana, rule_set_version=9)
        reports, _ = await verify(chorus)
        assert reports[CHECK_DECISIONS].shown[0].detail == (
            "names rule-set version 9, never published"
        )

    async def test_only_the_first_differences_are_shown_and_all_are_counted(self) -> None:
        chorus, ana = await history()
        for _ in range(3):
            queue_without_decision(chorus, ana, uuid4())
        bars = Bars()
        log = InMemoryVerifiedLog(chorus.storage)
        reports = await VerifyLog(log, None, shown=2)(bars)
        sent = next(r for r in reports if r.check == CHECK_SENT)
        assert (sent.differences, len(sent.shown)) == (3, 2)


class TestVerdictsOnHeldMessages:
    async def test_approved_edited_rejected_and_expired_holds_are_decided_again_as_settled(
        self,
    ) -> None:
        chorus, _, _ = await settled_holds()
        reports, _ = await verify(chorus)
        decisions = reports[CHECK_DECISIONS]
        assert decisions.shown == []
        assert decisions.checked == 8  # four holds, and the decision each verdict led to
        assert reports[CHECK_SENT].passed

    async def test_a_rejection_recorded_as_a_send_is_reported(self) -> None:
        chorus, ana, held = await settled_holds()
        customer = await chorus.customer(ana)
        # The last verdict recorded again, followed by a decision that ignores it.
        message_id = chorus.storage.approvals[held["rejected"]].message_id
        now = chorus.clock.now()
        customer.settle_approval(held["rejected"], message_id, "rejected", OPERATOR, "", now)
        chorus.storage.events.save(customer)
        forged = await forge_decision(
            chorus,
            ana,
            message_id=message_id,
            request=REFUND_REPLY,
            outcome=Outcome.SUPPRESS,
            channel=None,
            fired=(FiredRule("approval.refund", Effect.SUPPRESSED, "rejected by someone"),),
        )
        reports, _ = await verify(chorus)
        (shown,) = reports[CHECK_DECISIONS].shown
        assert shown.subject.startswith(f"decision {forged}")
        assert shown.detail == (
            "recorded suppress (approval.refund suppressed) because rejected by someone;"
            f" rejected by {OPERATOR}, it ends as: suppress (approval.refund suppressed)"
            f" because rejected by {OPERATOR}"
        )

    async def test_an_approval_no_operator_gave_is_reported(self) -> None:
        chorus, ana, _ = await settled_holds()
        approved = (ApprovedHold("approval.refund", "mallory"),)
        message_id = uuid4()
        forged = await forge_decision(
            chorus,
            ana,
            message_id=message_id,
            request=SendRequest(
                "support",
                Purpose.SERVICE,
                (Channel.SMS,),
                intent="request_refund",
                intent_confidence=0.9,
                approved=approved,
            ),
            channel=Channel.SMS,
            fired=(),
        )
        reports, _ = await verify(chorus)
        details = {d.subject: d.detail for d in reports[CHECK_DECISIONS].shown}
        assert details[f"decision {forged} (message {message_id})"] == (
            "carries an approval of approval.refund by mallory that no verdict on the message"
            " recorded"
        )

    async def test_a_withdrawal_of_a_message_never_deferred_is_reported(self) -> None:
        chorus, ana = await history()
        forged = await forge_decision(
            chorus,
            ana,
            outcome=Outcome.SUPPRESS,
            channel=None,
            fired=(FiredRule("withdrawn", Effect.SUPPRESSED, "the sender withdrew it"),),
        )
        reports, _ = await verify(chorus)
        (shown,) = reports[CHECK_DECISIONS].shown
        assert shown.subject.startswith(f"decision {forged}")
        assert shown.detail == "withdraws a message that was never deferred nor held"
