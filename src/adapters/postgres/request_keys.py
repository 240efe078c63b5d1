"""Send requests by their idempotency key, written in the statement of their decision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.postgres.event_store import SideTable
from ports.unit_of_work import EarlierRequest

if TYPE_CHECKING:
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


class PostgresRequestKeys:
    """The `message_requests` table; its primary key fails a racing twin's commit."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self.uow = uow

    async def earlier(self, idempotency_key: str) -> EarlierRequest | None:
        # A plain read: a racing twin is caught by the key's primary key when this commits.
        row = await self.uow.reader.fetchrow(_EARLIER, idempotency_key)
        return None if row is None else EarlierRequest(row[0], row[1], row[2], row[3])

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
