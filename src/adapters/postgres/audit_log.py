"""The event store read for auditors, straight from `events`: never from a read model (a
message's story reads its deferral too, which its decision wrote in the same transaction)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import starmap
from typing import TYPE_CHECKING, Any, overload

import msgspec

from adapters.crypto.envelope import SealBroken
from adapters.postgres.codec import EventCodec
from adapters.postgres.customer_keys import stored_key_id
from domain.catalog import TOPICS, topic_of
from domain.customer.aggregate import Customer
from domain.message.aggregate import Message
from domain.segments.aggregate import Membership
from domain.shared.topics import events_of
from ports.audit import (
    AuditedEvent,
    CustomerHistory,
    KeptReplay,
    LogCursor,
    LogPlan,
    MessageHistory,
    Unopened,
    WaitingContent,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime
    from uuid import UUID

    import asyncpg
    from eventsourcing.domain import CanMutateAggregate

    from adapters.postgres.codec import SealedFields
    from ports.audit import LogFilter

__all__ = [
    "CUSTOMER_STATE_TOPICS",
    "MEMBERSHIP_TOPICS",
    "SCAN_BUDGET",
    "UNOPENED_TOPICS",
    "PostgresAuditLog",
]

CUSTOMER_STATE_TOPICS = tuple(
    topic_of(cls)
    for cls in events_of(Customer).values()
    if not issubclass(cls, Customer.MessageDecided)
)
"""The Customer events that change what an auditor sees of them: all but the decisions."""
MEMBERSHIP_TOPICS = (topic_of(Membership.Entered), topic_of(Membership.Exited))
UNOPENED_TOPICS = frozenset({topic_of(events_of(Customer)["ProfileUpdated"])})
"""The Customer events whose personal values a replay leaves sealed until a view shows them:
the aggregate keeps a profile's names and the custom attributes without looking at them, and
most are replaced by later changes before anyone sees them."""
SCAN_BUDGET = 50_000
"""At most this many events of the log are looked at for one page, whatever the filter."""

# The stream up to the first event recorded after the instant, so a clock that went back
# (a manual clock, a slow writer) never leaves a hole in what is replayed.
_CUSTOMER_HISTORY = """
WITH stop AS MATERIALIZED (
    SELECT coalesce(
        (SELECT min(version) FROM events WHERE stream_id = $1 AND occurred_at > $2),
        (SELECT max(version) + 1 FROM events WHERE stream_id = $1),
        1
    ) AS version
)
SELECT (SELECT version - 1 FROM stop),
       (SELECT 'erased' FROM customer_keys WHERE customer_id = $1 AND erased_at IS NOT NULL),
       NULL::int, NULL::timestamptz, NULL::bytea
UNION ALL
(SELECT version, topic, class_version, occurred_at, payload
 FROM events
 WHERE stream_id = $1 AND topic = ANY($3::text[])
   AND version > $4 AND version < (SELECT version FROM stop)
 ORDER BY version)
"""
_MEMBERSHIPS = """
SELECT stream_id, version, topic, class_version, occurred_at, payload FROM events
WHERE subject_id = $1 AND topic = ANY($2::text[]) AND occurred_at <= $3
ORDER BY position
"""
# `decisions` is the index written in the statement that records each decision (as
# `customer_merges` is for merges): it says where the events are, the events say what happened.
# Each decision, and the operator's verdict on a held message recorded just before the decision
# it led to.
_MESSAGE_DECISIONS = """
SELECT events.stream_id, events.version, events.topic, events.class_version,
       events.occurred_at, events.payload
FROM decisions JOIN events
  ON events.stream_id = decisions.customer_id
 AND events.version IN (decisions.stream_version - 1, decisions.stream_version)
WHERE decisions.message_id = $1
  AND (events.version = decisions.stream_version OR events.topic = $2)
