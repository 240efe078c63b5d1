"""Publishes a template's next version; messages sent from then on cite it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.shared.errors import InvalidValue
from domain.templates.aggregate import Template, TemplateVersion, Variant, check_key, template_id
from ports.templates import RenderError

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.templates import PublishedTemplates, TemplateSyntax
    from ports.unit_of_work import UnitsOfWork

__all__ = ["PublishTemplate", "PublishedTemplate", "TemplateDraft"]


@dataclass(frozen=True, slots=True)
class TemplateDraft:
    """What a publisher sends: the variants, the locale to fall back to, a description, and
    the intents whose messages its replies are suggested for."""

    variants: tuple[Variant, ...]
    default_locale: str
    description: str = ""
    intents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PublishedTemplate:
    key: str
    version: TemplateVersion
    created: bool  # False: the draft was the latest version already, nothing was published


class PublishTemplate:
    """Creates the template on its first version; two publishers racing get one version each."""

    def __init__(
        self,
        uows: UnitsOfWork,
        templates: PublishedTemplates,
        clock: Clock,
        syntax: TemplateSyntax,
    ) -> None:
        self.uows = uows
        self.templates = templates
        self.clock = clock
        self.syntax = syntax

    async def __call__(self, key: str, draft: TemplateDraft, author: str) -> PublishedTemplate:
        check_key(key)
        await self._check_syntax(draft.variants)
        stream = template_id(key)

        async def attempt() -> PublishedTemplate:
            async with self.uows() as uow:
                templates = uow.repository(Template)
                now = self.clock.now()
                template = (await templates.get([stream])).get(stream) or Template.create(key, now)
                version, created = template.publish(
                    draft.variants,
                    draft.default_locale,
                    draft.description,
                    author,
                    now,
                    draft.intents,
                )
                if created:
                    templates.add(template)
            if created:
                # Sends from this process render the new version from now on, not in a second.
                self.templates.forget(key)
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
