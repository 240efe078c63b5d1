"""The signal_activity read models: every customer's signals, and counts per type and hour.

A customer's classified messages (`Customer.MessageClassified`) are kept with their signals,
under `CLASSIFIED_SIGNAL` (domain/customer/classified.py), for the `classified` segment
condition and the customer context."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.customer.classified import CLASSIFIED_SIGNAL, classified_properties
from domain.shared.personal import ERASED
from domain.signals.aggregate import Signal

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

    from ports.projections import LoggedEvent

__all__ = ["SignalActivity"]

_RECORDED = topic_of(Signal.Recorded)
_MERGED = topic_of(Customer) + ".MergedInto"
_ERASED = topic_of(Customer) + ".Erased"
_CLASSIFIED = topic_of(Customer) + ".MessageClassified"

# A merged customer's signals belong to the survivor, also those recorded after the merge.
# The payloads come as one JSON array, read here: cheaper than decoding each in Python and
# encoding its fields again as arrays of parameters.
_STORE = """
WITH incoming AS (
    SELECT coalesce(m.survivor_id, (u.p->>'customer_id')::uuid) AS customer_id,
           u.p->>'signal_type' AS signal_type, (u.p->>'occurred_at')::timestamptz AS occurred_at,
           u.signal_id, u.p->'properties' AS properties
    FROM ROWS FROM (unnest($1::uuid[]), jsonb_array_elements($2::text::jsonb))
         AS u(signal_id, p)
    LEFT JOIN customer_merges m ON m.merged_id = (u.p->>'customer_id')::uuid
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
# The counters are sums of the signals: what `_STORE` and `_MOVE` keep them at, row by row.
_COUNT = """
INSERT INTO {counters} (customer_id, signal_type, hour, count, last_at)
SELECT customer_id, signal_type, date_trunc('hour', occurred_at, 'UTC'), count(*), max(occurred_at)
FROM {signals} GROUP BY 1, 2, 3
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
# What a rebuild reads of an erased customer's signals: every property there was, erased; and
# what it writes of their classified messages, which the log holds in clear (docs/erasure.md).
_ERASE = """
UPDATE {signals} SET properties = (
    SELECT coalesce(jsonb_object_agg(
        key, CASE jsonb_typeof(value) WHEN 'null' THEN value ELSE to_jsonb($2::text) END
    ), '{{}}'::jsonb)
    FROM jsonb_each(properties)
)
WHERE customer_id = ANY($1::uuid[])
"""
# The same, for a rebuild's every erasure at once, on its fresh table without indexes.
_ERASE_ALL = """
UPDATE {signals} s SET properties = (
    SELECT coalesce(jsonb_object_agg(
        key, CASE jsonb_typeof(value) WHEN 'null' THEN value ELSE to_jsonb($2::text) END
    ), '{{}}'::jsonb)
    FROM jsonb_each(s.properties)
)
FROM (SELECT DISTINCT unnest($1::uuid[]) AS customer_id) e
WHERE s.customer_id = e.customer_id
"""
# Every index of a table, with the constraint it backs (primary key, unique), if any.
_INDEXES = """
SELECT ix.relname AS name, pg_get_indexdef(i.indexrelid) AS definition,
       c.conname AS constraint_name, pg_get_constraintdef(c.oid) AS constraint_definition
FROM pg_index i
JOIN pg_class ix ON ix.oid = i.indexrelid
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
WHERE i.indrelid = $1::regclass
ORDER BY ix.relname
"""
_KEPT = frozenset({_RECORDED, _CLASSIFIED})
_SIGNAL_COLUMNS = ("customer_id", "signal_type", "occurred_at", "signal_id", "properties")
_encode = msgspec.json.encode


def _as_signal(event: LoggedEvent) -> dict[str, Any]:
    """A classified message as the signal it is kept as: under `CLASSIFIED_SIGNAL`, at the
    time the message was received, with what it was classified as for properties."""
    data = event.data
    return {
        "customer_id": str(event.stream_id),
        "signal_type": CLASSIFIED_SIGNAL,
        "occurred_at": data["received_at"],
        "properties": classified_properties(data),
    }


def _signal_id(event: LoggedEvent) -> UUID:
    """A signal's id is its stream's; a classified message's is the message's."""
    if event.topic == _CLASSIFIED:
        return UUID(str(event.data["message_id"]))
    return event.stream_id


def _signal_payload(event: LoggedEvent) -> bytes:
    if event.topic == _CLASSIFIED:
        return _encode(_as_signal(event))
    return event.payload


@dataclass(frozen=True, slots=True)
class _Index:
    table: str
    name: str
    definition: str
    constraint: str | None
    constraint_definition: str | None

    async def drop(self, conn: asyncpg.Connection) -> None:
        if self.constraint is not None:
            await conn.execute(f"ALTER TABLE {self.table} DROP CONSTRAINT {self.constraint}")
        else:
            await conn.execute(f"DROP INDEX {self.name}")

    async def create(self, conn: asyncpg.Connection) -> None:
        """Under the same name, so the rebuild's swap renames it as it would the original."""
        if self.constraint is not None:
            await conn.execute(
                f"ALTER TABLE {self.table} ADD CONSTRAINT {self.constraint}"
                f" {self.constraint_definition}"
            )
        else:
            await conn.execute(self.definition)


@dataclass(slots=True)
class _Bulk:
    """A rebuild's bulk load, from `prepare_rebuild` to `finish_rebuild`."""

    dropped: list[_Index]
    survivors: dict[str, str]  # customer_merges: merged id -> survivor id, as text
    loaded: set[str] = field(default_factory=set)  # customers with signals in the fresh table
    erased: set[UUID] = field(default_factory=set)  # customers erased, scrubbed at the end

    def customer(self, customer_id: str) -> str:
        """Whom a signal belongs to: its customer's survivor, if merged (as `_STORE` does)."""
        while (survivor := self.survivors.get(customer_id)) is not None:
            customer_id = survivor
        return customer_id


class SignalActivity:
    """Signals by customer, type and time (`customer_signals`), and hourly counts of them
    (`signal_counters`) for rolling windows; a merge moves the merged customer's rows.

    A rebuild loads the fresh tables in bulk (`prepare_rebuild` .. `finish_rebuild`): the
    signals go in with COPY, without indexes and without counters, which are summed up at the
    end, when the erased customers' rows are scrubbed; the pages after that are applied as in
    the live read model."""

    name = "signal_activity"
    topics = frozenset({_RECORDED, _MERGED, _ERASED, _CLASSIFIED})

    def __init__(self, suffix: str = "") -> None:
        self.signals = "customer_signals" + suffix
        self.counters = "signal_counters" + suffix
        self.tables = (self.signals, self.counters)
        self._store = _STORE.format(signals=self.signals, counters=self.counters)
        self._count = _COUNT.format(signals=self.signals, counters=self.counters)
        self._move = _MOVE.format(counters=self.counters)
        self._move_signals = _MOVE_SIGNALS.format(signals=self.signals)
        self._erase = _ERASE.format(signals=self.signals)
        self._erase_all = _ERASE_ALL.format(signals=self.signals)
        self._bulk: _Bulk | None = None

    def writing_to(self, suffix: str) -> SignalActivity:
        return SignalActivity(suffix)

    async def prepare_rebuild(self, conn: asyncpg.Connection) -> None:
        """Before a rebuild's first page, on its empty fresh tables: drops their indexes."""
        dropped: list[_Index] = []
        for table in self.tables:
            for row in await conn.fetch(_INDEXES, table):
                index = _Index(table, *row)
                await index.drop(conn)
                dropped.append(index)
        merges = await conn.fetch("SELECT merged_id, survivor_id FROM customer_merges")
        self._bulk = _Bulk(dropped, {str(merged): str(survivor) for merged, survivor in merges})

    async def finish_rebuild(self, conn: asyncpg.Connection) -> None:
        """Sums the counters up and builds the indexes again."""
        if self._bulk is None:
            return
        if self._bulk.erased:
            await conn.execute(self._erase_all, sorted(self._bulk.erased), ERASED)
        await conn.execute(self._count)
        for index in self._bulk.dropped:
            await index.create(conn)
        self._bulk = None

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        if self._bulk is not None:
            await self._load(conn, events, self._bulk)
            return
        pending: list[LoggedEvent] = []
        for event in events:
            if event.topic in _KEPT:
                pending.append(event)
                continue
            await self._store_signals(conn, pending)
            pending = []
            if event.topic == _ERASED:
                erased = [UUID(c) for c in event.data["customer_ids"]]
                await conn.execute(self._erase, erased, ERASED)
                continue
            survivor = UUID(event.data["survivor_id"])
            await conn.execute(self._move_signals, event.stream_id, survivor)
            await conn.execute(self._move, event.stream_id, survivor)
        await self._store_signals(conn, pending)

    async def _store_signals(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        if not events:
            return
        ids = [_signal_id(event) for event in events]
        payloads = b"[" + b",".join([_signal_payload(event) for event in events]) + b"]"
        await conn.execute(self._store, ids, payloads.decode())

    async def _load(
        self, conn: asyncpg.Connection, events: Sequence[LoggedEvent], bulk: _Bulk
    ) -> None:
        """The same rows as `_store_signals` and the moves, for a table without indexes: the
        merges are resolved here, a move runs only when the merged customer has rows, and the
        signals go in with COPY. The fresh table has no unique index, and a signal is in the
        log once, so COPY stores what `ON CONFLICT DO NOTHING` would (the primary key, built at
        the end, checks it)."""
        records: list[tuple[Any, ...]] = []
        for event in events:
            data = event.data
            if event.topic == _CLASSIFIED:
                data = _as_signal(event)
            if event.topic in _KEPT:
                customer = bulk.customer(data["customer_id"])
                bulk.loaded.add(customer)
                records.append(
                    (
                        customer,
                        data["signal_type"],
                        datetime.fromisoformat(data["occurred_at"]),
                        _signal_id(event),
                        _encode(data["properties"]).decode(),
                    )
                )
                continue
            if event.topic == _ERASED:
                # Their signals read as erased in the log already, their classified messages
                # do not (`Customer.MessageClassified` holds nothing sealed): scrubbed at the
                # end, as the live read model scrubs them. Nothing is recorded on an erased
                # customer after, so once for every erasure is the same as one at a time.
                bulk.erased.update(UUID(str(c)) for c in data["customer_ids"])
                continue
            merged, survivor = str(event.stream_id), data["survivor_id"]
            # customer_merges has it, unless the merge committed after prepare_rebuild.
            bulk.survivors.setdefault(merged, survivor)
            if merged in bulk.loaded:
                await self._copy(conn, records)
                records = []
                await conn.execute(self._move_signals, event.stream_id, UUID(survivor))
                bulk.loaded.discard(merged)
                bulk.loaded.add(survivor)
        await self._copy(conn, records)

    async def _copy(self, conn: asyncpg.Connection, records: list[tuple[Any, ...]]) -> None:
        if records:
            await conn.copy_records_to_table(self.signals, records=records, columns=_SIGNAL_COLUMNS)
