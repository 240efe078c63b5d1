"""Keeps segment membership current: as signals, profiles and definitions change, and as time
passes, it records each customer's entries into and exits from each segment as events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import msgspec
import structlog

from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.projections import LOCK_POSITION
from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.aggregate import Membership, Segment, membership_id
from domain.segments.conditions import (
    Condition,
    NoSignal,
    SegmentFacts,
    SignalCount,
    SignalFact,
    SignalSum,
)
from domain.signals.aggregate import Signal

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    import asyncpg
    from eventsourcing.domain import CanMutateAggregate

    from ports.clock import Clock
    from ports.projections import LoggedEvent

__all__ = ["SegmentEvaluator", "SegmentTimers"]

_SIGNAL = topic_of(Signal.Recorded)
_SEGMENT = topic_of(Segment) + "."
_MERGED = topic_of(Customer) + ".MergedInto"
_PROFILE_FIELDS = ("first_name", "last_name", "locale", "country", "time_zone")
_ACTIVE = "SELECT segment_id, key, version, condition FROM segments WHERE NOT deleted"
_DIRECTORY = """
SELECT customer_id, identities, first_name, last_name, locale, country, time_zone, attributes,
       consents, merged_into
FROM customer_directory WHERE customer_id = ANY($1::uuid[])
"""
_SIGNALS = """
SELECT customer_id, signal_type, occurred_at,
       CASE WHEN signal_type = ANY($4::text[]) THEN properties END AS properties
