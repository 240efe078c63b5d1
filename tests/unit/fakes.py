"""In-memory fakes of ports, for unit tests."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ports.templates import TemplateSummary
from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    from domain.templates.aggregate import Template


class InMemoryTemplates:
    """Keeps a copy of each saved template; saving from a stale copy is a conflict."""

    def __init__(self) -> None:
        self.saved: dict[str, Template] = {}
        self.saves = 0

    async def get(self, key: str) -> Template | None:
        return await self.load(key)

    async def load(self, key: str) -> Template | None:
        found = self.saved.get(key)
        return copy.deepcopy(found) if found is not None else None

    async def save(self, template: Template) -> None:
        pending = template.collect_events()
        stored = self.saved.get(template.key)
        if pending and pending[0].originator_version != (stored.version if stored else 0) + 1:
            raise ConcurrencyConflict(f"{template.key} moved on")
        self.saved[template.key] = copy.deepcopy(template)
        self.saves += 1

    async def summaries(self) -> list[TemplateSummary]:
        return [
            TemplateSummary(
                t.key, t.id, t.latest.number, t.latest.description, t.latest.published_at
            )
            for t in sorted(self.saved.values(), key=lambda t: t.key)
            if t.latest is not None
        ]
