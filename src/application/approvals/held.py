"""What a hold records for operators: the rule that held the message, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.policy.decision import Effect
from ports.approvals import ApprovalRecord

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from domain.policy.decision import Decision, SendRequest

__all__ = ["held_for_approval"]


def held_for_approval(
    customer_id: UUID,
    message_id: UUID,
    decision_id: UUID,
    request: SendRequest,
    decision: Decision,
    now: datetime,
    origin: str,
) -> ApprovalRecord:
    """The approval a hold decision opens; its id is the decision's."""
    held = next(rule for rule in decision.fired if rule.effect is Effect.HELD)
    assert decision.defer_until is not None  # a hold always expires
    return ApprovalRecord(
        approval_id=decision_id,
        message_id=message_id,
        customer_id=customer_id,
        rule_id=held.rule_id,
        reason=held.reason,
        team=request.team,
        purpose=str(request.purpose),
        channel=None if decision.channel is None else str(decision.channel),
        origin=origin,
        held_at=now,
        expires_at=decision.defer_until,
    )
