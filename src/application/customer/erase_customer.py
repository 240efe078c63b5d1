"""Erases a customer's personal data: crypto-shredding, the history keeping its shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from application.customer.pending_sends import withdraw_pending_sends
from domain.customer.aggregate import Customer
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from ports.clock import Clock
    from ports.customers import CustomerRecords
    from ports.ids import IdGenerator
    from ports.rules import RuleSets
    from ports.unit_of_work import UnitsOfWork

__all__ = ["EraseCustomer", "Erasure"]


@dataclass(frozen=True, slots=True)
class Erasure:
    """Who was erased (the person's id, and the ids merged into it), and when."""

    customer_id: UUID
    erased_ids: tuple[UUID, ...]
    erased_at: datetime
    erased_now: bool


class EraseCustomer:
    """Idempotent: an erased customer is answered as when it was erased. A merged customer's
    id names the person its survivor is: the survivor is erased, with everyone merged into it.
    What was still to be sent to them ends on record in the same commit
    (`withdraw_pending_sends`): held approvals withdrawn, deferred messages suppressed, queued
    ones withdrawn before a provider takes them."""

    def __init__(
        self,
        uows: UnitsOfWork,
        clock: Clock,
        customers: CustomerRecords,
        rule_sets: RuleSets,
        ids: IdGenerator,
    ) -> None:
        self.uows = uows
        self.clock = clock
        self.customers = customers
        self.rule_sets = rule_sets
        self.ids = ids

    async def __call__(self, customer_id: UUID, by: str = "erasure") -> Erasure:
        """`by`: who erases, as the approvals it withdraws record it."""
        survivor = await self.customers.survivor(customer_id)
        if survivor is None:
            raise NotFound(f"no customer {customer_id}")
        rules = await self.rule_sets.current()

        async def attempt() -> Erasure:
            async with self.uows() as uow:
                repository = uow.repository(Customer)
                customer = (await repository.get([survivor])).get(survivor)
                if customer is None:
                    raise NotFound(f"no customer {customer_id}")
                now = self.clock.now()
                identities = tuple(customer.identities)  # theirs and the merged ones'
                if customer.erased_at is None and customer.merged_into is None:
                    await withdraw_pending_sends(
                        uow, customer, by=by, rule_set_version=rules.version, ids=self.ids, at=now
                    )
                erased_now = customer.erase(now, by)
                if erased_now:
                    await uow.identities.erase(customer.erased_ids, identities, now)
                    repository.add(customer)
                assert customer.erased_at is not None
                return Erasure(customer.id, customer.erased_ids, customer.erased_at, erased_now)

        return await retry_on_conflict(attempt)