FROM customer_signals
WHERE customer_id = ANY($1::uuid[]) AND signal_type = ANY($2::text[]) AND occurred_at > $3
"""
_LAST_SEEN = """
SELECT customer_id, signal_type, max(last_at) AS last_at FROM signal_counters
WHERE customer_id = ANY($1::uuid[]) AND signal_type = ANY($2::text[]) GROUP BY 1, 2
"""
_STATES = """
SELECT segment_id, customer_id, member, version, due_at FROM segment_states
WHERE customer_id = ANY($1::uuid[]) AND segment_id = ANY($2::uuid[])
"""
_SAVE_STATES = """
INSERT INTO segment_states (segment_id, customer_id, member, version, due_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bool[], $4::int4[], $5::timestamptz[])
ON CONFLICT (segment_id, customer_id) DO UPDATE
SET member = EXCLUDED.member, version = EXCLUDED.version, due_at = EXCLUDED.due_at
"""
_CUSTOMERS_PAGE = """
SELECT customer_id FROM customer_directory
WHERE merged_into IS NULL AND ($1::uuid IS NULL OR customer_id > $1)
ORDER BY customer_id LIMIT $2
"""
_MEMBERS_OF = "SELECT customer_id, version FROM segment_states WHERE segment_id = $1 AND member"
_DUE = """
SELECT DISTINCT customer_id FROM (
    SELECT customer_id FROM segment_states WHERE due_at <= $1 ORDER BY due_at LIMIT $2
) due
"""
_condition = msgspec.json.Decoder(Condition)
_json = msgspec.json.decode


@dataclass(frozen=True, slots=True)
class _Segment:
    segment_id: UUID
    key: str
    version: int
    condition: Condition


@dataclass(slots=True)
class _State:
    member: bool = False
    version: int = 0
    due: datetime | None = None


class SegmentEvaluator:
    """Runs as a projection after the read models it reads (`follows`), so the facts it sees
    include every event of its page. Not rebuildable: what it records are facts, and the
    `segment_members` read model is rebuilt from them."""

    name = "segment_evaluator"
    topics = frozenset(
        {_SIGNAL, *CustomerDirectory.topics}
        | {_SEGMENT + kind for kind in ("Defined", "Redefined", "Deleted", "Restored")}
    )
    tables: tuple[str, ...] = ()
    follows = ("customer_directory", "signal_activity")
    # Work is per touched customer: a big page evaluates each busy customer once, not once
    # per page of their signals.
    page_size = 20_000

    def __init__(
        self, clock: Clock, events: PostgresEventStore | None = None, page: int = 1000
    ) -> None:
        self.clock = clock
        self.events = events or PostgresEventStore()
        self.page = page
        self._decoded: dict[UUID, _Segment] = {}
        self.log = structlog.get_logger("chorus.segments")

    def writing_to(self, suffix: str) -> SegmentEvaluator:
        return self

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        now = self.clock.now()
        segments = await self._segments(conn)
        redefined = {e.stream_id for e in events if e.topic.startswith(_SEGMENT)}
        customers: set[UUID] = set()
        if segments:  # else nobody can be in one: no need to read the page's payloads
            for event in events:
                if event.topic == _SIGNAL:
                    customers.add(UUID(event.data["customer_id"]))
                elif not event.topic.startswith(_SEGMENT):
                    customers.add(event.stream_id)
                    if event.topic == _MERGED:
                        customers.add(UUID(event.data["survivor_id"]))
        for gone in redefined - segments.keys():
            await self._empty(conn, gone, now)
        for sid in redefined & segments.keys():
            await self._backfill(conn, segments[sid], now)
            self.log.info("segment evaluated", segment=segments[sid].key)
        if customers and segments:
            await self.evaluate(conn, customers, list(segments.values()), now)

    async def _segments(self, conn: asyncpg.Connection) -> dict[UUID, _Segment]:
        """The segments in force; a version's condition is decoded once, not every page."""
        found: dict[UUID, _Segment] = {}
        for row in await conn.fetch(_ACTIVE):
            known = self._decoded.get(row["segment_id"])
            if known is None or known.version != row["version"]:
                known = _Segment(
                    row["segment_id"],
                    row["key"],
                    row["version"],
                    _condition.decode(row["condition"]),
                )
                self._decoded[known.segment_id] = known
            found[known.segment_id] = known
        return found

    async def _backfill(self, conn: asyncpg.Connection, segment: _Segment, now: datetime) -> None:
        after: UUID | None = None
        while rows := await conn.fetch(_CUSTOMERS_PAGE, after, self.page):
            after = rows[-1]["customer_id"]
            await self.evaluate(conn, [row["customer_id"] for row in rows], [segment], now)

    async def _empty(self, conn: asyncpg.Connection, sid: UUID, now: datetime) -> None:
        """A deleted segment: everyone in it exits."""
        row = await conn.fetchrow("SELECT key, version FROM segments WHERE segment_id = $1", sid)
        if row is None:
            return
        segment = _Segment(sid, row["key"], row["version"], cast("Condition", None))
        exits = [
            _exited(segment, member["customer_id"], member["version"] + 1, now, "segment deleted")
            for member in await conn.fetch(_MEMBERS_OF, sid)
        ]
        await self.events.append(conn, events=exits)
        # The rows keep each membership stream's version: a restored segment appends after it.
        await conn.execute(
            "UPDATE segment_states SET member = false, version = version + member::int,"
            " due_at = NULL WHERE segment_id = $1",
            sid,
        )

    async def evaluate(
        self,
        conn: asyncpg.Connection,
        customers: Collection[UUID],
        segments: Sequence[_Segment],
        now: datetime,
    ) -> int:
        """Records who entered and exited; returns how many did."""
        ids = list(customers)
        facts = await self._facts(conn, ids, segments, now)
        states = {
            (row["segment_id"], row["customer_id"]): _State(
                row["member"], row["version"], row["due_at"]
            )
            for row in await conn.fetch(_STATES, ids, [s.segment_id for s in segments])
        }
        changes: list[CanMutateAggregate[UUID]] = []
        saved: list[tuple[UUID, UUID, bool, int, datetime | None]] = []
        for customer in ids:
            known = facts.get(customer)
            for segment in segments:
                state = states.get((segment.segment_id, customer), _State())
                holds = known is not None and segment.condition.holds(known, now)
                due = segment.condition.changes_at(known, now) if known is not None else None
                if holds == state.member:
                    if due != state.due:
                        saved.append((segment.segment_id, customer, holds, state.version, due))
                    continue
                state.version += 1
                changes.append(
                    _entered(segment, customer, state.version, now)
                    if holds
                    else _exited(
                        segment,
                        customer,
                        state.version,
                        now,
                        "condition" if known is not None else "merged",
                    )
                )
                saved.append((segment.segment_id, customer, holds, state.version, due))
        if changes:
            await self.events.append(conn, events=changes)
        if saved:
            await conn.execute(_SAVE_STATES, *(list(column) for column in zip(*saved, strict=True)))
        return len(changes)

    async def _facts(
        self,
        conn: asyncpg.Connection,
        customers: list[UUID],
        segments: Sequence[_Segment],
        now: datetime,
    ) -> dict[UUID, SegmentFacts]:
        types = sorted({t for s in segments for t in s.condition.signal_types})
        lookback = max((s.condition.lookback for s in segments), default=timedelta(0))
        signals: dict[UUID, dict[str, list[SignalFact]]] = {}
        last_seen: dict[UUID, dict[str, datetime]] = {}
        if types:
            wanted = sorted({t for s in segments for t in _reading_properties(s.condition)})
            for row in await conn.fetch(_SIGNALS, customers, types, now - lookback, wanted):
                signals.setdefault(row["customer_id"], {}).setdefault(
                    row["signal_type"], []
                ).append(SignalFact(row["occurred_at"], _properties(row["properties"])))
            for row in await conn.fetch(_LAST_SEEN, customers, types):
                last_seen.setdefault(row["customer_id"], {})[row["signal_type"]] = row["last_at"]
        found: dict[UUID, SegmentFacts] = {}
        for row in await conn.fetch(_DIRECTORY, customers):
            if row["merged_into"] is not None:
                continue
            customer = row["customer_id"]
            attributes: dict[str, Any] = _json(row["attributes"])
            attributes.update({f: row[f] for f in _PROFILE_FIELDS if row[f] is not None})
            found[customer] = SegmentFacts(
                attributes=attributes,
                identity_types=frozenset(i.partition(":")[0] for i in row["identities"]),
                consents=_consents(_json(row["consents"])),
                signals=signals.get(customer, {}),
                last_seen=last_seen.get(customer, {}),
            )
        return found

    async def due(self, pool: asyncpg.Pool, limit: int) -> int:
        """Evaluates the customers whose membership may have changed with time alone."""
        async with pool.acquire() as proxy, proxy.transaction():
            conn = cast("asyncpg.Connection", proxy)
            # Takes turns with the evaluator's pages, which hold this row while they run.
            locked = await conn.fetchrow(LOCK_POSITION, self.name)
            if locked is None or locked["position"] is None:
                return 0
            now = self.clock.now()
            rows = await conn.fetch(_DUE, now, limit)
            if not rows:
                return 0
            customers = [row["customer_id"] for row in rows]
            segments = list((await self._segments(conn)).values())
            await conn.execute(
                "UPDATE segment_states SET due_at = NULL"
                " WHERE customer_id = ANY($1::uuid[]) AND due_at <= $2",
                customers,
                now,
            )
            await self.evaluate(conn, customers, segments, now)
            return len(customers)


