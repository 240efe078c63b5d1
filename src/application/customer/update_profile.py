"""Changes a known customer's profile by id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from application.conflicts import retry_on_conflict
from domain.customer.aggregate import Customer
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from uuid import UUID

    from ports.clock import Clock
    from ports.unit_of_work import UnitsOfWork

__all__ = ["UpdateProfile"]


class UpdateProfile:
    """Load, call, save: one command on one Customer aggregate."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(
        self, customer_id: UUID, profile: dict[str, Any], attributes: dict[str, Any]
    ) -> bool:
        async def attempt() -> bool:
            async with self.uows() as uow:
                repository = uow.repository(Customer)
                customer = (await repository.get([customer_id])).get(customer_id)
                if customer is None:
                    raise NotFound(f"no customer {customer_id}")
                changed = customer.update_profile(self.clock.now(), profile, attributes)
                repository.add(customer)
                return changed

        return await retry_on_conflict(attempt)
