"""What an agent marks a conversation with: its tags and its priority.

Each is a command of an agent of the conversation's team (a supervising key may act on any),
recorded as events with who acted (`Tagged`, `Untagged`, `PriorityChanged` with its reason), and
idempotent by its effect: the same command again records nothing (`changed` False). Tags are
keys (`refund`, `vip`), at most `MAX_TAGS` on a conversation; a change gives the whole set
(`tags`) or what to add and remove, so two agents adding a tag each at once both keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.conversations.actors import change_conversation
from domain.shared.errors import InvalidValue

if TYPE_CHECKING:
    from uuid import UUID

    from application.conversations.actors import Actor
    from domain.conversation.aggregate import Conversation
    from domain.conversation.vocabulary import Priority
    from ports.clock import Clock
    from ports.unit_of_work import UnitsOfWork

__all__ = ["ChangePriority", "ChangeTags", "Labels", "TagChange"]

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class TagChange:
    """The tags a conversation should hold (`tags`), or those to `add` and `remove`."""

    tags: frozenset[str] | None = None
    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.tags is not None and (self.add or self.remove):
            raise InvalidValue("tags", "give the whole set (`tags`) or `add`/`remove`, not both")
        if self.tags is None and not (self.add or self.remove):
            raise InvalidValue("tags", "give the whole set (`tags`), or tags to `add` or `remove`")


@dataclass(frozen=True, slots=True)
class Labels:
    """The conversation's tags and priority after the command."""

    conversation_id: UUID
    tags: tuple[str, ...]
    priority: Priority
    changed: bool  # False: it stood so already, nothing was recorded


def _labels(conversation: Conversation, changed: bool) -> Labels:
    return Labels(conversation.id, tuple(sorted(conversation.tags)), conversation.priority, changed)


class ChangeTags:
    """Sets, adds or removes a conversation's tags."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, conversation_id: UUID, actor: Actor, change: TagChange) -> Labels:
        def retag(conversation: Conversation) -> Labels:
            acting = actor.acting_on(conversation)
            if change.tags is not None:
                add, remove, field = change.tags, conversation.tags - change.tags, "tags"
            else:
                add, remove, field = change.add, change.remove, "add"
            changed = conversation.change_tags(
                acting, self.clock.now(), add=add, remove=remove, field=field
            )
            return _labels(conversation, changed)

        return await change_conversation(self.uows, conversation_id, retag)


class ChangePriority:
    """Sets a conversation's priority, with why: its team's queue orders by it."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(
        self, conversation_id: UUID, actor: Actor, priority: Priority, reason: str | None = None
    ) -> Labels:
        if reason is not None and len(reason) > MAX_REASON:
            raise InvalidValue("reason", f"longer than {MAX_REASON} characters")

        def reprioritise(conversation: Conversation) -> Labels:
            acting = actor.acting_on(conversation)
            why = reason or f"set by {acting.key}"
            changed = conversation.set_priority(priority, why, acting, self.clock.now())
            return _labels(conversation, changed)

        return await change_conversation(self.uows, conversation_id, reprioritise)
