"""Records consent grants and withdrawals, with their proof, at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.customer.conflicts import retry_on_conflict
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from domain.customer.contact import ConsentRecord
    from ports.clock import Clock
    from ports.customers import CustomerStore

__all__ = ["ChangeConsent"]


class ChangeConsent:
    """Returns how many of the changes changed anything."""

    def __init__(self, store: CustomerStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def __call__(self, customer_id: UUID, changes: Sequence[ConsentRecord]) -> int:
        survivor = await self.store.survivor(customer_id)
        if survivor is None:
            raise NotFound(f"no customer {customer_id}")

        async def attempt() -> int:
            async with self.store.transaction() as tx:
                customer = (await tx.get([survivor])).get(survivor)
                if customer is None:
                    raise NotFound(f"no customer {customer_id}")
                now = self.clock.now()
                changed = sum(customer.change_consent(change, now) for change in changes)
                tx.save(customer)
                return changed

        return await retry_on_conflict(attempt)
