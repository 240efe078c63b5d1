"""The inbox as a projection of the Conversation events (`inbox`, `0028_inbox.sql`), read with
each conversation's SLA deadline (`sla_deadlines`), and the changes a live stream waits for:
the projection's commit notifies `chorus_inbox` with its last `seq`. `Customer.Erased`
scrubs the classification of the erased customers' rows (`InboxRow.erased`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import msgspec

from adapters.postgres.codec import EventCodec
from domain.catalog import topic_of
from domain.conversation.aggregate import ConversationStatus
from domain.conversation.sla import SlaKind
from domain.conversation.vocabulary import Priority, Sentiment
from domain.customer.aggregate import Customer
from domain.policy.vocabulary import Channel
from domain.shared.personal import ERASED
from ports.inbox import (
    InboxPage,
    InboxRow,
    SlaDeadline,
    conversation_events,
    inbox_cursor,
    seq_of,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    import asyncpg

    from adapters.postgres.event_store import RecordedEvent
    from ports.inbox import InboxFilter
    from ports.projections import LoggedEvent

__all__ = [
    "INBOX_CHANNEL",
    "InboxListing",
    "PostgresInbox",
    "PostgresInboxChanges",
]

INBOX_CHANNEL = "chorus_inbox"
"""What the live projection notifies, with its last `seq`, when its page commits."""


_FIELDS = tuple(f.name for f in dataclasses.fields(InboxRow) if f.name != "deadline")
_COLUMNS = ", ".join(_FIELDS)
_TYPES = {
    "conversation_id": "uuid", "customer_id": "uuid", "messages": "int4", "notes": "int4",
    "breaches": "int4", "seq": "int8", "last_message_at": "timestamptz",
    "awaiting_since": "timestamptz", "snoozed_until": "timestamptz",
    "started_at": "timestamptz", "updated_at": "timestamptz",
}  # fmt: skip
_LISTS = frozenset({"channels", "tags"})  # passed joined by commas: unnest flattens arrays
_SELECT = f"""
SELECT {", ".join("i." + name for name in _FIELDS)}, d.sla, d.due_at, d.breached
FROM inbox i LEFT JOIN sla_deadlines d USING (conversation_id)
"""
_WHERE = """
WHERE ($1::text[] IS NULL OR i.team = ANY($1::text[]))
  AND ($2::text IS NULL OR i.team = $2) AND ($3::text IS NULL OR i.agent = $3)
  AND ($4::text IS NULL OR i.status = $4 OR ($4 = 'unresolved' AND i.status <> 'resolved'))
  AND ($5::text IS NULL OR $5 = ANY(i.channels))
  AND ($6::text IS NULL OR i.intent = $6) AND ($7::text IS NULL OR i.priority = $7)
  AND ($8::timestamptz IS NULL OR d.due_at <= $8) AND ($9::uuid IS NULL OR i.customer_id = $9)
  AND ($10::bool IS NULL OR (i.status <> 'resolved' AND (i.agent IS NOT NULL) = $10))
