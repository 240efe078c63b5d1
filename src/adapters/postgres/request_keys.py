"""Send requests by their idempotency key, written in the statement of their decision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.postgres.event_store import SideTable
from ports.unit_of_work import EarlierRequest

if TYPE_CHECKING:
    from collections.abc import Collection

    from adapters.postgres.unit_of_work import PostgresUnitOfWork

__all__ = ["REQUESTS", "PostgresRequestKeys"]

REQUESTS = SideTable(
    "INSERT INTO message_requests"
    " (idempotency_key, message_id, customer_id, decision_id, fingerprint)",
    ("text", "uuid", "uuid", "uuid", "bytea"),
)
_EARLIER = """
SELECT message_id, customer_id, decision_id, fingerprint FROM message_requests
WHERE idempotency_key = $1
"""
_EARLIER_ALL = """
SELECT idempotency_key, message_id, customer_id, decision_id, fingerprint FROM message_requests
WHERE idempotency_key = ANY($1::text[])
"""


class PostgresRequestKeys:
    """The `message_requests` table; its primary key fails a racing twin's commit."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self.uow = uow

    async def earlier(self, idempotency_key: str) -> EarlierRequest | None:
        # A plain read: a racing twin is caught by the key's primary key when this commits.
        row = await self.uow.reader.fetchrow(_EARLIER, idempotency_key)
        return None if row is None else EarlierRequest(row[0], row[1], row[2], row[3])

    async def earlier_all(self, idempotency_keys: Collection[str]) -> dict[str, EarlierRequest]:
        rows = await self.uow.reader.fetch(_EARLIER_ALL, list(idempotency_keys))
        return {row[0]: EarlierRequest(row[1], row[2], row[3], row[4]) for row in rows}

    def add(self, idempotency_key: str, earlier: EarlierRequest) -> None:
        self.uow.rows_for(REQUESTS).append(
            (
                idempotency_key,
                earlier.message_id,
                earlier.customer_id,
                earlier.decision_id,
                earlier.fingerprint,
            )
        )
