"""Defines a trigger or a new version of it; the matcher fires it from then on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.shared.errors import DomainError, NotFound
from domain.triggers.aggregate import Trigger, check_trigger_key, trigger_id

if TYPE_CHECKING:
    from domain.triggers.definition import TriggerOn
    from ports.clock import Clock
    from ports.unit_of_work import Repository, UnitsOfWork

__all__ = ["DefineTrigger", "DefinedTrigger", "DeleteTrigger", "TriggerDraft", "TriggerExists"]


@dataclass(frozen=True, slots=True)
class TriggerDraft:
    name: str
    description: str
    on: TriggerOn


@dataclass(frozen=True, slots=True)
class DefinedTrigger:
    trigger: Trigger
    created: bool  # the key was new (or deleted before)
    changed: bool  # False: the draft was the definition in force, nothing was recorded


class TriggerExists(DomainError):
    """POST of a key that holds a different definition; PUT changes it."""


class DefineTrigger:
    """Creates or redefines; the same draft twice records nothing, so a retry is harmless."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(
        self, key: str, draft: TriggerDraft, author: str, *, replace: bool = True
    ) -> DefinedTrigger:
        check_trigger_key(key)

        async def attempt() -> DefinedTrigger:
            async with self.uows() as uow:
                triggers = uow.repository(Trigger)
                trigger = await _load(triggers, key)
                now = self.clock.now()
                if trigger is None:
                    trigger = Trigger.define(
                        key, draft.name, draft.description, draft.on, author, now
                    )
                    triggers.add(trigger)
                    return DefinedTrigger(trigger, created=True, changed=True)
                was_deleted = trigger.deleted
                if not replace and not was_deleted:
                    if trigger.same_as(draft.name, draft.description, draft.on):
                        return DefinedTrigger(trigger, created=False, changed=False)
                    raise TriggerExists(f"trigger {key!r} exists with another definition; PUT it")
                changed = trigger.redefine(draft.name, draft.description, draft.on, author, now)
                if changed:
                    triggers.add(trigger)
                return DefinedTrigger(trigger, created=was_deleted, changed=changed)

        return await retry_on_conflict(attempt)


class DeleteTrigger:
    """It stops firing; its firings stay."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, key: str, author: str) -> None:
        async def attempt() -> None:
            async with self.uows() as uow:
                triggers = uow.repository(Trigger)
                trigger = await _load(triggers, key)
                if trigger is None or trigger.deleted:
                    raise NotFound(f"no trigger {key!r}")
                trigger.delete(author, self.clock.now())
                triggers.add(trigger)

        await retry_on_conflict(attempt)


async def _load(triggers: Repository[Trigger], key: str) -> Trigger | None:
    stream = trigger_id(check_trigger_key(key))
    return (await triggers.get([stream])).get(stream)
