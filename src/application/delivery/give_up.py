"""Withdrawing a message its sender no longer wants sent, if no provider has it yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.customer.aggregate import Customer
from domain.message.aggregate import Message, MessageStatus
from ports.approvals import ApprovalStatus

if TYPE_CHECKING:
    from uuid import UUID

    from ports.clock import Clock
    from ports.ids import IdGenerator
    from ports.rules import RuleSets
    from ports.unit_of_work import DueMessage, UnitOfWork, UnitsOfWork

__all__ = ["GiveUpMessage"]


class GiveUpMessage:
    """For a journey that waited for a send's delivery and moves on to another send instead
    (`on_not_delivered`): the first message, if still in the outbox, is withdrawn (`superseded`,
    with the reason) in this commit; if a dispatcher holds it, the dispatcher withdraws it
    unless a provider accepts it in that round. One a provider accepted cannot be taken back.
    Its channel fallback is dropped too: the caller sends what comes next itself. A message
    the rules deferred (quiet hours, a cap) or held for approval is not made yet: its deferral
    is withdrawn and a decision suppresses it (`withdrawn`, with the reason), so it is never
    decided again; a held one's approval ends as `withdrawn`."""

    def __init__(
        self, uows: UnitsOfWork, clock: Clock, rule_sets: RuleSets, ids: IdGenerator
    ) -> None:
        self.uows = uows
        self.clock = clock
        self.rule_sets = rule_sets
        self.ids = ids

    async def __call__(self, message_id: UUID, reason: str) -> bool:
        """Whether the message will never go (withdrawn now, or as soon as its dispatcher's
        round ends without an acceptance); False if a provider has it, or it ended already."""

        rules = await self.rule_sets.current()

        async def attempt() -> bool:
            async with self.uows() as uow:
                deferred = await uow.deferrals.withdraw(message_id)
                if deferred is not None:
                    return await self._suppress(uow, deferred, reason, rules.version)
                messages = uow.repository(Message)
                message = (await messages.get([message_id])).get(message_id)
                if message is None:
                    return False
                if message.status is MessageStatus.SUPERSEDED:
                    return True
                now = self.clock.now()
                if not message.give_up(reason, now):
                    return False
                if await uow.outbox.withdraw(message_id, now):
                    message.withdraw(now)
                messages.add(message)
                uow.outbox.forget_fallback(message_id)
                return True

        return await retry_on_conflict(attempt)

    async def _suppress(
        self, uow: UnitOfWork, deferred: DueMessage, reason: str, rule_set_version: int
    ) -> bool:
        customers = uow.repository(Customer)
        customer = (await customers.get([deferred.customer_id])).get(deferred.customer_id)
        if customer is not None and customer.merged_into is not None:
            survivor = customer.merged_into
            customer = (await customers.get([survivor])).get(survivor)
        if customer is None:
            return True  # nobody left to send it to
        decision_id = self.ids.new_id()
        now = self.clock.now()
        held = deferred.approval_id
        if held is not None:  # a message held for approval: its approval ends too
            customer.settle_approval(held, deferred.message_id, "withdrawn", "sender", reason, now)
        customer.withdraw_deferred(
            deferred.message_id,
            decision_id,
            deferred.request,
            reason,
            rule_set_version,
            now,
            deferred.origin,
        )
        uow.decisions.add(decision_id, deferred.message_id, customer.id, customer.version)
        customers.add(customer)
        if held is not None:
            status = ApprovalStatus.WITHDRAWN
            await uow.approvals.settle(held, status, "sender", reason, now, decision_id)
        return True
