"""Adding a new agent or team once: the same one again is a retry, another under its key is
refused."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from application.conflicts import retry_on_conflict
from application.conversations.staff import AlreadyRegistered, Written
from domain.conversation.agents import Agent, Team

if TYPE_CHECKING:
    from collections.abc import Callable

    from ports.unit_of_work import UnitsOfWork

__all__ = ["register_once"]

S = TypeVar("S", Agent, Team)


async def register_once(
    uows: UnitsOfWork, fresh: S, settings: Callable[[S], tuple[object, ...]], taken: str
) -> Written:
    """Saves `fresh` unless its stream holds one already: the same `settings` answer a retry
    (nothing written), others raise `AlreadyRegistered` with `taken`."""

    async def attempt() -> Written:
        async with uows() as uow:
            repository = uow.repository(type(fresh))
            found = (await repository.get([fresh.id])).get(fresh.id)
            if found is not None:
                if settings(found) != settings(fresh):
                    raise AlreadyRegistered(taken)
                return Written(fresh.key, created=False, changed=False)
            repository.add(fresh)
            return Written(fresh.key, created=True, changed=True)

    return await retry_on_conflict(attempt)