ORDER BY events.transaction_id, events.position
"""
_APPROVAL_SETTLED = topic_of(events_of(Customer)["ApprovalSettled"])
# What a deferred or held message will send (`ports.delivery.Delivery`, as `deferrals` keeps
# it): only each channel's template and version are read, never the content.
_WAITING = "SELECT delivery FROM deferred_messages WHERE message_id = $1"


class _Rendered(msgspec.Struct):
    template: str | None = None
    version: int | None = None


class _Waiting(msgspec.Struct):
    contents: dict[str, _Rendered] = {}


_waiting_decoder = msgspec.json.Decoder(_Waiting)
_STREAM = """
SELECT stream_id, version, topic, class_version, occurred_at, payload FROM events
WHERE stream_id = $1 ORDER BY version
"""
_KEPT_REPLAY = """
SELECT version, recorded_at, state FROM customer_replays
WHERE customer_id = $1 AND code = $2 AND recorded_at <= $3
ORDER BY version DESC LIMIT 1
"""
# A replay kept by other code at that version gives way; the same code's stays as it is.
_KEEP_REPLAYS = """
INSERT INTO customer_replays (customer_id, version, recorded_at, code, state)
SELECT $1, * FROM unnest($2::int[], $3::timestamptz[], $4::text[], $5::bytea[])
ON CONFLICT (customer_id, version) DO UPDATE
SET recorded_at = EXCLUDED.recorded_at, code = EXCLUDED.code, state = EXCLUDED.state
WHERE customer_replays.code <> EXCLUDED.code
"""
_REPLAY_SEALED = b"replay "  # bound into each kept replay beside its version and code
_STREAM_OF_TOPICS = """
SELECT stream_id, version, topic, class_version, occurred_at, payload FROM events
WHERE stream_id = $1 AND topic = ANY($2::text[]) ORDER BY version
"""
_REGISTERED = "SELECT occurred_at FROM events WHERE stream_id = $1 AND version = 1 AND topic = $2"
_MERGED_INTO = "SELECT merged_id FROM customer_merges WHERE survivor_id = $1 ORDER BY merged_id"
# Below the oldest transaction still running, as the projections read: an event that commits
# late can never appear behind a cursor a client already holds.
_HORIZON = "horizon AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)"
_END = f"""
WITH {_HORIZON}
SELECT events.transaction_id::text::bigint, events.position FROM events, horizon
WHERE events.transaction_id < horizon.xmin
ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1
"""
_AFTER = "(events.transaction_id, events.position) > ($1::text::xid8, $2::bigint)"
_ORDER = "ORDER BY events.transaction_id, events.position"
_READ = """
SELECT k.t::text::bigint, events.position, events.stream_id, events.version, events.topic,
       events.occurred_at, events.payload
