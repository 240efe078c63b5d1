"""A template's message for each channel of a campaign send, rendered for one customer (or a
sample context) and shaped by each channel's tone, with what was changed and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from application.queries.reply_suggestions import customer_facts
from application.templates.shaped_text import ShapedText, read_by, shaped_text
from domain.shared.errors import DomainError
from ports.templates import RenderAsk, TemplateNotFound

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from uuid import UUID

    from application.queries.reply_suggestions import CustomerContexts
    from domain.policy.tone import ChannelTone
    from domain.policy.vocabulary import Channel
    from ports.rules import RuleSets
    from ports.templates import PublishedTemplates, Templates, TemplateVariables

__all__ = ["ChannelVariant", "ChannelVariants", "MessageVariants", "VariantLeftOut"]


@dataclass(frozen=True, slots=True)
class ChannelVariant:
    """The message for one channel, shaped by its `tone`, and the facts it read."""

    message: ShapedText
    tone: ChannelTone


@dataclass(frozen=True, slots=True)
class VariantLeftOut:
    """A channel with no variant, and why: the render failed, or there was no text."""

    channel: Channel
    reason: str


@dataclass(frozen=True, slots=True)
class MessageVariants:
    template: str
    version: int
    variants: tuple[ChannelVariant, ...]
    left_out: tuple[VariantLeftOut, ...]


class ChannelVariants:
    """One variant per channel the template has, or per channel asked for (interactor)."""

    def __init__(
        self,
        published: PublishedTemplates,
        templates: Templates,
        variables: TemplateVariables,
        contexts: CustomerContexts,
        rules: RuleSets,
    ) -> None:
        self.published = published
        self.templates = templates
        self.variables = variables
        self.contexts = contexts
        self.rules = rules

    async def __call__(
        self,
        key: str,
        *,
        customer_id: UUID | None = None,
        context: Mapping[str, Any] | None = None,
        channels: Sequence[Channel] = (),
        version: int | None = None,
        locale: str | None = None,
    ) -> MessageVariants:
        """With `customer_id`, the customer's context (and the `vars` of `context`, if given);
        else `context` as given. TemplateNotFound, or NotFound for an unknown customer."""
        template = await self.published.load(key)
        chosen = None
        if template is not None:
            chosen = template.latest if version is None else template.find_version(version)
        if chosen is None:
            raise TemplateNotFound(
                f"there is no template {key!r}"
                if template is None or version is None
                else f"template {key!r} has no version {version}"
            )
        scope: dict[str, Any] = {"customer": {}, "vars": {}, **(context or {})}
        if customer_id is not None:
            found = await self.contexts.of(customer_id)
            scope = {"customer": customer_facts(found), "vars": dict(scope.get("vars") or {})}
            locale = locale or found.profile.get("locale")
        wanted = tuple(dict.fromkeys(channels)) or chosen.channels
        asks = [
            RenderAsk(
                channel if channel in chosen.channels else chosen.channels[0],
                scope,
                key,
                locale,
                chosen.number,
            )
            for channel in wanted
        ]
        rules = await self.rules.current()
        rendered = await self.templates.render_all(asks)
        variants: list[ChannelVariant] = []
        left_out: list[VariantLeftOut] = []
        for channel, ask, answer in zip(wanted, asks, rendered, strict=True):
            if isinstance(answer, DomainError):
                left_out.append(VariantLeftOut(channel, str(answer)))
                continue
            tone = rules.tone_for(channel)
            read = read_by(self.variables, chosen, ask.channel, answer.locale)
            shaped = shaped_text(channel, ask.channel, answer, tone, read, scope)
            if shaped is None:
                left_out.append(
                    VariantLeftOut(channel, f"its {ask.channel} variant has no text to shape")
                )
                continue
            variants.append(ChannelVariant(shaped, tone))
        return MessageVariants(key, chosen.number, tuple(variants), tuple(left_out))
