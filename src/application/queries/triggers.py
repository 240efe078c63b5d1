"""Triggers as defined now, and what each fired on, newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.shared.errors import NotFound
from domain.triggers.aggregate import check_trigger_key

if TYPE_CHECKING:
    from ports.triggers import FiringPage, TriggerReadModel, TriggerSummary

__all__ = ["TriggerQueries"]


class TriggerQueries:
    """Reads the lookup written with the definitions and the firings read model."""

    def __init__(self, triggers: TriggerReadModel) -> None:
        self.triggers = triggers

    async def list(self) -> list[TriggerSummary]:
        return await self.triggers.summaries()

    async def get(self, key: str) -> TriggerSummary:
        """The definition in force; raises NotFound for an unknown or deleted key."""
        found = await self._known(key)
        if found.deleted:
            raise NotFound(f"no trigger {key!r}")
        return found

    async def firings(self, key: str, *, after: str | None, limit: int) -> FiringPage:
        """Newest first; raises NotFound, as `get` does, for an unknown or deleted key."""
        found = await self.get(key)
        return await self.triggers.firings(found.trigger_id, after=after, limit=limit)

    async def _known(self, key: str) -> TriggerSummary:
        try:
            check_trigger_key(key)
        except ValueError:
            raise NotFound(f"no trigger {key!r}") from None
        found = await self.triggers.summary(key)
        if found is None:
            raise NotFound(f"no trigger {key!r}")
        return found
