"""Decides deferred messages again when their time comes; the scheduler calls it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.approvals.reply_thread import reply_into_thread, unsent_reply_into_thread
from application.approvals.settle_approval import suppress_held
from application.conflicts import retry_on_conflict
from application.messages.request_message import decide_and_record
from domain.customer.aggregate import Customer
from domain.policy.decision import Outcome
from ports.approvals import ApprovalStatus

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.conversation_roster import Roster
    from ports.ids import IdGenerator
    from ports.rules import RuleSets
    from ports.unit_of_work import UnitsOfWork

__all__ = ["RedecideDueMessages"]


class RedecideDueMessages:
    """Claims due messages (skipping those another worker holds) and decides each again; a
    message held for approval whose hold expired is suppressed instead (`expired`, citing the
    rule that held it), after an `ApprovalSettled` event by the scheduler.

    The new decision, the deferral's removal or its new due time commit together, so a crash
    leaves the message due and a restart picks it up.
    """

    def __init__(
        self,
        uows: UnitsOfWork,
        rule_sets: RuleSets,
        clock: Clock,
        ids: IdGenerator,
        roster: Roster | None = None,
    ) -> None:
        self.uows = uows
        self.rule_sets = rule_sets
        self.clock = clock
        self.ids = ids
        # The agents' loads, when a reply let go reopens its conversation (None: none kept).
        self.roster = roster

    async def __call__(self, limit: int = 100) -> int:
        """Returns how many due messages were decided."""
        rules = await self.rule_sets.current()

        async def attempt() -> int:
            async with self.uows() as uow:
                now = self.clock.now()
                due = await uow.deferrals.claim_due(now, limit)
                if not due:
                    return 0
                repository = uow.repository(Customer)
                customers = await repository.get({item.customer_id for item in due})
                for item in due:
                    await uow.deferrals.forget(item.message_id)
                    customer = customers.get(item.customer_id)
                    if customer is not None and customer.merged_into is not None:
                        survivor = customer.merged_into
                        customer = customers.get(survivor) or (
                            await repository.get([survivor])
                        ).get(survivor)
                    if customer is None or customer.erased_at is not None:
                        continue  # an erased customer is sent nothing more: it is forgotten
                    if item.approval_id is not None:
                        record = await uow.approvals.get(item.approval_id)
                        if record is None or record.status is not ApprovalStatus.PENDING:
                            continue
                        customer.settle_approval(
                            record.approval_id, item.message_id, "expired", "scheduler", "", now
                        )
                        decision_id = self.ids.new_id()
                        why = f"no operator approved it by {record.expires_at.isoformat()}"
                        suppress_held(uow, customer, item, record, why, decision_id, rules, now)
                        await unsent_reply_into_thread(
                            uow,
                            item.origin,
                            item.message_id,
                            item.delivery,
                            "expired",
                            "scheduler",
                            why,
                            now,
                        )
                        await uow.approvals.settle(
                            record.approval_id,
                            ApprovalStatus.EXPIRED,
                            "scheduler",
                            None,
                            now,
                            decision_id,
                        )
                        continue
                    decision = decide_and_record(
                        uow,
                        customer,
                        item.message_id,
                        self.ids.new_id(),
                        item.request,
                        rules,
                        now,
                        "scheduler",
                        delivery=item.delivery,
                    )
                    if decision.outcome is Outcome.SUPPRESS:
                        # A deferred reply that will never go: its agents are told in a note.
                        why = "; ".join(f"{f.rule_id}: {f.reason}" for f in decision.fired)
                        await unsent_reply_into_thread(
                            uow,
                            item.origin,
                            item.message_id,
                            item.delivery,
                            "suppressed",
                            "the rules",
                            why or None,
                            now,
                        )
                    # A reply deferred (approved first or not) goes into its thread now.
                    await reply_into_thread(
                        uow,
                        item.origin,
                        item.message_id,
                        item.request,
                        item.delivery,
                        decision,
                        now,
                        self.roster,
                    )
                return len(due)

        return await retry_on_conflict(attempt)
