"""Templates as published: read from their streams, listed from the table their commits write."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, cast

from adapters.postgres.event_store import PostgresEventStore
from domain.templates.aggregate import Template, is_template_key, template_id
from ports.templates import TemplateSummary

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresTemplates"]

_SUMMARIES = """
SELECT key, template_id, latest_version, description, updated_at FROM templates ORDER BY key
"""


class PostgresTemplates:
    """Reads keep each template for `fresh_for` seconds, unless told it was published anew.

    Publishing goes through the unit of work, which writes the `templates` listing
    (`listings.TEMPLATES`) in the statement of the new version's events.
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

    def forget(self, key: str) -> None:
        self._cached.pop(key, None)

    async def summaries(self) -> list[TemplateSummary]:
        return [TemplateSummary(*row) for row in await self.pool.fetch(_SUMMARIES)]
