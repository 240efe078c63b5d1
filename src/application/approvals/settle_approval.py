"""An operator's verdict on a held message: approve it, edit it, or reject it.

The verdict withdraws the held message from its wait (the deferral due at the hold's expiry),
so the expiry and an operator can never both settle it: whoever deletes the row first does,
the other finds it gone (`ApprovalAlreadySettled`). The verdict is an event on the customer's
stream with the acting key (`ApprovalSettled`), followed in the same commit by the decision it
leads to: an edit records the message as held and as changed (`HeldEdit`); an approved or
edited message is decided again by the rules, with the rule that held
it approved by the operator (it may still be deferred, suppressed or held by another approval
rule); a rejected one is suppressed, citing the rule that held it and who rejected it. A
conversation reply goes into its thread in the same commit (`reply_thread`): sent, or noted as
not sent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.approvals.reply_thread import (
    reply_into_thread,
    unsent_reply_into_thread,
)
from application.conflicts import retry_on_conflict
from application.messages.compose import compose
from application.messages.request_message import decide_and_record
from domain.customer.aggregate import Customer
from domain.customer.held_edit import HeldEdit, HeldVersion, RenderedFor
from domain.policy.decision import ApprovedHold, Outcome
from domain.shared.errors import DomainError, InvalidValue, NotFound
from ports.approvals import ApprovalStatus

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from application.messages.compose import MessageContent
    from domain.policy.decision import SendRequest
    from domain.policy.rules import RuleSet
    from domain.policy.vocabulary import Channel
    from ports.approvals import ApprovalRecord
    from ports.clock import Clock
    from ports.conversation_roster import Roster
    from ports.delivery import Delivery
    from ports.ids import IdGenerator
    from ports.rules import RuleSets
    from ports.templates import Templates
    from ports.unit_of_work import DueMessage, UnitOfWork, UnitsOfWork

__all__ = [
    "ApprovalAlreadySettled",
    "ApprovalEdit",
    "SettleApproval",
    "Settled",
    "as_held",
    "load_recipient",
    "suppress_held",
]


class ApprovalAlreadySettled(DomainError):
    """The approval is no longer pending: approved, edited, rejected or expired already."""

    def __init__(self, approval_id: UUID, status: ApprovalStatus) -> None:
        super().__init__(f"approval {approval_id} is {status} already")
        self.status = status


@dataclass(frozen=True, slots=True)
class ApprovalEdit:
    """What an operator changes before approving: the channel, the content, or both."""

    channel: Channel | None = None
    content: MessageContent | None = None

    def __post_init__(self) -> None:
        if self.channel is None and self.content is None:
            raise InvalidValue("channel", "an edit changes the channel, the content or both")


@dataclass(frozen=True, slots=True)
class Settled:
    """The verdict, and the decision it led to."""

    approval_id: UUID
    message_id: UUID
    status: ApprovalStatus
    decision_id: UUID
    outcome: Outcome


async def load_recipient(uow: UnitOfWork, customer_id: UUID) -> Customer | None:
    """The customer a held message goes to: the survivor, if they were merged."""
    customers = uow.repository(Customer)
    customer = (await customers.get([customer_id])).get(customer_id)
    if customer is not None and customer.merged_into is not None:
        survivor = customer.merged_into
        customer = (await customers.get([survivor])).get(survivor)
    return customer


class SettleApproval:
    """Approve, edit or reject a pending approval, once."""

    def __init__(
        self,
        uows: UnitsOfWork,
        rule_sets: RuleSets,
        clock: Clock,
        ids: IdGenerator,
        templates: Templates | None = None,
        roster: Roster | None = None,
    ) -> None:
        self.uows = uows
        self.rule_sets = rule_sets
        self.clock = clock
        self.ids = ids
        self.templates = templates
        # The agents' loads, when an approved reply reopens its conversation (None: none kept).
        self.roster = roster

    async def approve(self, approval_id: UUID, by: str, note: str | None = None) -> Settled:
        return await self._settle(approval_id, ApprovalStatus.APPROVED, by, note, None)

    async def edit(
        self, approval_id: UUID, by: str, edit: ApprovalEdit, note: str | None = None
    ) -> Settled:
        return await self._settle(approval_id, ApprovalStatus.EDITED, by, note, edit)

    async def reject(self, approval_id: UUID, by: str, note: str | None = None) -> Settled:
        return await self._settle(approval_id, ApprovalStatus.REJECTED, by, note, None)

    async def _settle(
        self,
        approval_id: UUID,
        status: ApprovalStatus,
        by: str,
        note: str | None,
        edit: ApprovalEdit | None,
    ) -> Settled:
        rules = await self.rule_sets.current()

        async def attempt() -> Settled:
            async with self.uows() as uow:
                record = await uow.approvals.get(approval_id)
                if record is None:
                    raise NotFound(f"no approval {approval_id}")
                if record.status is not ApprovalStatus.PENDING:
                    raise ApprovalAlreadySettled(approval_id, record.status)
                held = await uow.deferrals.withdraw(record.message_id)
                if held is None or held.approval_id != approval_id:
                    # The expiry (or another operator) took it in the meantime.
                    raise ApprovalAlreadySettled(approval_id, ApprovalStatus.EXPIRED)
                customer = await load_recipient(uow, record.customer_id)
                if customer is None:
                    raise NotFound(f"no customer {record.customer_id}")
                now = self.clock.now()
                request, delivery, changed = held.request, held.delivery, None
                if edit is not None:
                    request, delivery = await self._edited(customer, request, delivery, edit)
                    changed = HeldEdit(
                        as_held(held.request, held.delivery), as_held(request, delivery)
                    )
                customer.settle_approval(
                    approval_id, record.message_id, status.value, by, note or "", now, changed
                )
                decision_id = self.ids.new_id()
                if status is ApprovalStatus.REJECTED:
                    why = f"rejected by {by}" + (f": {note}" if note else "")
                    suppress_held(uow, customer, held, record, why, decision_id, rules, now)
                    await unsent_reply_into_thread(
                        uow,
                        held.origin,
                        record.message_id,
                        held.delivery,
                        "rejected",
                        by,
                        note,
                        now,
                    )
                    outcome = Outcome.SUPPRESS
                else:
                    granted = ApprovedHold(record.rule_id, by)
                    request = dataclasses.replace(request, approved=(*request.approved, granted))
                    decision = decide_and_record(
                        uow,
                        customer,
                        record.message_id,
                        decision_id,
                        request,
                        rules,
                        now,
                        held.origin,
                        delivery=delivery,
                    )
                    await reply_into_thread(
                        uow,
                        held.origin,
                        record.message_id,
                        request,
                        delivery,
                        decision,
                        now,
                        self.roster,
                    )
                    outcome = decision.outcome
                await uow.approvals.settle(approval_id, status, by, note, now, decision_id)
                return Settled(approval_id, record.message_id, status, decision_id, outcome)

        return await retry_on_conflict(attempt)

    async def _edited(
        self,
        customer: Customer,
        request: SendRequest,
        delivery: Delivery | None,
        edit: ApprovalEdit,
    ) -> tuple[SendRequest, Delivery | None]:
        channels = request.channels if edit.channel is None else (edit.channel,)
        if edit.content is not None:
            content = edit.content
            if delivery is not None:
                content = dataclasses.replace(
                    content,
                    campaign=content.campaign or delivery.campaign,
                    correlation_id=content.correlation_id or delivery.correlation_id,
                )
            delivery = await compose(self.templates, content, customer, channels)
        elif delivery is not None and any(c not in delivery.contents for c in channels):
            raise InvalidValue(
                "channel",
                f"the message was not written for {edit.channel}: give its content too",
            )
        return dataclasses.replace(request, channels=channels), delivery


def as_held(request: SendRequest, delivery: Delivery | None) -> HeldVersion:
    """A held message as an edit's record says it: its channels, and its content on each."""
    contents = (
        ()
        if delivery is None
        else tuple(
            RenderedFor(channel, rendered.content, rendered.template, rendered.version)
            for channel, rendered in delivery.contents.items()
        )
    )
    return HeldVersion(request.channels, contents)


def suppress_held(
    uow: UnitOfWork,
    customer: Customer,
    held: DueMessage,
    record: ApprovalRecord,
    why: str,
    decision_id: UUID,
    rules: RuleSet,
    now: datetime,
) -> None:
    """The decision that ends a held message no one approved: suppressed, citing its rule."""
    customer.withdraw_deferred(
        held.message_id,
        decision_id,
        held.request,
        why,
        rules.version,
        now,
        held.origin,
        rule_id=record.rule_id,
    )
    uow.decisions.add(decision_id, held.message_id, customer.id, customer.version)
    uow.repository(Customer).add(customer)
