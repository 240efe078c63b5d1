"""Templates as published: one version of one template, or every template by key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ports.templates import TemplateNotFound

if TYPE_CHECKING:
    from domain.templates.aggregate import TemplateVersion
    from ports.templates import PublishedTemplates, TemplateSummary

__all__ = ["TemplateQueries", "TemplateView"]


@dataclass(frozen=True, slots=True)
class TemplateView:
    key: str
    latest_version: int
    version: TemplateVersion


class TemplateQueries:
    """Reads from the store, not a cache: what was just published is what is read."""

    def __init__(self, templates: PublishedTemplates) -> None:
        self.templates = templates

    async def get(self, key: str, version: int | None = None) -> TemplateView:
        """The latest version, or the one asked for; raises TemplateNotFound."""
        template = await self.templates.load(key)
        if template is None or template.latest is None:
            raise TemplateNotFound(f"there is no template {key!r}")
        chosen = template.latest if version is None else template.find_version(version)
        if chosen is None:
            raise TemplateNotFound(f"template {key!r} has no version {version}")
        return TemplateView(key, template.latest.number, chosen)

    async def summaries(self) -> list[TemplateSummary]:
        return await self.templates.summaries()
