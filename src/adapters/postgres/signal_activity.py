"""The signal_activity read models: every customer's signals, and counts per type and hour."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.customer.aggregate import Customer
from domain.signals.aggregate import Signal

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

    from ports.projections import LoggedEvent

__all__ = ["SignalActivity"]

_RECORDED = get_topic(Signal.Recorded)
_MERGED = get_topic(Customer) + ".MergedInto"

# A merged customer's signals belong to the survivor, also those recorded after the merge.
_STORE = """
WITH incoming AS (
    SELECT coalesce(m.survivor_id, u.customer_id) AS customer_id, u.signal_type, u.occurred_at,
           u.signal_id, u.properties
    FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::uuid[], $5::jsonb[])
         AS u(customer_id, signal_type, occurred_at, signal_id, properties)
    LEFT JOIN customer_merges m ON m.merged_id = u.customer_id
), stored AS (
    INSERT INTO {signals} SELECT * FROM incoming ON CONFLICT DO NOTHING
    RETURNING customer_id, signal_type, occurred_at
)
INSERT INTO {counters} (customer_id, signal_type, hour, count, last_at)
SELECT customer_id, signal_type, date_trunc('hour', occurred_at, 'UTC'), count(*), max(occurred_at)
FROM stored GROUP BY 1, 2, 3
ON CONFLICT (customer_id, signal_type, hour) DO UPDATE
SET count = {counters}.count + EXCLUDED.count,
    last_at = greatest({counters}.last_at, EXCLUDED.last_at)
"""
_MOVE = """
WITH moved AS (
    DELETE FROM {counters} WHERE customer_id = $1
    RETURNING signal_type, hour, count, last_at
)
INSERT INTO {counters} (customer_id, signal_type, hour, count, last_at)
SELECT $2, signal_type, hour, count, last_at FROM moved
ON CONFLICT (customer_id, signal_type, hour) DO UPDATE
SET count = {counters}.count + EXCLUDED.count,
    last_at = greatest({counters}.last_at, EXCLUDED.last_at);
"""
_MOVE_SIGNALS = "UPDATE {signals} SET customer_id = $2 WHERE customer_id = $1"


class SignalActivity:
    """Signals by customer, type and time (`customer_signals`), and hourly counts of them
    (`signal_counters`) for rolling windows; a merge moves the merged customer's rows."""

    name = "signal_activity"
    topics = frozenset({_RECORDED, _MERGED})

    def __init__(self, suffix: str = "") -> None:
        self.signals = "customer_signals" + suffix
        self.counters = "signal_counters" + suffix
        self.tables = (self.signals, self.counters)
        self._store = _STORE.format(signals=self.signals, counters=self.counters)
        self._move = _MOVE.format(counters=self.counters)
        self._move_signals = _MOVE_SIGNALS.format(signals=self.signals)

    def writing_to(self, suffix: str) -> SignalActivity:
        return SignalActivity(suffix)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        pending: list[LoggedEvent] = []
        for event in events:
            if event.topic == _RECORDED:
                pending.append(event)
                continue
            await self._store_signals(conn, pending)
            pending = []
            survivor = UUID(event.data["survivor_id"])
            await conn.execute(self._move_signals, event.stream_id, survivor)
            await conn.execute(self._move, event.stream_id, survivor)
        await self._store_signals(conn, pending)

    async def _store_signals(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        if not events:
            return
        columns: tuple[list[Any], ...] = ([], [], [], [], [])
        for event in events:
            data = event.data
            columns[0].append(UUID(data["customer_id"]))
            columns[1].append(data["signal_type"])
            columns[2].append(datetime.fromisoformat(data["occurred_at"]))
            columns[3].append(event.stream_id)
            columns[4].append(json.dumps(data["properties"]))
        await conn.execute(self._store, *columns)
