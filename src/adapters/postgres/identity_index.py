"""Which customer each identity belongs to, and the merges, in a PostgreSQL unit of work."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from domain.customer.identities import Identity
from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from datetime import datetime
    from uuid import UUID

    from adapters.postgres.unit_of_work import PostgresUnitOfWork

__all__ = ["PostgresIdentityIndex"]

_RESOLVE = """
SELECT i.type, i.value, i.customer_id
FROM identities i JOIN unnest($1::text[], $2::text[]) AS q(type, value) USING (type, value)
"""
_CLAIM = """
INSERT INTO identities (type, value, customer_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[])
ON CONFLICT DO NOTHING
RETURNING type, value
"""


def _in_identity_order(owned: tuple[Identity, UUID]) -> tuple[str, str]:
    """An identity's place in `Identity`'s own order, compared in C: a batch claims many."""
    return owned[0].type, owned[0].value


class PostgresIdentityIndex:
    """The `identities` and `customer_merges` tables, written in the unit's transaction."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self.uow = uow

    async def resolve(self, identities: Collection[Identity]) -> dict[Identity, UUID]:
        if not identities:
            return {}
        types = [i.type for i in identities]
        values = [i.value for i in identities]
        rows = await self.uow.reader.fetch(_RESOLVE, types, values)
        return {Identity(row[0], row[1]): row[2] for row in rows}

    async def claim(self, owners: Mapping[Identity, UUID]) -> None:
        ordered = sorted(owners.items(), key=_in_identity_order)
        rows = await (await self.uow.begun()).fetch(
            _CLAIM,
            [identity.type for identity, _ in ordered],
            [identity.value for identity, _ in ordered],
            [owner for _, owner in ordered],
        )
        if len(rows) != len(ordered):
            raise ConcurrencyConflict("an identity was claimed by a concurrent writer")

    async def record_merge(self, merged_id: UUID, survivor_id: UUID) -> None:
        conn = await self.uow.begun()
        await conn.execute(
            "UPDATE identities SET customer_id = $2 WHERE customer_id = $1", merged_id, survivor_id
        )
        await conn.execute(
            "UPDATE customer_merges SET survivor_id = $2 WHERE survivor_id = $1",
            merged_id,
            survivor_id,
        )
        try:
            await conn.execute(
                "INSERT INTO customer_merges (merged_id, survivor_id) VALUES ($1, $2)",
                merged_id,
                survivor_id,
            )
        except asyncpg.UniqueViolationError as error:
            raise ConcurrencyConflict("the customer was merged by a concurrent writer") from error

    async def erase(
        self, customer_ids: Collection[UUID], identities: Collection[Identity], at: datetime
    ) -> None:
        conn = await self.uow.begun()
        await conn.execute(
            "DELETE FROM identities WHERE customer_id = ANY($1::uuid[])", list(customer_ids)
        )
        # What they were to be sent later, deferred or as a fallback: its content too.
        for table in ("deferred_messages", "fallbacks"):
            await conn.execute(
                f"DELETE FROM {table} WHERE customer_id = ANY($1::uuid[])", list(customer_ids)
            )
        await self.uow.events.codec.keys.erase(conn, customer_ids, identities, at)
