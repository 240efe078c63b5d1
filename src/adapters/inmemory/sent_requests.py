"""Send requests by their idempotency key, in memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ports.sent_requests import SentRequest

if TYPE_CHECKING:
    from collections.abc import Collection

    from adapters.inmemory.storage import InMemoryStorage

__all__ = ["InMemorySentRequests"]


class InMemorySentRequests:
    """SentRequests over the requests the in-memory units of work committed."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    async def by_keys(self, keys: Collection[str]) -> dict[str, SentRequest]:
        requests = self.storage.requests
        return {
            key: SentRequest(requests[key].message_id, requests[key].decision_id)
            for key in keys
            if key in requests
        }
