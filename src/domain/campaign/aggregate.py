"""The Campaign aggregate: a named journey in versions, and its life from draft to archived.

A campaign is created as a draft; editing a draft changes its journey in place. Activating it
makes version 1 live. Editing an active (or paused) campaign publishes a new version: customers
already enrolled finish on their version, unless the version's `Migration` moves them, from a
step of an earlier version to a step of the new one. Every version's journey stays readable
(`journey_of`), for the enrollments still on it and for the audit. Pausing holds every
enrollment, resuming continues them, archiving ends them all (the process manager exits each,
with the reason). Every change is an event carrying the acting key (`by`).

Journeys are checked (`journey_reader.decode_journey`) before they reach the aggregate, against
templates and segments only the application can see; the aggregate checks its own rules.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime  # events carry these types; eventsourcing resolves them at run time
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.campaign.journey import Journey, StepRef
from domain.campaign.journey_reader import JourneyFault, JourneyInvalid
from domain.shared.errors import DomainError, InvalidValue
from domain.shared.keys import check_key, keyed_id
from domain.shared.topics import StoredAs

__all__ = [
    "Campaign",
    "CampaignStatus",
    "CannotChange",
    "Migration",
    "StepMove",
    "campaign_id",
    "check_campaign_key",
]

_NAMESPACE = UUID("6a1d3e58-9b2c-4f7e-8d41-0c5b7a2e9f63")

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


def check_campaign_key(key: str) -> str:
    """The key, if it is one: lower-case letters, digits, `_`, `.`, `-`; at most 64."""
    return check_key(key, "campaign", "order-follow-up")


def campaign_id(key: str) -> UUID:
    return keyed_id(_NAMESPACE, check_campaign_key(key))


class CampaignStatus(StrEnum):
    """Where a campaign is in its life."""

    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class CannotChange(DomainError):
    """The campaign's status does not allow the change asked for."""

    def __init__(self, key: str, status: CampaignStatus, change: str, hint: str = "") -> None:
        super().__init__(f"campaign {key!r} is {status}: it cannot be {change}{hint}")
        self.key = key
        self.status = status
        self.change = change


