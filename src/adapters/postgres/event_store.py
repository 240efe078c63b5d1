"""Streams of events in one table: appended with optimistic concurrency, read as a global log."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
import msgspec

from adapters.postgres.codec import EventCodec
from adapters.postgres.customer_keys import stored_key_id
from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence
    from datetime import datetime

    from eventsourcing.domain import Aggregate, CanMutateAggregate

    from adapters.crypto.envelope import DataKey

__all__ = [
    "READ_LOG",
    "LogPage",
    "LogPosition",
    "PostgresEventStore",
    "RecordedEvent",
    "SideTable",
]

_APPEND_ONE = """
INSERT INTO events (stream_id, version, topic, class_version, occurred_at, subject_id, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
_LOAD = """
SELECT stream_id, version, topic, class_version, occurred_at, payload
FROM events WHERE stream_id = ANY($1::uuid[]) ORDER BY stream_id, version
"""
READ_LOG = """
SELECT transaction_id::text::bigint AS transaction_id, position, stream_id, version, topic,
       occurred_at, payload, class_version
FROM events
WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.transaction_id, events.position
LIMIT $3
"""
# The page of events of some topics, and the last event of any topic below the same horizon:
# one statement, one snapshot, so a reader may move to that end without skipping a match.
# ORDER BY names the table's columns: a bare `transaction_id` is the output column (the bigint
# cast), which no index serves, so every page would sort the whole rest of the log.
_READ_TOPICS = """
WITH horizon AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
(SELECT transaction_id::text::bigint AS transaction_id, position, stream_id, version, topic,
        occurred_at, payload, class_version
 FROM events, horizon
 WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint)
   AND transaction_id < horizon.xmin AND topic = ANY($4::text[])
   AND ($5::text IS NULL OR (transaction_id, position) <= ($5::text::xid8, $6::bigint))
 ORDER BY events.transaction_id, events.position
 LIMIT $3)
UNION ALL
(SELECT transaction_id::text::bigint, position, NULL, NULL, NULL, NULL, NULL, NULL
 FROM events, horizon
 WHERE transaction_id < horizon.xmin
   AND ($5::text IS NULL OR (transaction_id, position) <= ($5::text::xid8, $6::bigint))
 ORDER BY events.transaction_id DESC, events.position DESC
 LIMIT 1)
"""
_EVENT_TYPES = ("uuid", "int4", "text", "int2", "timestamptz", "uuid", "bytea")
# Columns that a batch often holds one value of (its events' version, topic, class version and
# time, all of one command; no customer): that value goes once, as a scalar, and not as an
# array, which asyncpg encodes element by element. Comparing them costs less than encoding.
_SHARED_CAN_BE = (False, True, True, True, True, True, False)
_SUBJECT = 5
_INSERT_EVENTS = (
    "INSERT INTO events (stream_id, version, topic, class_version, occurred_at, subject_id, "
    "payload) "
)
_APPEND_NEW = """
INSERT INTO events (stream_id, version, topic, class_version, occurred_at, subject_id, payload)
SELECT * FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::int2[], $5::timestamptz[],
                     $6::uuid[], $7::bytea[])
ON CONFLICT (stream_id, version) DO NOTHING
RETURNING stream_id
"""
_APPEND_PAYLOAD_ONCE = """
INSERT INTO events (stream_id, version, topic, occurred_at, payload)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (stream_id, version) DO NOTHING
"""
# Streams named by the MD5 of a prefix and a name, derived in the insert itself rather than in
# Python per event. A name seen before hits the stream's primary key and is left out; the
# statement returns the places of the ones it wrote. Concurrent batches with the same new name:
# the second waits for the first to commit, then leaves it out. Rows go in stream order, so two
# batches sharing names wait for each other in one order and cannot deadlock.
_APPEND_FIRST = """
WITH received AS (
    SELECT place, md5($5 || name)::uuid AS stream_id, payload
    FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS s(name, payload, place)
), written AS (
    INSERT INTO events (stream_id, version, topic, occurred_at, payload)
    SELECT stream_id, 1, $3, $4, payload FROM received ORDER BY stream_id
    ON CONFLICT (stream_id, version) DO NOTHING
    RETURNING stream_id
)
SELECT received.place FROM received JOIN written USING (stream_id)
"""
# The common case, where no name was seen before: a plain insert, a quarter less of
# PostgreSQL's CPU than the statement above. A repeated name fails it whole, and the batch goes
# again by the statement above.
_APPEND_FIRST_NEW = """
INSERT INTO events (stream_id, version, topic, occurred_at, payload)
SELECT md5($5 || name)::uuid AS stream_id, 1, $3, $4, payload
FROM unnest($1::text[], $2::bytea[]) AS s(name, payload)
ORDER BY stream_id
"""
_FIRST_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class SideTable:
    """A table written in the same statement as the events: its insert and column types."""

    insert: str
    types: tuple[str, ...]
    on_conflict: str = ""


_COPY_FROM = 100
"""Events from which an append copies its rows in (binary `COPY`), rather than one insert of
arrays: asyncpg encodes a copied row's values without asking of each array
element whether it is an array itself, for about half the CPU (a broadcast's batches)."""
_EVENT_COLUMNS = ("stream_id", "version", "topic", "class_version", "occurred_at", "subject_id",
                  "payload")  # fmt: skip

_RETRYABLE = (
    asyncpg.UniqueViolationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


def _appended(rows: list[tuple[Any, ...]], args: list[Any]) -> str:
    """The insert of the rows into `events`, its parameters appended to `args`: one scalar for
    a column whose rows all hold one value, an array unnested in step with the others else."""
    picked: list[str] = []
    arrays: list[str] = []
    columns = list(zip(*rows, strict=True))
    for n, (kind, column, may_share) in enumerate(
        zip(_EVENT_TYPES, columns, _SHARED_CAN_BE, strict=True)
    ):
        first = column[0]
        # A subject is compared only when missing: equal UUIDs compare in Python, slowly.
        if may_share and (n != _SUBJECT or first is None) and column.count(first) == len(column):
            args.append(first)
            picked.append(f"${len(args)}::{kind}")
        else:
            args.append(list(column))
            arrays.append(f"${len(args)}::{kind}[]")
            picked.append(f"c{len(arrays)}")
    names = ", ".join(f"c{n}" for n in range(1, len(arrays) + 1))
    return (
        f"{_INSERT_EVENTS}SELECT {', '.join(picked)} "
        f"FROM unnest({', '.join(arrays)}) AS rows({names})"
    )


def _subject(about: Aggregate | CanMutateAggregate[UUID]) -> UUID | None:
    """The customer an aggregate declares its events are about (`subject_id`), if any; an
    event of a one-event aggregate, recorded without it, declares the same."""
    subject: UUID | None = getattr(about, "subject_id", None)
    return subject


@dataclass(frozen=True, slots=True, order=True)
class LogPosition:
    """A place in the global log: events are read in (transaction_id, position) order."""

    transaction_id: int = 0
    position: int = 0


@dataclass(frozen=True, slots=True)
class LogPage:
    events: list[RecordedEvent]
    next: LogPosition


class RecordedEvent:
    """An event as stored; its payload is decoded to plain values when first read, so a reader
    that skips an event by its topic or stream never pays for decoding it. A payload holding
    sealed values is opened when first read too, by the key that was loaded with its page
    (`sealed_with`: the codec, and the key, None once erased): a reader that needs its type,
    stream or version only never decrypts it. `class_version` is the version of its class it
    was stored at, which a typed reader upcasts from."""

    __slots__ = (
        "_data",
        "_payload",
        "_sealed_with",
        "class_version",
        "position",
        "recorded_at",
        "stream_id",
        "topic",
        "version",
    )

    def __init__(
        self,
        position: int,
        stream_id: UUID,
        version: int,
        topic: str,
        recorded_at: datetime,
        data: dict[str, Any] | None = None,
        *,
        payload: bytes | None = None,
        class_version: int = 1,
        sealed_with: tuple[EventCodec, DataKey | None] | None = None,
    ) -> None:
        self.position = position
        self.class_version = class_version
        self.stream_id = stream_id
        self.version = version
        self.topic = topic
        self.recorded_at = recorded_at
        self._data = data
        self._payload = payload
        self._sealed_with = sealed_with

    def _open(self, codec: EventCodec, key: DataKey | None) -> None:
        self._data, self._payload = codec.as_recorded(self.topic, self._payload or b"{}", key)
        self._sealed_with = None

    @property
    def data(self) -> dict[str, Any]:
        if self._sealed_with is not None:
            self._open(*self._sealed_with)
        if self._data is None:
            self._data = _plain(self._payload or b"{}")
        return self._data

    @property
    def payload(self) -> bytes:
        if self._sealed_with is not None:
            self._open(*self._sealed_with)
        return self._payload if self._payload is not None else msgspec.json.encode(self._data)

    @property
    def type(self) -> str:
        return self.topic.rpartition(".")[2]

    def __repr__(self) -> str:
        return f"RecordedEvent({self.topic} {self.stream_id} v{self.version} @{self.position})"


_plain: Any = msgspec.json.decode


class PostgresEventStore:
    """Appends and loads aggregates' events; the caller owns the connection and transaction."""

    def __init__(self, codec: EventCodec | None = None) -> None:
        self.codec = codec or EventCodec()
        # Topics whose last batch of first events held a repeat: the next ones leave repeats
        # out by key until one comes with none (a producer retrying, or a redelivery after a
        # crash, sends many of them in a row).
        self._repeats_likely: set[str] = set()

    async def append(
        self,
        conn: asyncpg.Connection,
        aggregates: Iterable[Aggregate] = (),
        events: Iterable[CanMutateAggregate[UUID]] = (),
        side_rows: Mapping[SideTable, Sequence[tuple[Any, ...]]] | None = None,
    ) -> None:
        """Appends the aggregates' pending events and loose events (of one-event aggregates).

        `side_rows` go into other tables in the same statement, so a command that only
        writes commits in one round trip, atomically, without BEGIN and COMMIT.
        """
        about: list[tuple[CanMutateAggregate[UUID], UUID | None]] = []
        for aggregate in aggregates:
            subject = _subject(aggregate)
            about.extend((event, subject) for event in aggregate.collect_events())
        about.extend((event, _subject(event)) for event in events)
        await self._keys_for(conn, about)
        rows = [self._row(event, subject) for event, subject in about]
        side = {table: list(found) for table, found in (side_rows or {}).items() if found}
        if len(rows) >= _COPY_FROM:
            # The copy and the side rows' insert are two statements: atomic in a transaction.
            alone = bool(side) and not conn.is_in_transaction()
            async with conn.transaction() if alone else nullcontext():
                await self._copy(conn, rows)
                if side:
                    await self._append_with(conn, [], side)
            return
        if side:
            await self._append_with(conn, rows, side)
            return
        if not rows:
            return
        try:
            if len(rows) == 1:
                await conn.execute(_APPEND_ONE, *rows[0])
            else:
                args: list[Any] = []
                await conn.execute(_appended(rows, args), *args)
        except _RETRYABLE as error:
            raise ConcurrencyConflict(str(error)) from error

    async def _copy(self, conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
        try:
            await conn.copy_records_to_table("events", records=rows, columns=_EVENT_COLUMNS)
        except _RETRYABLE as error:
            raise ConcurrencyConflict(str(error)) from error

    async def _append_with(
        self,
        conn: asyncpg.Connection,
        rows: list[tuple[Any, ...]],
        side: dict[SideTable, list[tuple[Any, ...]]],
    ) -> None:
        ctes: list[str] = []
        args: list[Any] = []

        def arrays(types: Sequence[str], columns: list[list[Any]]) -> str:
            casts = []
            for kind, column in zip(types, columns, strict=True):
                args.append(column)
                casts.append(f"${len(args)}::{kind}[]")
            return ", ".join(casts)

        if rows:
            ctes.append(f"appended AS ({_appended(rows, args)} RETURNING 1)")
        for n, (table, table_rows) in enumerate(side.items()):
            columns = [list(c) for c in zip(*table_rows, strict=True)]
            ctes.append(
                f"side{n} AS ({table.insert} SELECT * FROM unnest({arrays(table.types, columns)}) "
                f"{table.on_conflict} RETURNING 1)"
            )
        try:
            await conn.execute("WITH " + ", ".join(ctes) + " SELECT 1", *args)
        except _RETRYABLE as error:
            raise ConcurrencyConflict(str(error)) from error

    async def append_new(
        self, conn: asyncpg.Connection, events: Iterable[CanMutateAggregate[UUID]]
    ) -> int:
        """Appends loose events, leaving out those whose place in their stream is taken
        already; returns how many were appended."""
        about = [(event, _subject(event)) for event in events]
        await self._keys_for(conn, about)
        rows = [self._row(event, subject) for event, subject in about]
        if not rows:
            return 0
        appended = await conn.fetch(_APPEND_NEW, *(list(c) for c in zip(*rows, strict=True)))
        return len(appended)

    async def append_payload_once(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        stream_id: UUID,
        version: int,
        topic: str,
        at: datetime,
        payload: bytes,
    ) -> None:
        """Appends one event given as its stored payload, unless its place is taken already."""
        await conn.execute(_APPEND_PAYLOAD_ONCE, stream_id, version, topic, at, payload)

    async def append_first(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        topic: str,
        id_prefix: str,
        names: list[str],
        payloads: list[bytes],
        at: datetime,
    ) -> list[int]:
        """Starts a stream per name, `md5(id_prefix || name)`, with one event of `topic` and
        its stored payload, in one statement; returns the places (0-based) of the names whose
        stream was new. Names must be distinct."""
        args = (names, payloads, topic, at, id_prefix)
        careful = topic in self._repeats_likely
        attempt = 1
        while True:
            try:
                if not careful:
                    await conn.execute(_APPEND_FIRST_NEW, *args)
                    return list(range(len(names)))
                rows = await conn.fetch(_APPEND_FIRST, *args)
            except asyncpg.UniqueViolationError:
                if careful:
                    raise  # not a repeated name: the statement above leaves those out
                careful = True
                self._repeats_likely.add(topic)
                continue
            except asyncpg.DeadlockDetectedError:
                if attempt == _FIRST_ATTEMPTS:
                    raise
                attempt += 1
                continue
            if len(rows) == len(names):
                self._repeats_likely.discard(topic)
            return [row[0] - 1 for row in rows]

    async def _keys_for(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        about: Sequence[tuple[CanMutateAggregate[UUID], UUID | None]],
    ) -> None:
        """Loads (or makes) the keys of the customers whose personal values are appended."""
        personal = self.codec.personal_subject
        subjects = {s for e, s in about if s is not None and personal(e, s)}
        if subjects:
            await self.codec.keys.ensure(conn, subjects)  # type: ignore[arg-type]

    async def open_keys(
        self, conn: asyncpg.Connection | asyncpg.Pool, payloads: Iterable[bytes | None]
    ) -> dict[bytes, DataKey | None]:
        """Loads the keys that sealed these stored payloads, before they are decoded; returns
        them by their stored ids (`CustomerKeys.load_for`)."""
        return await self.codec.keys.load_for(conn, payloads)

    def _row(self, event: CanMutateAggregate[UUID], subject: UUID | None) -> tuple[Any, ...]:
        e = self.codec.encode(event, subject)
        return (e.stream_id, e.version, e.topic, e.class_version, e.occurred_at, subject, e.payload)

    async def load(
        self, conn: asyncpg.Connection | asyncpg.Pool, stream_ids: Collection[UUID]
    ) -> dict[UUID, Aggregate]:
        loaded: dict[UUID, Any] = {}
        rows = await conn.fetch(_LOAD, list(stream_ids))
        keys = await self.open_keys(conn, (row[5] for row in rows))
        decode = self.codec.decode
        for row in rows:
            key_id = stored_key_id(row[5])
            key = None if key_id is None else keys[key_id]
            event: CanMutateAggregate[UUID] = decode(
                row[0], row[1], row[2], row[3], row[4], row[5], key
            )
            loaded[row[0]] = event.mutate(loaded.get(row[0]))
        return loaded

    async def read_log(
        self, conn: asyncpg.Connection | asyncpg.Pool, after: LogPosition, limit: int = 1000
    ) -> LogPage:
        """Events committed after `after`, in one order every reader sees the same.

        Only transactions older than every one still running are read, so an event whose
        transaction commits late cannot be overtaken and skipped by a reader's position.
        """
        rows = await conn.fetch(READ_LOG, str(after.transaction_id), after.position, limit)
        if not rows:
            return LogPage([], after)
        keys = await self.open_keys(conn, (row["payload"] for row in rows))
        last = rows[-1]
        return LogPage(
            self.to_recorded(rows, keys), LogPosition(last["transaction_id"], last["position"])
        )

    async def read_topics(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        after: LogPosition,
        topics: Collection[str],
        limit: int = 1000,
        until: LogPosition | None = None,
    ) -> LogPage:
        """Like `read_log`, only events of `topics`, and none after `until`; `next` passes the
        events of other topics up to the readable end once the page holds every match."""
        found = await conn.fetch(
            _READ_TOPICS,
            str(after.transaction_id),
            after.position,
            limit,
            list(topics),
            None if until is None else str(until.transaction_id),
            None if until is None else until.position,
        )
        # As `to_recorded`, by column index: a rebuild reads a million of these.
        openers = self._openers(await self.open_keys(conn, (row[6] for row in found)))
        events: list[RecordedEvent] = []
        last = end = None
        for row in found:
            transaction_id, position, stream_id, version, topic, occurred_at, payload, cv = row
            if stream_id is None:
                end = LogPosition(transaction_id, position)
                continue
            last = row
            key_id = stored_key_id(payload)
            events.append(
                RecordedEvent(
                    position,
                    stream_id,
                    version,
                    topic,
                    occurred_at,
                    payload=payload,
                    class_version=cv,
                    sealed_with=None if key_id is None else openers[key_id],
                )
            )
        if end is not None and len(events) < limit:
            return LogPage(events, max(after, end))
        return LogPage(events, after if last is None else LogPosition(last[0], last[1]))

    async def recorded(
        self, conn: asyncpg.Connection | asyncpg.Pool, rows: Sequence[asyncpg.Record]
    ) -> list[RecordedEvent]:
        """The rows as recorded events, their personal values opened (or erased) when read."""
        return self.to_recorded(rows, await self.open_keys(conn, (row["payload"] for row in rows)))

    def to_recorded(
        self,
        rows: Sequence[asyncpg.Record],
        keys: Mapping[bytes, DataKey | None] | None = None,
    ) -> list[RecordedEvent]:
        """As `recorded`, once the keys of the rows were loaded (`open_keys`, which returns
        the `keys`)."""
        if keys is None:
            keys = self.codec.keys.loaded_for(row["payload"] for row in rows)
        openers = self._openers(keys)
        found: list[RecordedEvent] = []
        for row in rows:
            payload = row["payload"]
            key_id = stored_key_id(payload)
            found.append(
                RecordedEvent(
                    row["position"],
                    row["stream_id"],
                    row["version"],
                    row["topic"],
                    row["occurred_at"],
                    payload=payload,
                    class_version=row.get("class_version", 1),
                    sealed_with=None if key_id is None else openers[key_id],
                )
            )
        return found

    def _openers(
        self, keys: Mapping[bytes, DataKey | None]
    ) -> dict[bytes, tuple[EventCodec, DataKey | None]]:
        """What opens the payloads a page's keys sealed, by the keys' stored ids: one pair a
        key, shared by its page's events."""
        codec = self.codec
        return {key_id: (codec, key) for key_id, key in keys.items()}
