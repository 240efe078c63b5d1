"""What the reply statuses process keeps and reads: which messages are agents' replies in which
conversation, the streams it reads the replies and conversations from, and where it saves the
conversations it tells of their replies' progress."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from uuid import UUID

    from ports.campaign_enrollments import Streams
    from ports.processes import AggregateSaves

__all__ = ["ReplyMessages", "ReplyStatusPorts"]


class ReplyMessages(Protocol):
    """The outbound messages of every thread: a message id to its conversation's id."""

    async def of(self, message_ids: Collection[UUID]) -> dict[UUID, UUID]:
        """The conversations of those of these messages that are in a thread."""
        ...

    async def add(self, replies: Mapping[UUID, UUID]) -> None:
        """Notes these messages in these conversations; one noted already is left as it is."""
        ...


class ReplyStatusPorts(Protocol):
    """The ports the reply statuses process works through, bound to one transaction."""

    @property
    def conversations(self) -> AggregateSaves:
        """Where the conversations told of a status are saved, as every writer saves one."""
        ...

    @property
    def streams(self) -> Streams:
        """Messages and conversations, as last committed."""
        ...

    @property
    def reply_messages(self) -> ReplyMessages: ...
