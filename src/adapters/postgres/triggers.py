"""Triggers as listed with their definitions; their firings as a projection."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from datetime import datetime
from typing import TYPE_CHECKING, cast
from uuid import UUID

from domain.catalog import topic_of
from domain.triggers.aggregate import Firing
from ports.triggers import FiringPage, FiringRecord, InvalidFiringCursor, TriggerSummary

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

    from adapters.postgres.event_store import RecordedEvent
    from ports.projections import LoggedEvent

__all__ = ["PostgresTriggers", "TriggerFirings"]

_SUMMARIES = """
SELECT key, trigger_id, name, description, version, definition, updated_at, deleted
FROM triggers WHERE ($1::text IS NULL AND NOT deleted) OR key = $1 ORDER BY key
"""
_FIELDS = tuple(field.name for field in dataclasses.fields(FiringRecord))
_FIRING_COLUMNS = ", ".join(_FIELDS)
_FIRINGS = f"""
SELECT {_FIRING_COLUMNS}, position FROM trigger_firings
WHERE trigger_id = $1 AND ($2::bigint IS NULL OR position < $2)
ORDER BY position DESC LIMIT $3
"""
_FIRED = topic_of(Firing.Fired)


class PostgresTriggers:
    """Triggers by key and their firings (TriggerReadModel); definitions are listed in the
    commit that records them (`listings.TRIGGERS`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def summaries(self) -> list[TriggerSummary]:
        return [_summary(row) for row in await self.pool.fetch(_SUMMARIES, None)]

    async def summary(self, key: str) -> TriggerSummary | None:
        row = await self.pool.fetchrow(_SUMMARIES, key)
        return _summary(row) if row is not None else None

    async def firings(self, trigger_id: UUID, *, after: str | None, limit: int) -> FiringPage:
        rows = await self.pool.fetch(_FIRINGS, trigger_id, _uncursor(after), limit + 1)
        firings = [_firing(row) for row in rows[:limit]]
        more = len(rows) > limit
        return FiringPage(firings, _cursor(rows[limit - 1]["position"]) if more else None)


def _summary(row: asyncpg.Record) -> TriggerSummary:
    return TriggerSummary(
        row["key"],
        row["trigger_id"],
        row["name"],
        row["description"],
        row["version"],
        json.loads(row["definition"]),
        row["updated_at"],
        row["deleted"],
    )


def _firing(row: asyncpg.Record) -> FiringRecord:
    return FiringRecord(**{name: row[name] for name in _FIELDS})


def _cursor(position: int) -> str:
    return base64.urlsafe_b64encode(position.to_bytes(8, "big")).decode().rstrip("=")


def _uncursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, binascii.Error):
        raw = b""
    position = int.from_bytes(raw, "big", signed=True)
    if len(raw) != 8 or position < 0:  # a PostgreSQL bigint: eight bytes, the first bit the sign
        raise InvalidFiringCursor(f"{cursor!r} is not a cursor from a previous page")
    return position


class TriggerFirings:
    """Every firing, by trigger, from the Fired events the matcher records; rebuildable."""

    name = "trigger_firings"
    topics = frozenset({_FIRED})

    def __init__(self, suffix: str = "") -> None:
        self.table = "trigger_firings" + suffix
        self.tables = (self.table,)

    def writing_to(self, suffix: str) -> TriggerFirings:
        return TriggerFirings(suffix)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        # The runner hands out RecordedEvents; their log position orders the read model.
        rows = [_firing_row(event) for event in cast("Sequence[RecordedEvent]", events)]
        await conn.execute(
            f"INSERT INTO {self.table} (trigger_id, {_FIRING_COLUMNS}, position)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::uuid[], $5::text[],"
            " $6::uuid[], $7::int4[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[],"
            " $11::text[], $12::text[], $13::text[], $14::text[], $15::int8[])"
            " ON CONFLICT (firing_id) DO NOTHING",
            *(list(column) for column in zip(*rows, strict=True)),
        )


def _firing_row(event: RecordedEvent) -> tuple[object, ...]:
    data = event.data
    return (
        UUID(data["trigger_id"]),
        event.stream_id,
        data["trigger_version"],
        UUID(data["customer_id"]),
        data["source_kind"],
        UUID(data["source_stream_id"]),
        data["source_version"],
        datetime.fromisoformat(data["source_occurred_at"]),
        datetime.fromisoformat(data["source_recorded_at"]),
        event.recorded_at,
        data["signal_type"],
        data["signal_event_id"],
        data["segment_key"],
        data["exit_reason"],
        event.position,
    )
