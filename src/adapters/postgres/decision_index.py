"""Decisions findable by id, indexed in the statement that records them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.postgres.event_store import SideTable

if TYPE_CHECKING:
    from uuid import UUID

    from adapters.postgres.unit_of_work import PostgresUnitOfWork

__all__ = ["DECISIONS", "PostgresDecisionIndex"]

DECISIONS = SideTable(
    "INSERT INTO decisions (decision_id, message_id, customer_id, stream_version)",
    ("uuid", "uuid", "uuid", "int4"),
)


class PostgresDecisionIndex:
    """Rows of `decisions`, pointing at the customer's stream version that records each."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self.uow = uow

    def add(
        self, decision_id: UUID, message_id: UUID, customer_id: UUID, stream_version: int
    ) -> None:
        self.uow.rows_for(DECISIONS).append((decision_id, message_id, customer_id, stream_version))