FROM unnest($1::text[]::xid8[], $2::bigint[]) AS k(t, p)
JOIN events ON events.transaction_id = k.t AND events.position = k.p
ORDER BY events.transaction_id, events.position
"""


class _Sealed(Unopened):
    """One value of an event's fields left sealed, opened with the others of its event (one
    AES-GCM operation an event) by the key found when the event was read."""

    def __new__(cls, fields: SealedFields, field: str, name: str) -> _Sealed:
        value = super().__new__(cls, "")
        value.__dict__.update(fields=fields, field=field, name=name)
        return value

    def opened(self) -> Any:
        found = self.__dict__
        return found["fields"].opened()[found["field"]][found["name"]]


class _Decoded(Sequence["CanMutateAggregate[UUID]"]):
    """The events of stored rows, each decoded when it is read and kept by no one else: a
    replay holds one at a time, so the ten thousand events of a busy customer never all live
    at once for the garbage collector to walk again and again while they are read."""

    __slots__ = ("_decode", "_rows")

    def __init__(
        self, rows: list[asyncpg.Record], decode: Callable[..., CanMutateAggregate[UUID]]
    ) -> None:
        self._rows = rows
        self._decode = decode

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> CanMutateAggregate[UUID]: ...

    @overload
    def __getitem__(self, index: slice) -> _Decoded: ...

    def __getitem__(self, index: int | slice) -> CanMutateAggregate[UUID] | _Decoded:
        if isinstance(index, slice):
            return _Decoded(self._rows[index], self._decode)
        return self._decode(*self._rows[index])

    def __iter__(self) -> Iterator[CanMutateAggregate[UUID]]:
        return starmap(self._decode, self._rows)


def _replay_bound(customer_id: UUID, version: int, code: str) -> bytes:
    """What a kept replay is sealed bound to: it opens only as the replay it was kept as."""
    return _REPLAY_SEALED + customer_id.bytes + version.to_bytes(4, "big") + code.encode()


def _conditions(where: LogFilter, args: list[Any]) -> list[str]:
    """The filter as SQL conditions on `events`, its values appended to `args`: only the
    filters given, so each shape of query gets a plan of its own."""
    conditions: list[str] = []
    if where.streams:
        args.append(list(where.streams))
        conditions.append(f"events.stream_id = ANY(${len(args)}::uuid[])")
    if where.topics:
        args.append(list(where.topics))
        conditions.append(f"events.topic = ANY(${len(args)}::text[])")
    if where.since is not None:
        args.append(where.since)
        conditions.append(f"events.occurred_at >= ${len(args)}")
    if where.until is not None:
        args.append(where.until)
        conditions.append(f"events.occurred_at < ${len(args)}")
    return conditions


class PostgresAuditLog:
    """Customers as of an instant and the raw log, read from the pool."""

    def __init__(self, pool: asyncpg.Pool, codec: EventCodec | None = None) -> None:
        self.pool = pool
        self.codec = codec or EventCodec()

    async def customer_history(
        self, customer_id: UUID, as_of: datetime, after_version: int = 0
    ) -> CustomerHistory:
        # Two connections at once: the membership facts cost no second round trip's wait.
        rows, facts = await asyncio.gather(
            self.pool.fetch(
                _CUSTOMER_HISTORY,
                customer_id,
                as_of,
                list(CUSTOMER_STATE_TOPICS),
                after_version,
            ),
            self.pool.fetch(_MEMBERSHIPS, customer_id, list(MEMBERSHIP_TOPICS), as_of),
        )
        # The stream's version at the instant comes in the one row without a time; the others
        # are the stream's events, without its id (the customer's, each).
        version, erased = next((row[0], row[1] is not None) for row in rows if row[3] is None)
        keys = await self.codec.keys.load_for(
            self.pool, (*(row[4] for row in rows), *(row[5] for row in facts))
        )
        decode, decode_unopened = self.codec.decode, self.codec.decode_unopened

        def decoded(
            version: int, topic: str, class_version: int, occurred_at: datetime, payload: bytes
        ) -> CanMutateAggregate[UUID]:
            if topic in UNOPENED_TOPICS:
                key = keys.get(stored_key_id(payload) or b"")
                return decode_unopened(
                    customer_id, version, topic, class_version, occurred_at, payload, key, _Sealed
                )
            return decode(customer_id, version, topic, class_version, occurred_at, payload)

        return CustomerHistory(
            # The keys stay loaded: the replay reads the events as soon as they are returned.
            _Decoded([row for row in rows if row[3] is not None], decoded),
            version,
            [decode(*row) for row in facts],
            erased,
        )

    async def registered_at(self, customer_id: UUID) -> datetime | None:
        found: datetime | None = await self.pool.fetchval(
            _REGISTERED, customer_id, topic_of(events_of(Customer)["Registered"])
        )
        return found

    async def kept_replay(self, customer_id: UUID, as_of: datetime, code: str) -> KeptReplay | None:
        row = await self.pool.fetchrow(_KEPT_REPLAY, customer_id, code, as_of)
        if row is None:
            return None
        keys = self.codec.keys
        await keys.load(self.pool, (customer_id,))
        key = keys.key_of(customer_id)
        if key is None:  # erased: what was kept is shredded with the rest
            return None
        version, recorded_at, sealed = row
        try:
            state = key.open_raw(sealed, _replay_bound(customer_id, version, code))
        except SealBroken:  # not sealed as this replay by this key: replayed from the start
            return None
        return KeptReplay(version, recorded_at, state)

    async def keep_replays(
        self, customer_id: UUID, code: str, replays: Sequence[KeptReplay]
    ) -> None:
        if not replays:
            return
        keys = self.codec.keys
        await keys.load(self.pool, (customer_id,))
        key = keys.key_of(customer_id)
        if key is None:
            return
        await self.pool.execute(
            _KEEP_REPLAYS,
            customer_id,
            [r.version for r in replays],
            [r.recorded_at for r in replays],
            [code] * len(replays),
            [key.seal_raw(r.state, _replay_bound(customer_id, r.version, code)) for r in replays],
        )

    async def end(self) -> LogCursor:
        row = await self.pool.fetchrow(_END)
        return LogCursor() if row is None else LogCursor(row[0], row[1])

    async def merged_into(self, customer_id: UUID) -> list[UUID]:
        return [row[0] for row in await self.pool.fetch(_MERGED_INTO, customer_id)]

    async def plan(self, where: LogFilter, after: LogCursor, limit: int) -> LogPlan:
        args: list[Any] = [str(after.transaction_id), after.position]
        conditions = _conditions(where, args)
        args.append(limit)
        limit_at = f"${len(args)}"
        if where.streams:
            # A stream's events come by the primary key; no budget is needed to bound them.
            found = await self.pool.fetch(
                f"WITH {_HORIZON} SELECT events.transaction_id::text::bigint, events.position "
                f"FROM events, horizon WHERE {_AFTER} AND events.transaction_id < horizon.xmin "
                f"AND {' AND '.join(conditions)} {_ORDER} LIMIT {limit_at}",
                *args,
            )
            places = [LogCursor(row[0], row[1]) for row in found]
            return LogPlan(places, places[-1] if places else after, len(places) < limit)
        args.append(SCAN_BUDGET)
        wanted = " AND ".join(conditions) or "true"
        found = await self.pool.fetch(
            f"""WITH {_HORIZON}, scanned AS MATERIALIZED (
                    SELECT events.transaction_id, events.position, events.stream_id,
                           events.topic, events.occurred_at
                    FROM events, horizon
                    WHERE {_AFTER} AND events.transaction_id < horizon.xmin
                    {_ORDER} LIMIT ${len(args)}
                )
                (SELECT transaction_id::text::bigint, position, 1 FROM scanned AS events
                 WHERE {wanted} {_ORDER} LIMIT {limit_at})
                UNION ALL
                (SELECT transaction_id::text::bigint, position, 0 FROM scanned
                 ORDER BY transaction_id DESC, position DESC LIMIT 1)
                UNION ALL
                (SELECT count(*), 0, 2 FROM scanned)""",
            *args,
        )
        places = [LogCursor(row[0], row[1]) for row in found if row[2] == 1]
        last = next((LogCursor(row[0], row[1]) for row in found if row[2] == 0), after)
        scanned = next(row[0] for row in found if row[2] == 2)
        if len(places) == limit:
            return LogPlan(places, places[-1], at_end=False)
        return LogPlan(places, last, at_end=scanned < SCAN_BUDGET)

    async def read(self, where: LogFilter, places: Sequence[LogCursor]) -> list[AuditedEvent]:
        if not places:
            return []
        rows = await self.pool.fetch(
            _READ, [str(p.transaction_id) for p in places], [p.position for p in places]
        )
        await self.codec.keys.load_for(self.pool, (row[6] for row in rows))
        return [
            AuditedEvent(
                LogCursor(row[0], row[1]), row[2], row[3], row[4], row[5], self._shown(row)
            )
            for row in rows
        ]

    async def message_history(self, message_id: UUID) -> MessageHistory:
        # Only a message's own events: a stream of another kind with this id (a key's, a
        # received signal's) is no message, and its documents have no class to decode.
        prefix = Message.stored_as.topic("")
        decisions, rows, deferred = await asyncio.gather(
            self.pool.fetch(_MESSAGE_DECISIONS, message_id, _APPROVAL_SETTLED),
            self.pool.fetch(
                _STREAM_OF_TOPICS,
                message_id,
                sorted(t for t in TOPICS.readable() if t.startswith(prefix)),
            ),
            self.pool.fetchval(_WAITING, message_id),
        )
        await self.codec.keys.load_for(self.pool, (row[5] for row in (*decisions, *rows)))
        decode = self.codec.decode
        waiting = (
            ()
            if deferred is None
            else tuple(
                WaitingContent(channel, rendered.template, rendered.version)
                for channel, rendered in _waiting_decoder.decode(deferred).contents.items()
            )
        )
        return MessageHistory(
            [decode(*row) for row in decisions], [decode(*r) for r in rows], waiting
        )

    async def stream(self, stream_id: UUID) -> list[CanMutateAggregate[UUID]]:
        decode = self.codec.decode
        rows = await self.pool.fetch(_STREAM, stream_id)
        # Their keys, as `read` loads them: an erased customer's is gone from every cache.
        await self.codec.keys.load_for(self.pool, (row[5] for row in rows))
        return [decode(*row) for row in rows]

    def _shown(self, row: asyncpg.Record) -> bytes:
        """The stored payload, with its personal values opened, or erased."""
        opened = self.codec.opened(row[4], row[6])
        return row[6] if opened is None else msgspec.json.encode(opened)
