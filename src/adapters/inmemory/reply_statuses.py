"""The reply statuses process's ports in memory, over one installation's storage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.inmemory.campaign_enrollments import InMemoryStreams
from adapters.inmemory.processes import InMemoryAggregateSaves

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from uuid import UUID

    from adapters.inmemory.storage import InMemoryStorage

__all__ = ["InMemoryReplyMessages", "InMemoryReplyStatusPorts"]


class InMemoryReplyMessages:
    def __init__(self) -> None:
        self.threads: dict[UUID, UUID] = {}

    async def of(self, message_ids: Collection[UUID]) -> dict[UUID, UUID]:
        return {m: self.threads[m] for m in message_ids if m in self.threads}

    async def add(self, replies: Mapping[UUID, UUID]) -> None:
        for message_id, conversation_id in replies.items():
            self.threads.setdefault(message_id, conversation_id)


class InMemoryReplyStatusPorts:
    """A conversation told of a status is saved with its holder in the roster, as the unit of
    work saves one."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.conversations = InMemoryAggregateSaves(storage.events, storage.roster)
        self.streams = InMemoryStreams(storage.events)
        self.reply_messages = InMemoryReplyMessages()