class SegmentTimers:
    """The durable scheduler's work: re-evaluates memberships that fall due with time."""

    def __init__(self, pool: asyncpg.Pool, evaluator: SegmentEvaluator) -> None:
        self.pool = pool
        self.evaluator = evaluator

    async def __call__(self, batch: int) -> int:
        return await self.evaluator.due(self.pool, batch)


def _reading_properties(condition: Condition) -> set[str]:
    """The signal types whose properties the condition looks at (filters, sums)."""
    if isinstance(condition, SignalSum) or (
        isinstance(condition, SignalCount | NoSignal) and condition.where
    ):
        return {condition.signal}
    return {t for child in condition.children for t in _reading_properties(child)}


def _properties(stored: str | None) -> dict[str, Any]:
    return {} if stored is None else cast("dict[str, Any]", _json(stored))


def _consents(stored: dict[str, Any]) -> dict[tuple[Channel, Purpose], bool]:
    found: dict[tuple[Channel, Purpose], bool] = {}
    opted_out: set[Channel] = set()
    for key, state in stored.items():
        channel_name, _, purpose_name = key.partition(":")
        if channel_name not in Channel.__members__.values():
            continue
        channel = Channel(channel_name)
        if purpose_name == "*":
            if not state["granted"]:
                opted_out.add(channel)
        elif purpose_name in Purpose.__members__.values():
            found[(channel, Purpose(purpose_name))] = bool(state["granted"])
    for channel in opted_out:
        for purpose in Purpose:
            found[(channel, purpose)] = False
    return found


def _entered(segment: _Segment, customer: UUID, version: int, now: datetime) -> Membership.Entered:
    return Membership.Entered(**_membership(segment, customer, version, now))


def _exited(
    segment: _Segment, customer: UUID, version: int, now: datetime, reason: str
) -> Membership.Exited:
    fields = _membership(segment, customer, version, now)
    return Membership.Exited(**fields, reason=reason)  # type: ignore[call-arg]


def _membership(segment: _Segment, customer: UUID, version: int, now: datetime) -> dict[str, Any]:
    return {
        "originator_id": membership_id(segment.segment_id, customer),
        "originator_version": version,
        "timestamp": now,
        "segment_id": segment.segment_id,
        "segment_key": segment.key,
        "segment_version": segment.version,
        "customer_id": customer,
    }
