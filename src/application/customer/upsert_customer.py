"""Creates or updates the customer that a set of identities names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from application.conflicts import retry_on_conflict
from application.customer.resolution import Resolution

if TYPE_CHECKING:
    from uuid import UUID

    from domain.customer.identities import IdentityClaim
    from ports.clock import Clock
    from ports.ids import IdGenerator
    from ports.unit_of_work import UnitsOfWork

__all__ = ["UpsertCustomer", "Upserted"]


@dataclass(frozen=True, slots=True)
class Upserted:
    customer_id: UUID
    created: bool
    merged: tuple[UUID, ...]


class UpsertCustomer:
    """Idempotent: the same request twice changes nothing the second time."""

    def __init__(self, uows: UnitsOfWork, clock: Clock, ids: IdGenerator) -> None:
        self.uows = uows
        self.clock = clock
        self.ids = ids

    async def __call__(
        self,
        claims: tuple[IdentityClaim, ...],
        profile: dict[str, Any],
        attributes: dict[str, Any],
    ) -> Upserted:
        async def attempt() -> Upserted:
            async with self.uows() as uow:
                resolution = Resolution(uow, self.ids, self.clock.now())
                await resolution.prepare(claims)
                created = not resolution.owners_of(claims)
                customer = await resolution.customer_for(
                    claims, reason="profile upsert", profile=profile, attributes=attributes
                )
                await resolution.write()
                return Upserted(customer.id, created, tuple(m for m, _ in resolution.merges))

        return await retry_on_conflict(attempt)
