"""Templates as event streams, listed from a lookup table written in the same statement."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, cast

from adapters.postgres.event_store import PostgresEventStore, SideTable
from domain.templates.aggregate import Template, is_template_key, template_id
from ports.templates import TemplateSummary

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresTemplates"]

_LOOKUP = SideTable(
    insert="INSERT INTO templates (key, template_id, latest_version, description, updated_at)",
    types=("text", "uuid", "int4", "text", "timestamptz"),
    on_conflict=(
        "ON CONFLICT (key) DO UPDATE SET latest_version = EXCLUDED.latest_version, "
        "description = EXCLUDED.description, updated_at = EXCLUDED.updated_at"
    ),
)
_SUMMARIES = """
SELECT key, template_id, latest_version, description, updated_at FROM templates ORDER BY key
"""


class PostgresTemplates:
    """Reads keep each template for `fresh_for` seconds; publishing is a version race on the stream.

    Two publishers of the same next version collide on the events' primary key: the loser
    gets a ConcurrencyConflict and nothing of its statement, lookup row included, is written.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        events: PostgresEventStore | None = None,
        *,
        fresh_for: float = 1.0,
        capacity: int = 1000,
    ) -> None:
        self.pool = pool
        self.events = events or PostgresEventStore()
        self.fresh_for = fresh_for
        self.capacity = capacity
        self._cached: OrderedDict[str, tuple[float, Template]] = OrderedDict()

    async def get(self, key: str) -> Template | None:
        cached = self._cached.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.fresh_for:
            self._cached.move_to_end(key)
            return cached[1]
        template = await self.load(key)
        if template is None:
            self._cached.pop(key, None)
            return None
        self._cached[key] = (time.monotonic(), template)
        self._cached.move_to_end(key)
        while len(self._cached) > self.capacity:
            self._cached.popitem(last=False)
        return template

    async def load(self, key: str) -> Template | None:
        if not is_template_key(key):
            return None
        stream = template_id(key)
        loaded = await self.events.load(self.pool, [stream])
        found = loaded.get(stream)
        return cast("Template", found) if found is not None else None

    async def save(self, template: Template) -> None:
        latest = template.latest
        if not template.pending_events or latest is None:
            return
        row = (template.key, template.id, latest.number, latest.description, latest.published_at)
        async with self.pool.acquire() as conn:
            await self.events.append(
                cast("asyncpg.Connection", conn), [template], side_rows={_LOOKUP: [row]}
            )
        self._cached.pop(template.key, None)

    async def summaries(self) -> list[TemplateSummary]:
        return [TemplateSummary(*row) for row in await self.pool.fetch(_SUMMARIES)]
