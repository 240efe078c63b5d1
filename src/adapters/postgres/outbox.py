"""The outbox in a unit of work: new allowed messages, written in the events' statement."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.postgres.messages import (
    FALLBACKS,
    MESSAGES,
    OUTBOX,
    fallback_row,
    message_row,
    outbox_row,
)

if TYPE_CHECKING:
    from adapters.postgres.unit_of_work import PostgresUnitOfWork
    from domain.message.aggregate import Message
    from ports.delivery import FallbackPlan

__all__ = ["PostgresOutbox"]


class PostgresOutbox:
    """Rows of `outbox`, `messages` and `fallbacks` for each new message."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self.uow = uow

    def put(self, message: Message, fallback: FallbackPlan | None = None) -> None:
        self.uow.to_save[message.id] = message
        self.uow.rows_for(OUTBOX).append(outbox_row(message))
        self.uow.rows_for(MESSAGES).append(message_row(message))
        if fallback is not None:
            self.uow.rows_for(FALLBACKS).append(fallback_row(message, fallback))
