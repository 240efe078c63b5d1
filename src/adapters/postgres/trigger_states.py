"""The trigger matcher's states, in `trigger_matcher_state`, on its runner's connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from domain.triggers.definition import TriggerOn, on_document
from ports.trigger_matching import KnownTrigger

if TYPE_CHECKING:
    from collections.abc import Collection

    import asyncpg

__all__ = ["PostgresTriggerStates"]

_SEEN = "SELECT coalesce(sum(events_seen), 0) FROM trigger_matcher_state"
_STATE = (
    "SELECT trigger_id, key, version, definition, active, events_seen FROM trigger_matcher_state"
)
_SAVE_STATE = """
INSERT INTO trigger_matcher_state (trigger_id, key, version, definition, active, events_seen)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int4[], $4::jsonb[], $5::bool[], $6::int4[])
ON CONFLICT (trigger_id) DO UPDATE
SET key = EXCLUDED.key, version = EXCLUDED.version, definition = EXCLUDED.definition,
    active = EXCLUDED.active, events_seen = EXCLUDED.events_seen
"""
_on = msgspec.json.Decoder(TriggerOn)
_encoder = msgspec.json.Encoder()


class PostgresTriggerStates:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def seen(self) -> int:
        seen: int = await self.conn.fetchval(_SEEN)
        return seen

    async def load(self) -> list[KnownTrigger]:
        return [
            KnownTrigger(
                row["trigger_id"],
                row["key"],
                row["version"],
                _on.decode(row["definition"]),
                row["active"],
                row["events_seen"],
            )
            for row in await self.conn.fetch(_STATE)
        ]

    async def save(self, triggers: Collection[KnownTrigger]) -> None:
        rows = [_row(known) for known in triggers]
        await self.conn.execute(_SAVE_STATE, *(list(c) for c in zip(*rows, strict=True)))


def _row(known: KnownTrigger) -> tuple[Any, ...]:
    definition = _encoder.encode(on_document(known.on)).decode()
    return (
        known.trigger_id,
        known.key,
        known.version,
        definition,
        known.active,
        known.events_seen,
    )
