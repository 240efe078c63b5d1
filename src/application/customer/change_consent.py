"""Records consent grants and withdrawals, with their proof, at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.customer.command import on_customer

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from domain.customer.aggregate import Customer
    from domain.customer.contact import ConsentRecord
    from ports.clock import Clock
    from ports.customers import CustomerRecords
    from ports.unit_of_work import UnitsOfWork

__all__ = ["ChangeConsent"]


class ChangeConsent:
    """Returns how many of the changes changed anything."""

    def __init__(self, uows: UnitsOfWork, clock: Clock, customers: CustomerRecords) -> None:
        self.uows = uows
        self.clock = clock
        self.customers = customers

    async def __call__(self, customer_id: UUID, changes: Sequence[ConsentRecord]) -> int:
        def change(customer: Customer) -> int:
            now = self.clock.now()
            return sum(customer.change_consent(c, now) for c in changes)

        return await on_customer(self.uows, self.customers, customer_id, change)
