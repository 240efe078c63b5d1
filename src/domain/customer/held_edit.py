"""What an operator's edit changed in a held message: as held, and as approved."""

from __future__ import annotations

from dataclasses import dataclass

from domain.message.content import Content
from domain.policy.vocabulary import Channel

__all__ = ["HELD_EDIT_PERSONAL", "HeldEdit", "HeldVersion", "RenderedFor"]


@dataclass(frozen=True, slots=True)
class RenderedFor:
    """One channel's content of the message, as rendered, with the template it came from."""

    channel: Channel
    content: Content
    template: str | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class HeldVersion:
    """The message at one moment: the channels it may go on, and what it says on each."""

    channels: tuple[Channel, ...]
    contents: tuple[RenderedFor, ...] = ()


@dataclass(frozen=True, slots=True)
class HeldEdit:
    """The held message before the operator's edit, and after it, as it was approved."""

    before: HeldVersion
    after: HeldVersion


HELD_EDIT_PERSONAL = tuple(
    f"edit.{side}.contents[].content.{field}"
    for side in ("before", "after")
    for field in ("subject", "body", "html", "title", "whatsapp_parameters[]")
)
"""The personal values of an edit, as paths in the event that records it: what the message
says, as `Message.Queued` seals them."""
