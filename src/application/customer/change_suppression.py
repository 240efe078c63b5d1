"""Puts a customer's channel on the suppression list, or takes it off."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.customer.conflicts import retry_on_conflict
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from uuid import UUID

    from domain.policy.vocabulary import Channel
    from ports.clock import Clock
    from ports.customers import CustomerStore

__all__ = ["ChangeSuppression"]


class ChangeSuppression:
    """Returns whether anything changed; a suppression wins over any consent."""

    def __init__(self, store: CustomerStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def __call__(
        self, customer_id: UUID, channel: Channel | None, reason: str, *, active: bool
    ) -> bool:
        survivor = await self.store.survivor(customer_id)
        if survivor is None:
            raise NotFound(f"no customer {customer_id}")

        async def attempt() -> bool:
            async with self.store.transaction() as tx:
                customer = (await tx.get([survivor])).get(survivor)
                if customer is None:
                    raise NotFound(f"no customer {customer_id}")
                now = self.clock.now()
                if active:
                    changed = customer.suppress(channel, reason, now)
                else:
                    changed = customer.lift_suppression(channel, reason, now)
                tx.save(customer)
                return changed

        return await retry_on_conflict(attempt)