class StepMove(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Customers at step `from` of an earlier version (of `from_version` only, if given) move
    to step `to` of the new version."""

    from_: StepRef = msgspec.field(name="from")
    to: StepRef
    from_version: Annotated[int, msgspec.Meta(ge=1)] | None = None


class Migration(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """Which enrolled customers a new version moves, and where; the others stay on theirs."""

    moves: tuple[StepMove, ...] = ()

    def target(self, version: int, step: str) -> str | None:
        """The step of the new version a customer at `step` of `version` moves to, if any."""
        for move in self.moves:
            if move.from_ == step and move.from_version in (None, version):
                return move.to
        return None

    @property
    def targets(self) -> frozenset[str]:
        """The steps of the new version it moves customers to."""
        return frozenset(move.to for move in self.moves)


class Campaign(Aggregate):
    """A journey customers are taken through, in versions; draft, active, paused, archived."""

    stored_as = StoredAs("domain.campaign.aggregate:Campaign")

    @event("Created")
    def __init__(
        self, id: UUID, timestamp: datetime, key: str, name: str, journey: Journey, by: str
    ) -> None:
        self.key = key
        self.name = name
        self.status = CampaignStatus.DRAFT
        self.versions: dict[int, Journey] = {1: journey}
        self.migrations: dict[int, Migration] = {}
        self.number = 1
        self.changed_at = timestamp

    @classmethod
    def create(cls, key: str, name: str, journey: Journey, by: str, at: datetime) -> Campaign:
        """A new draft campaign under `key`, its id `campaign_id(key)`."""
        return cls(id=campaign_id(key), timestamp=at, key=key, name=name, journey=journey, by=by)

    @property
    def journey(self) -> Journey:
        """The journey of the version in force."""
        return self.versions[self.number]

    def journey_of(self, version: int) -> Journey:
        """The journey of any version, for the enrollments still on it."""
        try:
            return self.versions[version]
        except KeyError:
            raise InvalidValue(
                "version", f"campaign {self.key!r} has no version {version}"
            ) from None

    # commands

    def edit(
        self,
        name: str,
        journey: Journey,
        by: str,
        at: datetime,
        migration: Migration | None = None,
    ) -> bool:
        """A draft's journey changes in place; a live campaign's becomes a new version, with the
        migration of its enrolled customers. False when nothing changed."""
        self._refuse_if(CampaignStatus.ARCHIVED, "edited")
        if (name, journey) == (self.name, self.journey) and migration is None:
            return False
        if self.status is CampaignStatus.DRAFT:
            if migration is not None and migration.moves:
                raise InvalidValue("migration", "a draft has nobody enrolled to move")
            self._draft_edited(timestamp=at, name=name, journey=journey, by=by)
            return True
        migration = migration or Migration()
        self._check_migration(migration, journey)
        self._version_published(
            timestamp=at,
            number=self.number + 1,
            name=name,
            journey=journey,
            migration=migration,
            by=by,
        )
        return True

    def activate(self, by: str, at: datetime) -> bool:
        """A draft goes live; False if already active."""
        if self.status is CampaignStatus.ACTIVE:
            return False
        self._refuse_if(CampaignStatus.ARCHIVED, "activated")
        self._refuse_if(CampaignStatus.PAUSED, "activated", ": resume it")
        self._activated(timestamp=at, by=by)
        return True

    def pause(self, by: str, at: datetime, reason: str | None = None) -> bool:
        """An active campaign holds its enrollments and takes no one new, for `reason` if one is
        given; False if paused."""
        if self.status is CampaignStatus.PAUSED:
            return False
        self._refuse_if(CampaignStatus.DRAFT, "paused", ": activate it first")
        self._refuse_if(CampaignStatus.ARCHIVED, "paused")
        self._paused(timestamp=at, by=by, reason=reason)
        return True

    def resume(self, by: str, at: datetime) -> bool:
        """A paused campaign continues its enrollments; False if active."""
        if self.status is CampaignStatus.ACTIVE:
            return False
        self._refuse_if(CampaignStatus.DRAFT, "resumed", ": activate it")
        self._refuse_if(CampaignStatus.ARCHIVED, "resumed")
        self._resumed(timestamp=at, by=by)
        return True

    def archive(self, by: str, reason: str, at: datetime) -> bool:
        """Ends the campaign for good: every enrollment exits with `reason`. False if archived."""
        if self.status is CampaignStatus.ARCHIVED:
            return False
        self._archived(timestamp=at, by=by, reason=reason)
        return True

    @property
    def takes_entries(self) -> bool:
        """Whether customers may enter now."""
        return self.status is CampaignStatus.ACTIVE

    def _refuse_if(self, status: CampaignStatus, change: str, hint: str = "") -> None:
        if self.status is status:
            raise CannotChange(self.key, status, change, hint)

    def _check_migration(self, migration: Migration, journey: Journey) -> None:
        faults = self.migration_faults(migration, journey.steps)
        if faults:
            raise JourneyInvalid.of(faults)

    def migration_faults(self, migration: Migration, steps: Collection[str]) -> list[JourneyFault]:
        """Every fault of a migration to a new version with these `steps`, each move's `from`
        and `to` alike."""
        faults = []
        for i, move in enumerate(migration.moves):
            if move.to not in steps:
                faults.append(
                    JourneyFault(
                        f"$.migration.moves[{i}].to",
                        f"{move.to!r} is not a step of the new version",
                    )
                )
            if move.from_version is not None and move.from_version not in self.versions:
                known = ", ".join(map(str, sorted(self.versions)))
                faults.append(
                    JourneyFault(
                        f"$.migration.moves[{i}].from_version",
                        f"version {move.from_version} does not exist (versions: {known})",
                    )
                )
                continue
            versions = [move.from_version] if move.from_version is not None else list(self.versions)
            if not any(
                v in self.versions and move.from_ in self.versions[v].steps for v in versions
            ):
                which = f"version {move.from_version}" if move.from_version else "any version"
                faults.append(
                    JourneyFault(
                        f"$.migration.moves[{i}].from", f"{move.from_!r} is not a step of {which}"
                    )
                )
        return faults

    # events: each method body is the state change the event makes

    @event("DraftEdited")
    def _draft_edited(self, timestamp: datetime, name: str, journey: Journey, by: str) -> None:
        self.name = name
        self.versions[self.number] = journey
        self.changed_at = timestamp

    @event("VersionPublished")
    def _version_published(
        self,
        timestamp: datetime,
        number: int,
        name: str,
        journey: Journey,
        migration: Migration,
        by: str,
    ) -> None:
        self.name = name
        self.versions[number] = journey
        self.migrations[number] = migration
        self.number = number
        self.changed_at = timestamp

    @event("Activated")
    def _activated(self, timestamp: datetime, by: str) -> None:
        self.status = CampaignStatus.ACTIVE
        self.changed_at = timestamp

    class Paused(Aggregate.Event):
        """Paused says why since its version 2; those stored before say nothing."""

        class_version = 2
        by: str
        reason: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(reason=None)

    @event(Paused)
    def _paused(self, timestamp: datetime, by: str, reason: str | None) -> None:
        self.status = CampaignStatus.PAUSED
        self.changed_at = timestamp

    @event("Resumed")
    def _resumed(self, timestamp: datetime, by: str) -> None:
        self.status = CampaignStatus.ACTIVE
        self.changed_at = timestamp

    @event("Archived")
    def _archived(self, timestamp: datetime, by: str, reason: str) -> None:
        self.status = CampaignStatus.ARCHIVED
        self.changed_at = timestamp
