"""The Customer aggregate: identities, profile and the signals recorded about one person."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.customer.identities import Identity, IdentityClaim, Verification, strongest_claims
from domain.customer.profile import AttributeValue, Profile, check_attributes
from domain.shared.errors import DomainError

__all__ = ["Customer", "CustomerWasMerged", "LinkedIdentity"]


class CustomerWasMerged(DomainError):
    """The customer was merged into another; commands go to the survivor."""

    def __init__(self, customer_id: UUID, survivor_id: UUID) -> None:
        super().__init__(f"customer {customer_id} was merged into {survivor_id}")
        self.customer_id = customer_id
        self.survivor_id = survivor_id


LinkedIdentity = IdentityClaim
"""An identity as the customer holds it, with its verification level."""


class Customer(Aggregate):
    """One person. Identities, once linked, resolve here until a merge moves them on."""

    @event("Registered")
    def __init__(
        self, id: UUID, timestamp: datetime, identities: tuple[LinkedIdentity, ...]
    ) -> None:
        self.identities: dict[Identity, Verification] = {}
        for claim in identities:
            self.identities[claim.identity] = claim.verification
        self.profile = Profile()
        self.attributes: dict[str, AttributeValue] = {}
        self.merged_into: UUID | None = None
        self.absorbed: tuple[UUID, ...] = ()

    @classmethod
    def register(
        cls, customer_id: UUID, at: datetime, claims: tuple[IdentityClaim, ...]
    ) -> Customer:
        return cls(id=customer_id, timestamp=at, identities=strongest_claims(claims))

    # commands

    def link(self, claim: IdentityClaim, at: datetime) -> bool:
        """Links an identity, or raises its verification; False when nothing changed."""
        self._refuse_if_merged()
        known = self.identities.get(claim.identity)
        if known is not None and known.at_least(claim.verification):
            return False
        self._identity_linked(timestamp=at, identity=claim)
        return True

    def update_profile(
        self, at: datetime, profile: dict[str, Any], attributes: dict[str, Any]
    ) -> bool:
        """Changes profile fields and custom attributes; None removes an attribute."""
        self._refuse_if_merged()
        self.profile.merged_with(profile)  # validates before anything is recorded
        changed_fields = self.profile.changes_to(profile)
        changed_attributes = {
            name: value
            for name, value in check_attributes(attributes).items()
            if self.attributes.get(name, _MISSING) != value
            and not (value is None and name not in self.attributes)
        }
        if not changed_fields and not changed_attributes:
            return False
        self._profile_updated(timestamp=at, profile=changed_fields, attributes=changed_attributes)
        return True

    def absorb(self, other: Customer, at: datetime, reason: str) -> None:
        """Takes over another customer's identities, profile gaps and history."""
        self._refuse_if_merged()
        other._refuse_if_merged()
        if other.id == self.id:
            raise DomainError("a customer cannot absorb itself")
        identities = tuple(
            IdentityClaim(identity, verification)
            for identity, verification in sorted(other.identities.items())
        )
        gaps = {
            name: value
            for name, value in other.profile.as_dict().items()
            if value is not None and getattr(self.profile, name) is None
        }
        attributes = {k: v for k, v in other.attributes.items() if k not in self.attributes}
        self._absorbed(
            timestamp=at,
            merged_id=other.id,
            identities=identities,
            profile=gaps,
            attributes=attributes,
            reason=reason,
        )
        other._merged_into(timestamp=at, survivor_id=self.id, reason=reason)

    @property
    def is_merged(self) -> bool:
        return self.merged_into is not None

    def _refuse_if_merged(self) -> None:
        if self.merged_into is not None:
            raise CustomerWasMerged(self.id, self.merged_into)

    # events: each method body is the state change the event makes

    @event("IdentityLinked")
    def _identity_linked(self, timestamp: datetime, identity: LinkedIdentity) -> None:
        self.identities[identity.identity] = identity.verification

    @event("ProfileUpdated")
    def _profile_updated(
        self, timestamp: datetime, profile: dict[str, Any], attributes: dict[str, Any]
    ) -> None:
        self.profile = self.profile.merged_with(profile)
        for name, value in attributes.items():
            if value is None:
                self.attributes.pop(name, None)
            else:
                self.attributes[name] = value

    @event("Absorbed")
    def _absorbed(
        self,
        timestamp: datetime,
        merged_id: UUID,
        identities: tuple[LinkedIdentity, ...],
        profile: dict[str, Any],
        attributes: dict[str, Any],
        reason: str,
    ) -> None:
        for claim in identities:
            known = self.identities.get(claim.identity)
            if known is None or not known.at_least(claim.verification):
                self.identities[claim.identity] = claim.verification
        self.profile = self.profile.merged_with(profile)
        self.attributes.update(attributes)
        self.absorbed = (*self.absorbed, merged_id)

    @event("MergedInto")
    def _merged_into(self, timestamp: datetime, survivor_id: UUID, reason: str) -> None:
        self.merged_into = survivor_id
        self.identities = {}


_MISSING = object()
