"""Send requests by their idempotency key, read from `message_requests`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ports.sent_requests import SentRequest

if TYPE_CHECKING:
    from collections.abc import Collection

    import asyncpg

__all__ = ["PostgresSentRequests"]

_BY_KEYS = """
SELECT idempotency_key, message_id, decision_id FROM message_requests
WHERE idempotency_key = ANY($1::text[])
"""


class PostgresSentRequests:
    """SentRequests on the table the send's decision writes its key to; never writes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def by_keys(self, keys: Collection[str]) -> dict[str, SentRequest]:
        if not keys:
            return {}
        rows = await self.pool.fetch(_BY_KEYS, list(keys))
        return {row[0]: SentRequest(row[1], row[2]) for row in rows}
