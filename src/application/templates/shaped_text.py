"""A template's text rendered for one channel and shaped by its tone, with the context facts it
read: what a reply suggestion and a campaign send's channel variant both are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domain.policy.tone import ShapeChange, shape
from domain.policy.vocabulary import Channel

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from domain.policy.tone import ChannelTone
    from domain.templates.aggregate import TemplateVersion
    from ports.templates import RenderedContent, TemplateVariables

__all__ = ["ShapedText", "read_by", "shaped_text", "used_facts"]


@dataclass(frozen=True, slots=True)
class ShapedText:
    """The text for `channel`, from the template's `written_for` variant (the channel itself,
    or the template's first when it has none for it), shaped, with the facts it `used` and the
    `changes` shaping made."""

    channel: Channel
    written_for: Channel
    locale: str | None
    subject: str | None
    text: str
    used: tuple[str, ...]
    changes: tuple[ShapeChange, ...]


def shaped_text(
    channel: Channel,
    written_for: Channel,
    rendered: RenderedContent,
    tone: ChannelTone,
    read: Collection[str],
    scope: Mapping[str, Any],
) -> ShapedText | None:
    """The rendered text part (the body, else a push title) shaped to the tone, with the
    variables `read` that `scope` holds; None when there is no text to shape."""
    shaped = shape(rendered.content.body or rendered.content.title or "", tone)
    if not shaped.text:
        return None
    return ShapedText(
        channel,
        written_for,
        rendered.locale,
        rendered.content.subject if channel is Channel.EMAIL else None,  # only email has one
        shaped.text,
        used_facts(read, scope),
        shaped.changes,
    )


def used_facts(read: Collection[str], scope: Mapping[str, Any]) -> tuple[str, ...]:
    """The variables a template read that the context holds (not missing, not null), sorted."""
    held = []
    for path in read:
        root, _, name = path.partition(".")
        values = scope.get(root)
        if not name:
            if values:
                held.append(path)
        elif isinstance(values, dict) and values.get(name) is not None:
            held.append(path)
    return tuple(sorted(held))


def read_by(
    variables: TemplateVariables, version: TemplateVersion, channel: Channel, locale: str | None
) -> set[str]:
    """The variables the version's variant for the channel and locale reads, in every field."""
    variant = version.variant_for(channel, locale)
    read: set[str] = set()
    for _, text in () if variant is None else variant.texts():
        read |= variables.read_by(text)
    return read
