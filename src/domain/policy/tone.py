"""A channel's tone as data, and the pure function that shapes a rendered text to it.

WhatsApp and SMS are short, one paragraph; email is a subject and paragraphs. Shaping
collapses structure the channel has no room for, strips emoji where they are not allowed,
drops links beyond what the channel allows, and cuts at a word boundary under the limit with an
ellipsis, and it says what it changed and why. Shaping a shaped text changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue

__all__ = [
    "DEFAULT_TONES",
    "ELLIPSIS",
    "ChannelTone",
    "ShapeChange",
    "Shaped",
    "Structure",
    "count_links",
    "has_emoji",
    "shape",
]

ELLIPSIS = "…"


class Structure(StrEnum):
    """How a channel's text is laid out."""

    PARAGRAPHS = "paragraphs"  # blank lines between paragraphs are kept
    ONE_PARAGRAPH = "one_paragraph"  # everything on one line


@dataclass(frozen=True, slots=True)
class ChannelTone:
    """What a text on a channel may be: its length, layout, emoji and links."""

    max_length: int
    structure: Structure = Structure.ONE_PARAGRAPH
    emoji: bool = False
    links: bool = True
    max_links: int | None = None  # None: as many as the text has

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise InvalidValue("max_length", f"{self.max_length} is not a length: at least 1")
        if self.max_links is not None and self.max_links < 0:
            raise InvalidValue("max_links", f"{self.max_links} is not a count: at least 0")

    @property
    def links_allowed(self) -> int | None:
        """How many links a text may keep; None for any number."""
        return 0 if not self.links else self.max_links


DEFAULT_TONES: dict[Channel, ChannelTone] = {
    Channel.EMAIL: ChannelTone(5_000, Structure.PARAGRAPHS, emoji=False, links=True, max_links=5),
    Channel.SMS: ChannelTone(320, Structure.ONE_PARAGRAPH, emoji=False, links=True, max_links=1),
    Channel.WHATSAPP: ChannelTone(
        700, Structure.ONE_PARAGRAPH, emoji=True, links=True, max_links=1
    ),
    Channel.PUSH: ChannelTone(180, Structure.ONE_PARAGRAPH, emoji=True, links=False),
    Channel.VOICE: ChannelTone(600, Structure.ONE_PARAGRAPH, emoji=False, links=False),
    Channel.CHAT: ChannelTone(1_000, Structure.PARAGRAPHS, emoji=True, links=True, max_links=3),
}
"""The tone of a channel whose rule set says none."""


@dataclass(frozen=True, slots=True)
class ShapeChange:
    """One change shaping made: `collapsed`, `emoji_stripped`, `links_dropped` or `cut`, and why."""

    change: str
    reason: str


@dataclass(frozen=True, slots=True)
class Shaped:
    """The shaped text and every change made to it (none: it fit as it was)."""

    text: str
    changes: tuple[ShapeChange, ...]


_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff\ufe0f\u200d\u20e3"
    "\U000e0020-\U000e007f]"
)
_LINK = re.compile(r"(?:https?://|www\.)[^\s]+?(?=[.,;:!?)\]]*(?:\s|$))", re.IGNORECASE)
_CLOSING = ".,;:!?)]"
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")


def has_emoji(text: str) -> bool:
    return _EMOJI.search(text) is not None


def count_links(text: str) -> int:
    return len(_LINK.findall(text))


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text.strip()) if p.split()]


def _laid_out(text: str, structure: Structure) -> str:
    paragraphs = _paragraphs(text)
    glue = "\n\n" if structure is Structure.PARAGRAPHS else " "
    return glue.join(paragraphs)


def _cut(text: str, limit: int) -> str:
    """The longest prefix ending at a word boundary, with the ellipsis, within `limit`."""
    room = limit - len(ELLIPSIS)
    if room <= 0:
        return ELLIPSIS[:limit]
    head = text[: room + 1]
    boundary = max(head.rfind(" "), head.rfind("\n"))
    kept = text[:boundary] if boundary > 0 else text[:room]
    return kept.rstrip() + ELLIPSIS


def shape(text: str, tone: ChannelTone) -> Shaped:
    """The text as the channel's tone allows it, and what was changed and why."""
    changes: list[ShapeChange] = []
    if not tone.emoji and has_emoji(text):
        found = len(_EMOJI.findall(text))
        text = _EMOJI.sub("", text)
        changes.append(ShapeChange("emoji_stripped", f"{found} emoji: the channel allows none"))
    allowed = tone.links_allowed
    if allowed is not None:
        links = list(_LINK.finditer(text))
        if len(links) > allowed:
            dropped = links[allowed:]
            for match in reversed(dropped):
                head, tail = text[: match.start()], text[match.end() :]
                if not tail or tail[0] in _CLOSING:  # "see LINK." leaves "see.", not "see ."
                    head = head.rstrip(" \t")
                text = head + tail
            why = "the channel allows none" if allowed == 0 else f"the channel allows {allowed}"
            changes.append(ShapeChange("links_dropped", f"{len(dropped)} link(s): {why}"))
    if tone.structure is Structure.ONE_PARAGRAPH and len(_paragraphs(text)) > 1:
        changes.append(
            ShapeChange(
                "collapsed",
                f"{len(_paragraphs(text))} paragraphs made one: the channel is one paragraph",
            )
        )
    text = _laid_out(text, tone.structure)
    if len(text) > tone.max_length:
        changes.append(
            ShapeChange(
                "cut",
                f"{len(text)} characters cut at a word boundary: the channel allows "
                f"{tone.max_length}",
            )
        )
        text = _cut(text, tone.max_length)
    return Shaped(text, tuple(changes))
