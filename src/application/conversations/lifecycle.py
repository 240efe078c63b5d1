"""Where an agent puts a conversation: snoozed until a time, resolved, reopened.

Each is a command of an agent of the conversation's team (a supervising key may act on any), and
each is idempotent by its effect: the same command again records nothing (`changed` False).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.conversations.actors import change_conversation
from domain.conversation.aggregate import Conversation, ConversationStatus, check_snooze
from domain.shared.errors import DomainError, InvalidValue, NotFound

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from uuid import UUID

    from application.conversations.actors import Actor
    from ports.clock import Clock
    from ports.snooze_timers import DueSnooze, SnoozeTimers
    from ports.unit_of_work import UnitsOfWork

__all__ = [
    "WAKER",
    "ConversationClosed",
    "ReopenConversation",
    "ResolveConversation",
    "SnoozeConversation",
    "StatusChanged",
    "WakeSnoozedConversations",
]

MAX_REASON = 500
WAKER = "snooze timer"
"""Who the events of a woken conversation record."""


class ConversationClosed(DomainError):
    """The conversation is resolved: reopen it first."""


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """Where the conversation stands after the command."""

    conversation_id: UUID
    status: ConversationStatus
    snoozed_until: datetime | None
    changed: bool  # False: it stood so already, nothing was recorded


def _stands(conversation: Conversation, changed: bool) -> StatusChanged:
    return StatusChanged(conversation.id, conversation.status, conversation.snoozed_until, changed)


def _reason(reason: str) -> str:
    if len(reason) > MAX_REASON:
        raise InvalidValue("reason", f"longer than {MAX_REASON} characters")
    return reason


async def _move(
    uows: UnitsOfWork,
    clock: Clock,
    conversation_id: UUID,
    actor: Actor,
    reason: str,
    step: Callable[[Conversation, str, str, datetime], bool],
) -> StatusChanged:
    """Resolves or reopens (`step`) the conversation as `actor`, with the reason."""
    reason = _reason(reason)

    def move(conversation: Conversation) -> StatusChanged:
        acting = actor.acting_on(conversation)
        changed = step(conversation, reason, acting.key, clock.now())
        return _stands(conversation, changed)

    return await change_conversation(uows, conversation_id, move)


class SnoozeConversation:
    """Sets a conversation aside until a time to come, a year ahead at most (`MAX_SNOOZE`); a
    message from the customer wakes it sooner. Its timer is set first: a snooze that commits always has one (`ports.snooze_timers`)."""

    def __init__(self, uows: UnitsOfWork, clock: Clock, timers: SnoozeTimers) -> None:
        self.uows = uows
        self.clock = clock
        self.timers = timers

    async def __call__(self, conversation_id: UUID, actor: Actor, until: datetime) -> StatusChanged:
        check_snooze(until, self.clock.now())
        await self.timers.set(conversation_id, until)

        def snooze(conversation: Conversation) -> StatusChanged:
            acting = actor.acting_on(conversation)
            if conversation.status is ConversationStatus.RESOLVED:
                raise ConversationClosed("a resolved conversation cannot be snoozed: reopen it")
            if (
                conversation.status is ConversationStatus.SNOOZED
                and conversation.snoozed_until == until
            ):
                return _stands(conversation, changed=False)
            conversation.snooze(until, acting.key, self.clock.now())
            return _stands(conversation, changed=True)

        return await change_conversation(self.uows, conversation_id, snooze)


class WakeSnoozedConversations:
    """Wakes the conversations whose snooze is over: they wait on us again. A timer set again
    meanwhile (snoozed for longer) waits for its new time; one with nothing to wake is
    dropped."""

    def __init__(
        self,
        uows: UnitsOfWork,
        clock: Clock,
        timers: SnoozeTimers,
        lease_seconds: float = 60.0,
    ) -> None:
        self.uows = uows
        self.clock = clock
        self.timers = timers
        self.lease_seconds = lease_seconds

    async def __call__(self, batch: int) -> int:
        """Wakes up to `batch` due conversations; how many timers it handled."""
        due = await self.timers.lease_due(self.clock.now(), batch, self.lease_seconds)
        for timer in due:
            await self._wake(timer)
        return len(due)

    async def _wake(self, timer: DueSnooze) -> None:
        def wake(conversation: Conversation) -> datetime | None:
            now = self.clock.now()
            if conversation.snoozed_until is not None and conversation.snoozed_until > now:
                return conversation.snoozed_until
            conversation.wake(WAKER, now)
            return None

        try:
            later = await change_conversation(self.uows, timer.conversation_id, wake)
        except NotFound:
            later = None
        if later is not None:
            await self.timers.set(timer.conversation_id, later)
        await self.timers.forget(timer)


class ResolveConversation:
    """Closes a conversation; the customer writing again, or a reply, reopens it."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(
        self, conversation_id: UUID, actor: Actor, reason: str = "resolved"
    ) -> StatusChanged:
        return await _move(
            self.uows, self.clock, conversation_id, actor, reason, Conversation.resolve
        )


class ReopenConversation:
    """Reopens a resolved conversation: it waits on us again."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(
        self, conversation_id: UUID, actor: Actor, reason: str = "reopened"
    ) -> StatusChanged:
        return await _move(
            self.uows, self.clock, conversation_id, actor, reason, Conversation.reopen
        )
