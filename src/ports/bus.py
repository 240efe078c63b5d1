"""The message bus other services listen on: Chorus publishes its outbound events there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["EventPublisher", "OutboundMessage", "PublishFailed"]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message for the bus; `message_id` is stable, so the bus can drop a republished copy."""

    subject: str
    payload: bytes
    message_id: str
    headers: Mapping[str, str] = field(default_factory=dict)


class PublishFailed(Exception):
    """The bus did not confirm that it stored every message; some may be stored all the same."""


class EventPublisher(Protocol):
    """Publishes messages durably: it returns only once the bus has stored every one."""

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        """Sends all at once, in no particular order, and waits for every acknowledgement;
        raises PublishFailed when any is missing, so the caller publishes them all again."""
        ...
