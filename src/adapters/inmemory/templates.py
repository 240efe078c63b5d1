"""Templates as published, read from their in-memory streams."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from domain.templates.aggregate import Template, is_template_key, template_id
from ports.templates import TemplateSummary

if TYPE_CHECKING:
    from adapters.inmemory.storage import InMemoryStorage

__all__ = ["InMemoryTemplates"]


class InMemoryTemplates:
    """Every version of each template, as committed (PublishedTemplates)."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    async def get(self, key: str) -> Template | None:
        return await self.load(key)

    async def load(self, key: str) -> Template | None:
        if not is_template_key(key):
            return None
        stream = template_id(key)
        found = self.storage.events.load([stream]).get(stream)
        return cast("Template", found) if found is not None else None

    def forget(self, key: str) -> None:
        """Nothing is kept: every read is of the log."""

    @property
    def keys(self) -> list[str]:
        """The keys ever defined, sorted."""
        streams = self.storage.events.started_by(Template)
        return sorted(
            cast("Template", found).key for found in self.storage.events.load(streams).values()
        )

    async def summaries(self) -> list[TemplateSummary]:
        summaries = []
        for key in self.keys:
            template = await self.load(key)
            if template is not None and template.latest is not None:
                latest = template.latest
                summaries.append(
                    TemplateSummary(
                        key, template.id, latest.number, latest.description, latest.published_at
                    )
                )
        return summaries
