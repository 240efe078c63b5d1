"""Finds or creates the one customer a set of identities belongs to, merging when they disagree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain.customer.aggregate import Customer
from domain.customer.identities import Verification
from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime
    from uuid import UUID

    from domain.customer.identities import Identity, IdentityClaim
    from ports.ids import IdGenerator
    from ports.unit_of_work import UnitOfWork

__all__ = ["Resolution"]

_UNVERIFIED = Verification.UNVERIFIED  # looked up once: ingest asks it for every signal


class Resolution:
    """One batch's view of who is who, kept consistent as customers are created and merged."""

    def __init__(self, uow: UnitOfWork, ids: IdGenerator, at: datetime) -> None:
        self.uow = uow
        self.repository = uow.repository(Customer)
        self.ids = ids
        self.at = at
        self.owners: dict[Identity, UUID] = {}
        self.customers: dict[UUID, Customer] = {}
        self.new_owners: dict[Identity, UUID] = {}
        self.merges: list[tuple[UUID, UUID]] = []
        self.registered: list[UUID] = []  # customers this batch created, in order

    async def prepare(self, claims: Iterable[IdentityClaim]) -> None:
        self.owners = await self.uow.identities.resolve({claim.identity for claim in claims})

    def known_owner(self, claims: Sequence[IdentityClaim]) -> UUID | None:
        """The owner when every identity is known, plain, and points at one customer."""
        owner: UUID | None = None
        for claim in claims:
            found = self.owners.get(claim.identity)
            if found is None or claim.verification is not _UNVERIFIED:
                return None
            if owner is not None and found != owner:
                return None
            owner = found
        return owner

    def owners_of(self, claims: Sequence[IdentityClaim]) -> set[UUID]:
        return {self.owners[c.identity] for c in claims if c.identity in self.owners}

    async def load(self, customer_ids: Iterable[UUID]) -> None:
        missing = {cid for cid in customer_ids if cid not in self.customers}
        if missing:
            self.customers.update(await self.repository.get(missing))

    async def customer_for(
        self,
        claims: Sequence[IdentityClaim],
        reason: str,
        profile: dict[str, Any] | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Customer:
        """The customer these identities name, after links, merges and profile changes."""
        owner_ids = self.owners_of(claims)
        if not owner_ids:
            customer = Customer.register(self.ids.new_id(), self.at, tuple(claims))
            self.customers[customer.id] = customer
            self.registered.append(customer.id)
            for claim in claims:
                self._own(claim.identity, customer.id)
        else:
            await self.load(owner_ids)
            if any(self.customers[cid].is_merged for cid in owner_ids):
                # The identity index was read before a concurrent merge committed.
                raise ConcurrencyConflict("a customer was merged meanwhile")
            found = [self.customers[cid] for cid in await self._oldest_first(owner_ids)]
            customer = found[0]
            for other in found[1:]:
                self._merge(other, into=customer, reason=reason)
            for claim in claims:
                customer.link(claim, self.at)
                if self.owners.get(claim.identity) != customer.id:
                    self._own(claim.identity, customer.id)
        if profile or attributes:
            customer.update_profile(self.at, profile or {}, attributes or {})
        return customer

    async def _oldest_first(self, customer_ids: set[UUID]) -> list[UUID]:
        # The log decides who is oldest: clocks can stand still or go back (the manual clock).
        if len(customer_ids) == 1:
            return list(customer_ids)
        new = [cid for cid in self.registered if cid in customer_ids]
        return await self.repository.oldest_first(customer_ids - set(new)) + new

    def _merge(self, other: Customer, into: Customer, reason: str) -> None:
        into.absorb(other, self.at, reason)
        self.merges.append((other.id, into.id))
        for identity, owner in list(self.owners.items()):
            if owner == other.id:
                self.owners[identity] = into.id
        for identity, owner in list(self.new_owners.items()):
            if owner == other.id:
                self.new_owners[identity] = into.id

    def _own(self, identity: Identity, customer_id: UUID) -> None:
        self.owners[identity] = customer_id
        self.new_owners[identity] = customer_id

    async def write(self) -> None:
        """Claims new identities, records merges, saves every customer touched."""
        if self.new_owners:
            await self.uow.identities.claim(self.new_owners)
        for merged_id, survivor_id in self.merges:
            await self.uow.identities.record_merge(merged_id, survivor_id)
        self.repository.add(*self.customers.values())
