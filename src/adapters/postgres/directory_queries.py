"""Searches the customer_directory and counts from signal_counters."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from adapters.cursors import cursor_of, uuid_of_cursor
from domain.customer.profile import PROFILE_FIELDS
from ports.directory import ActivityCount, DirectoryEntry, DirectoryPage

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    import asyncpg

    from ports.directory import DirectorySearch

__all__ = ["PostgresDirectory"]

_COLUMNS = "d.customer_id, d.identities, d.attributes, d.updated_at, " + ", ".join(
    f"d.{name}" for name in PROFILE_FIELDS
)
_ACTIVITY = """
SELECT c.signal_type, coalesce(sum(c.count) FILTER (WHERE c.hour >= date_trunc('hour', $2, 'UTC')), 0)
       AS count, max(c.last_at) AS last_at
FROM signal_counters c
WHERE c.customer_id = $1 AND strpos(c.signal_type, '/') = 0  -- classified messages are no signals
GROUP BY c.signal_type ORDER BY c.signal_type
"""


class PostgresDirectory:
    """The Directory port over the read models' tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def search(
        self, criteria: DirectorySearch, *, after: str | None, limit: int
    ) -> DirectoryPage:
        where = ["d.merged_into IS NULL"]
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        start = uuid_of_cursor(after)
        if start is not None:
            where.append(f"d.customer_id > {arg(start)}")
        if criteria.identity is not None:
            where.append(f"d.identities @> ARRAY[{arg(criteria.identity)}::text]")
        if criteria.identity_type is not None:
            where.append(
                f"EXISTS (SELECT 1 FROM unnest(d.identities) i"
                f" WHERE i LIKE {arg(criteria.identity_type)} || ':%')"
            )
        for name, value in criteria.attributes.items():
            if name in PROFILE_FIELDS:
                where.append(f"d.{name} = {arg(str(value))}")
            else:
                where.append(f"d.attributes @> {arg(json.dumps({name: value}))}::jsonb")
        if criteria.segment_id is not None:
            where.append(
                "EXISTS (SELECT 1 FROM segment_members m WHERE m.customer_id = d.customer_id"
                f" AND m.segment_id = {arg(criteria.segment_id)})"
            )
        query = (
            f"SELECT {_COLUMNS} FROM customer_directory d WHERE {' AND '.join(where)}"
            f" ORDER BY d.customer_id LIMIT {arg(limit + 1)}"
        )
        rows = await self.pool.fetch(query, *args)
        entries = [
            DirectoryEntry(
                row["customer_id"],
                list(row["identities"]),
                {name: row[name] for name in PROFILE_FIELDS},
                json.loads(row["attributes"]),
                row["updated_at"],
            )
            for row in rows[:limit]
        ]
        more = len(rows) > limit
        return DirectoryPage(entries, cursor_of(entries[-1].customer_id) if more else None)

    async def activity(self, customer_id: UUID, since: datetime) -> list[ActivityCount]:
        rows = await self.pool.fetch(_ACTIVITY, customer_id, since)
        return [ActivityCount(row["signal_type"], row["count"], row["last_at"]) for row in rows]
