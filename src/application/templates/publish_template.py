"""Publishes a template's next version; messages sent from then on cite it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.shared.errors import InvalidValue
from domain.templates.aggregate import Template, TemplateVersion, Variant, check_key
from ports.templates import RenderError

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.templates import TemplateRepository, TemplateSyntax

__all__ = ["PublishTemplate", "PublishedTemplate", "TemplateDraft"]


@dataclass(frozen=True, slots=True)
class TemplateDraft:
    """What a publisher sends: the variants, the locale to fall back to, a description."""

    variants: tuple[Variant, ...]
    default_locale: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class PublishedTemplate:
    key: str
    version: TemplateVersion
    created: bool  # False: the draft was the latest version already, nothing was published


class PublishTemplate:
    """Creates the template on its first version; two publishers racing get one version each."""

    def __init__(self, templates: TemplateRepository, clock: Clock, syntax: TemplateSyntax) -> None:
        self.templates = templates
        self.clock = clock
        self.syntax = syntax

    async def __call__(self, key: str, draft: TemplateDraft, author: str) -> PublishedTemplate:
        check_key(key)
        await self._check_syntax(draft.variants)

        async def attempt() -> PublishedTemplate:
            now = self.clock.now()
            template = await self.templates.load(key) or Template.create(key, now)
            version, created = template.publish(
                draft.variants, draft.default_locale, draft.description, author, now
            )
            if created:
                await self.templates.save(template)
            return PublishedTemplate(key, version, created)

        return await retry_on_conflict(attempt)

    async def _check_syntax(self, variants: tuple[Variant, ...]) -> None:
        """A syntax error is refused now, with its line, not found at the first send."""
        for n, variant in enumerate(variants):
            for field, text in variant.texts():
                try:
                    await self.syntax.check(text)
                except RenderError as error:
                    raise InvalidValue(f"variants[{n}].{field}", str(error)) from None
