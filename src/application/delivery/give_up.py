"""Withdrawing a message its sender no longer wants sent, if no provider has it yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.message.aggregate import Message, MessageStatus

if TYPE_CHECKING:
    from uuid import UUID

    from ports.clock import Clock
    from ports.unit_of_work import UnitsOfWork

__all__ = ["GiveUpMessage"]


class GiveUpMessage:
    """For a journey that waited for a send's delivery and moves on to another send instead
    (`on_not_delivered`): the first message, if still in the outbox, is withdrawn (`superseded`,
    with the reason) in this commit; if a dispatcher holds it, the dispatcher withdraws it
    unless a provider accepts it in that round. One a provider accepted cannot be taken back.
    Its channel fallback is dropped too: the caller sends what comes next itself."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, message_id: UUID, reason: str) -> bool:
        """Whether the message will never go (withdrawn now, or as soon as its dispatcher's
        round ends without an acceptance); False if a provider has it, or it ended already."""

        async def attempt() -> bool:
            async with self.uows() as uow:
                messages = uow.repository(Message)
                message = (await messages.get([message_id])).get(message_id)
                if message is None:
                    return False
                if message.status is MessageStatus.SUPERSEDED:
                    return True
                now = self.clock.now()
                if not message.give_up(reason, now):
                    return False
                if await uow.outbox.withdraw(message_id, now):
                    message.withdraw(now)
                messages.add(message)
                uow.outbox.forget_fallback(message_id)
                return True

        return await retry_on_conflict(attempt)
