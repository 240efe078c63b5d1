"""What was still to be sent to a customer when they are erased, ended on record in the
erasure's own commit: nothing waits to go to an address no one can read any more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from domain.message.aggregate import Message
from ports.approvals import ApprovalStatus

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from domain.customer.aggregate import Customer
    from ports.ids import IdGenerator
    from ports.unit_of_work import UnitOfWork

__all__ = ["ERASED", "WithdrawnSends", "withdraw_pending_sends"]

ERASED = "customer erased"
"""The reason every ended send, decision and approval names."""


@dataclass(frozen=True, slots=True)
class WithdrawnSends:
    """What the erasure ended: deferred messages suppressed (held ones with their approval
    withdrawn), and queued messages withdrawn before a provider took them."""

    suppressed: tuple[UUID, ...]
    approvals: tuple[UUID, ...]
    withdrawn: tuple[UUID, ...]


async def withdraw_pending_sends(
    uow: UnitOfWork,
    customer: Customer,
    *,
    by: str,
    rule_set_version: int,
    ids: IdGenerator,
    at: datetime,
) -> WithdrawnSends:
    """Ends, in `uow`, every send to `customer` (and to those merged into them) that has not
    reached a provider, before the customer is erased (an erased customer records nothing):

    - a deferred message gets a decision that suppresses it (rule `withdrawn`, reason
      `customer erased`), so it is never decided again; one held for approval first has its
      approval settled as `withdrawn`, `by` the erasing key;
    - a queued message gives up (`GivenUp`, `customer erased`) and, unless a dispatcher holds
      it right now, is withdrawn (`superseded`) and leaves the outbox; a dispatcher that holds
      it withdraws it itself unless a provider accepts it in that round.
    """
    whose = (customer.id, *customer.absorbed)
    deferred = sorted(
        await uow.deferrals.withdraw_customers(whose), key=lambda due: str(due.message_id)
    )
    for due in deferred:
        decision_id = ids.new_id()
        if due.approval_id is not None:
            customer.settle_approval(due.approval_id, due.message_id, "withdrawn", by, ERASED, at)
        customer.withdraw_deferred(
            due.message_id, decision_id, due.request, ERASED, rule_set_version, at, due.origin
        )
        uow.decisions.add(decision_id, due.message_id, customer.id, customer.version)
        if due.approval_id is not None:
            await uow.approvals.settle(
                due.approval_id, ApprovalStatus.WITHDRAWN, by, ERASED, at, decision_id
            )
    messages = uow.repository(Message)
    waiting = await uow.outbox.waiting_for(whose)
    loaded = await messages.get(waiting)
    withdrawn = []
    for message_id in waiting:
        message = loaded.get(message_id)
        if message is None or not message.give_up(ERASED, at):
            continue
        if await uow.outbox.withdraw(message_id, at):
            message.withdraw(at)
        uow.outbox.forget_fallback(message_id)
        messages.add(message)
        withdrawn.append(message_id)
    return WithdrawnSends(
        tuple(due.message_id for due in deferred),
        tuple(due.approval_id for due in deferred if due.approval_id is not None),
        tuple(withdrawn),
    )