"""
_TAGGED = "AND ($13::text IS NULL OR $13 = ANY(i.tags)) "  # `?tag=`, passed after the limit
_PAGE = (
    _SELECT
    + _WHERE
    + _TAGGED
    + "AND ($11::bigint IS NULL OR i.seq < $11) ORDER BY i.seq DESC LIMIT $12"
)
_CHANGED = _SELECT + _WHERE + _TAGGED + "AND i.seq > $11 ORDER BY i.seq LIMIT $12"
_ONE = _SELECT + "WHERE i.conversation_id = $1"
_HIGH_WATER = "SELECT coalesce(max(seq), 0) FROM inbox"


_ERASED_TOPIC = topic_of(Customer) + ".Erased"
# What `InboxRow.erased` makes of an erased customer's rows: `seq` and `updated_at` stay.
_ERASE = """
UPDATE {table} SET intent = CASE WHEN intent IS NULL THEN NULL ELSE $2::text END, sentiment = NULL
WHERE customer_id = ANY($1::uuid[]) AND (intent <> $2::text OR sentiment IS NOT NULL)
"""


def _row(record: asyncpg.Record) -> InboxRow:
    values: dict[str, Any] = {name: record[name] for name in _FIELDS}
    values["status"] = ConversationStatus(values["status"])
    values["priority"] = Priority(values["priority"])
    values["sentiment"] = None if values["sentiment"] is None else Sentiment(values["sentiment"])
    values["channel"] = None if values["channel"] is None else Channel(values["channel"])
    values["channels"] = tuple(Channel(c) for c in values["channels"])
    values["tags"] = tuple(values["tags"])
    if record["due_at"] is not None:
        values["deadline"] = SlaDeadline(
            SlaKind(record["sla"]), record["due_at"], record["breached"]
        )
    return InboxRow(**values)


def _value(row: InboxRow, name: str) -> Any:
    value = getattr(row, name)
    if name in _LISTS:
        return ",".join(str(v) for v in value)
    return None if value is None else value if name in _TYPES else str(value)


class InboxListing:
    """Every conversation as the inbox lists it, from the Conversation events, scrubbed at
    `Customer.Erased` as a rebuild reads them after it; rebuildable."""

    name = "inbox"

    def __init__(self, suffix: str = "", codec: EventCodec | None = None) -> None:
        self.codec = codec or EventCodec()
        self.suffix = suffix
        self.table = "inbox" + suffix
        self.tables = (self.table,)
        self.topics = frozenset(
            {self.codec.topics.topic_of(cls) for cls in conversation_events()} | {_ERASED_TOPIC}
        )
        self._erase = _ERASE.format(table=self.table)
        arrays = ", ".join(
            f"${n}::{_TYPES.get(name, 'text')}[]" for n, name in enumerate(_FIELDS, 1)
        )
        selected = ", ".join(
            f"string_to_array({name}, ',')" if name in _LISTS else name for name in _FIELDS
        )
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _FIELDS[1:])
        self._upsert = (
            f"INSERT INTO {self.table} ({_COLUMNS}) SELECT {selected}"
            f" FROM unnest({arrays}) AS t({_COLUMNS})"
            f" ON CONFLICT (conversation_id) DO UPDATE SET {updates}"
        )
        # The live stream is told in the upsert's statement: a notification goes at the commit,
        # whatever the transaction does after it.
        told = len(_FIELDS)
        self._upsert_telling = (
            f"WITH upserted AS ({self._upsert}) SELECT pg_notify(${told + 1}, ${told + 2})"
        )
        # The page's rows and the highest `seq` so far, in one statement (a row of NULLs, with
        # the highest `seq`, when none of the page's conversations is listed yet).
        self._read = (
            f"SELECT high.seq AS high, {', '.join('i.' + name for name in _FIELDS)},"
            " NULL AS sla, NULL::timestamptz AS due_at, NULL AS breached"
            f" FROM (SELECT coalesce(max(seq), 0) AS seq FROM {self.table}) high"
            f" LEFT JOIN {self.table} i ON i.conversation_id = ANY($1::uuid[])"
        )

    def writing_to(self, suffix: str) -> InboxListing:
        return InboxListing(suffix, self.codec)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        # The runner hands out RecordedEvents, which carry their stream and class versions.
        recorded = cast("Sequence[RecordedEvent]", events)
        if not recorded:
            return
        found = await conn.fetch(self._read, list({e.stream_id for e in recorded}))
        seq: int = found[0]["high"]
        rows = {
            record["conversation_id"]: _row(record)
            for record in found
            if record["conversation_id"] is not None
        }
        changed: set[UUID] = set()
        erased: set[UUID] = set()
        for each in recorded:
            if each.topic == _ERASED_TOPIC:
                # The rows not read for this page are scrubbed after it, in SQL.
                customers = set(msgspec.json.decode(each.payload)["customer_ids"])
                erased |= {UUID(c) for c in customers}
                for conversation_id, theirs in rows.items():
                    if str(theirs.customer_id) in customers:
                        rows[conversation_id] = theirs.erased()
                        changed.add(conversation_id)
                continue
            event = self.codec.decode(
                each.stream_id,
                each.version,
                each.topic,
                each.class_version,
                each.recorded_at,
                each.payload,
            )
            if type(event).__name__ == "Started":
                seq += 1
                rows[each.stream_id] = InboxRow.started(event, seq)
            elif (row := rows.get(each.stream_id)) is not None:
                seq += 1
                rows[each.stream_id] = row.folding(event, seq)
            else:
                continue
            changed.add(each.stream_id)
        if changed:
            columns = [[_value(rows[c], name) for c in changed] for name in _FIELDS]
            if self.suffix:  # a rebuild's rows are news to nobody
                await conn.execute(self._upsert, *columns)
            else:
                await conn.execute(self._upsert_telling, *columns, INBOX_CHANNEL, str(seq))
        if erased:
            await conn.execute(self._erase, list(erased), ERASED)


def _arguments(where: InboxFilter, visible: Collection[str] | None) -> list[Any]:
    return [
        None if visible is None else sorted(visible),
        where.team,
        where.agent,
        None if where.status is None else str(where.status),
        None if where.channel is None else str(where.channel),
        where.intent,
        None if where.priority is None else str(where.priority),
        where.breach_before,
        where.customer_id,
        where.assigned,
    ]


class PostgresInbox:
    """The `inbox` projection with the SLA timers' deadlines (InboxReadModel)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def page(
        self,
        where: InboxFilter,
        visible: Collection[str] | None,
        *,
        after: str | None = None,
        limit: int = 50,
    ) -> InboxPage:
        before = seq_of(after)
        async with self.pool.acquire() as conn:
            high_water: int = await conn.fetchval(_HIGH_WATER)
            found = await conn.fetch(
                _PAGE, *_arguments(where, visible), before, limit + 1, where.tag
            )
        rows = [_row(record) for record in found[:limit]]
        more = len(found) > limit
        return InboxPage(rows, inbox_cursor(rows[-1].seq) if more else None, high_water)

    async def get(self, conversation_id: UUID) -> InboxRow | None:
        found = await self.pool.fetchrow(_ONE, conversation_id)
        return None if found is None else _row(found)

    async def changed_since(
        self, seq: int, where: InboxFilter, visible: Collection[str] | None, limit: int = 500
    ) -> list[InboxRow]:
        found = await self.pool.fetch(_CHANGED, *_arguments(where, visible), seq, limit, where.tag)
        return [_row(record) for record in found]

    async def high_water(self) -> int:
        value: int = await self.pool.fetchval(_HIGH_WATER)
        return value


class PostgresInboxChanges:
    """One connection listening on `chorus_inbox` for every stream of this process; it is
    taken on the first wait, and again after it is lost (waits time out meanwhile)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.latest = 0
        self._conn: Any = None
        self._changed = asyncio.Event()
        self._taking = asyncio.Lock()

    async def wait_beyond(self, seq: int, at_most: float) -> None:
        changed = self._changed
        await self._listening()
        if self.latest > seq:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), at_most)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.remove_listener(INBOX_CHANNEL, self._notified)
            await self.pool.release(conn)

    async def _listening(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        async with self._taking:
            if self._conn is not None and not self._conn.is_closed():
                return
            conn = await self.pool.acquire()
            await conn.add_listener(INBOX_CHANNEL, self._notified)
            conn.add_termination_listener(self._lost)
            self._conn = conn

    def _notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self.latest = max(self.latest, int(str(payload)))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _lost(self, conn: object) -> None:
        self._conn = None
        self._notified(conn, 0, INBOX_CHANNEL, str(self.latest))
