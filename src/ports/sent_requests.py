"""Send requests as recorded by their idempotency key: the message and decision each made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection
    from uuid import UUID

__all__ = ["SentRequest", "SentRequests"]


@dataclass(frozen=True, slots=True)
class SentRequest:
    """What a send request made: its message (follow it at /v1/messages) and its decision."""

    message_id: UUID
    decision_id: UUID


class SentRequests(Protocol):
    """Reads the send requests' idempotency keys; a campaign step's is its dedup key."""

    async def by_keys(self, keys: Collection[str]) -> dict[str, SentRequest]:
        """The requests made under those keys; a key nothing was decided under is left out."""
        ...
