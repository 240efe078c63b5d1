"""Customers as clients see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from domain.customer.aggregate import Customer
    from domain.customer.identities import Identity
    from ports.customers import CustomerRecords, TimelinePage

__all__ = ["ConsentView", "CustomerQueries", "CustomerView", "IdentityView"]


@dataclass(frozen=True, slots=True)
class IdentityView:
    type: str
    value: str
    verification: str


@dataclass(frozen=True, slots=True)
class ConsentView:
    channel: str
    purpose: str | None  # None: the whole channel (an opt-out such as STOP)
    granted: bool
    source: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CustomerView:
    id: UUID
    identities: list[IdentityView]
    profile: dict[str, str | None]
    attributes: dict[str, Any]
    merged_from: list[UUID]
    consents: list[ConsentView]
    suppressions: dict[str, str]  # channel (or "*" for every channel) -> reason
    effective_time_zone: str | None  # the profile's, else inferred from the phone number
    created_at: datetime
    updated_at: datetime
    version: int
    erased_at: datetime | None = None  # once erased: no identities, names nor attributes


def _view(customer: Customer) -> CustomerView:
    return CustomerView(
        id=customer.id,
        identities=[
            IdentityView(identity.type, identity.value, level.value)
            for identity, level in sorted(customer.identities.items())
        ],
        profile=customer.profile.as_dict(),
        attributes=dict(customer.attributes),
        merged_from=list(customer.absorbed),
        consents=[
            ConsentView(channel.value, purpose.value, state.granted, state.source, state.at)
            for (channel, purpose), state in sorted(customer.consents.items())
        ]
        + [
            ConsentView(channel.value, None, False, state.source, state.at)
            for channel, state in sorted(customer.opted_out.items())
        ],
        suppressions={
            (channel.value if channel else "*"): reason
            for channel, reason in customer.suppressed.items()
        },
        effective_time_zone=customer.facts().time_zone,
        created_at=customer.created_on,
        updated_at=customer.modified_on,
        version=customer.version,
        erased_at=customer.erased_at,
    )


class CustomerQueries:
    """Reads customers as last committed; a merged id answers with its survivor."""

    def __init__(self, customers: CustomerRecords) -> None:
        self.customers = customers

    async def by_id(self, customer_id: UUID) -> CustomerView:
        survivor = await self.customers.survivor(customer_id)
        customer = await self.customers.get(survivor) if survivor else None
        if customer is None:
            raise NotFound(f"no customer {customer_id}")
        return _view(customer)

    async def by_identity(self, identity: Identity) -> CustomerView:
        found = await self.customers.find(identity)
        if found is None:
            raise NotFound(f"no customer has the identity {identity}")
        return await self.by_id(found)

    async def timeline(
        self, customer_id: UUID, *, limit: int, before: int | None
    ) -> tuple[UUID, TimelinePage]:
        survivor = await self.customers.survivor(customer_id)
        if survivor is None:
            raise NotFound(f"no customer {customer_id}")
        return survivor, await self.customers.timeline(survivor, limit=limit, before=before)
