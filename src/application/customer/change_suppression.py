"""Puts a customer's channel on the suppression list, or takes it off."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.customer.command import on_customer

if TYPE_CHECKING:
    from uuid import UUID

    from domain.customer.aggregate import Customer
    from domain.policy.vocabulary import Channel
    from ports.clock import Clock
    from ports.customers import CustomerRecords
    from ports.unit_of_work import UnitsOfWork

__all__ = ["ChangeSuppression"]


class ChangeSuppression:
    """Returns whether anything changed; a suppression wins over any consent."""

    def __init__(self, uows: UnitsOfWork, clock: Clock, customers: CustomerRecords) -> None:
        self.uows = uows
        self.clock = clock
        self.customers = customers

    async def __call__(
        self, customer_id: UUID, channel: Channel | None, reason: str, *, active: bool
    ) -> bool:
        def change(customer: Customer) -> bool:
            now = self.clock.now()
            if active:
                return customer.suppress(channel, reason, now)
            return customer.lift_suppression(channel, reason, now)

        return await on_customer(self.uows, self.customers, customer_id, change)
