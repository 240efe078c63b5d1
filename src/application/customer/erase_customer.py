"""Erases a customer's personal data: crypto-shredding, the history keeping its shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.customer.aggregate import Customer
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from ports.clock import Clock
    from ports.customers import CustomerRecords
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
    id names the person its survivor is: the survivor is erased, with everyone merged into it."""

    def __init__(self, uows: UnitsOfWork, clock: Clock, customers: CustomerRecords) -> None:
        self.uows = uows
        self.clock = clock
        self.customers = customers

    async def __call__(self, customer_id: UUID) -> Erasure:
        survivor = await self.customers.survivor(customer_id)
        if survivor is None:
            raise NotFound(f"no customer {customer_id}")

        async def attempt() -> Erasure:
            async with self.uows() as uow:
                repository = uow.repository(Customer)
                customer = (await repository.get([survivor])).get(survivor)
                if customer is None:
                    raise NotFound(f"no customer {customer_id}")
                now = self.clock.now()
                identities = tuple(customer.identities)  # theirs and the merged ones'
                erased_now = customer.erase(now)
                if erased_now:
                    await uow.identities.erase(customer.erased_ids, identities, now)
                    repository.add(customer)
                assert customer.erased_at is not None
                return Erasure(customer.id, customer.erased_ids, customer.erased_at, erased_now)

        return await retry_on_conflict(attempt)
