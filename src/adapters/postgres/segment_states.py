"""The segment evaluator's reads and states in PostgreSQL: segments in force, customers' facts
from the directory and signal read models, and `segment_states`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import msgspec

from domain.customer.classified import CLASSIFIED_SIGNAL
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.conditions import (
    Classified,
    Condition,
    NoSignal,
    SegmentFacts,
    SignalCount,
    SignalFact,
    SignalSum,
)
from ports.segment_evaluation import MembershipState, SegmentInForce

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from uuid import UUID

    import asyncpg

__all__ = [
    "PostgresCustomerFacts",
    "PostgresMembershipStates",
    "PostgresSegmentsInForce",
    "SegmentConditions",
]

_PROFILE_FIELDS = ("first_name", "last_name", "locale", "country", "time_zone")
_ACTIVE = "SELECT segment_id, key, version, condition FROM segments WHERE NOT deleted"
_LAST_VERSION = "SELECT key, version FROM segments WHERE segment_id = $1"
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
_CUSTOMERS_PAGE = """
SELECT customer_id FROM customer_directory
WHERE merged_into IS NULL AND ($1::uuid IS NULL OR customer_id > $1)
ORDER BY customer_id LIMIT $2
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
_MEMBERS_OF = "SELECT customer_id, version FROM segment_states WHERE segment_id = $1 AND member"
# The rows keep each membership stream's version: a restored segment appends after it.
_EMPTY = """
UPDATE segment_states SET member = false, version = version + member::int, due_at = NULL
WHERE segment_id = $1
"""
_DUE = """
SELECT DISTINCT customer_id FROM (
    SELECT customer_id FROM segment_states WHERE due_at <= $1 ORDER BY due_at LIMIT $2
) due
"""
_NOT_DUE = """
UPDATE segment_states SET due_at = NULL WHERE customer_id = ANY($1::uuid[]) AND due_at <= $2
"""
_condition = msgspec.json.Decoder(Condition)
_json = msgspec.json.decode


class SegmentConditions:
    """Decoded conditions by segment, kept across pages: a version is decoded once."""

    def __init__(self) -> None:
        self.decoded: dict[UUID, SegmentInForce] = {}


class PostgresSegmentsInForce:
    def __init__(self, conn: asyncpg.Connection, conditions: SegmentConditions) -> None:
        self.conn = conn
        self.conditions = conditions

    async def in_force(self) -> list[SegmentInForce]:
        decoded = self.conditions.decoded
        found: list[SegmentInForce] = []
        for row in await self.conn.fetch(_ACTIVE):
            known = decoded.get(row["segment_id"])
            if known is None or known.version != row["version"]:
                known = SegmentInForce(
                    row["segment_id"],
                    row["key"],
                    row["version"],
                    _condition.decode(row["condition"]),
                )
                decoded[known.segment_id] = known
            found.append(known)
        return found

    async def last_version(self, segment_id: UUID) -> tuple[str, int] | None:
        row = await self.conn.fetchrow(_LAST_VERSION, segment_id)
        return None if row is None else (row["key"], row["version"])


class PostgresCustomerFacts:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def facts(
        self, customers: Collection[UUID], segments: Sequence[SegmentInForce], now: datetime
    ) -> dict[UUID, SegmentFacts]:
        ids = list(customers)
        types = sorted({t for s in segments for t in s.condition.signal_types})
        lookback = max((s.condition.lookback for s in segments), default=timedelta(0))
        signals: dict[UUID, dict[str, list[SignalFact]]] = {}
        last_seen: dict[UUID, dict[str, datetime]] = {}
        if types:
            wanted = sorted({t for s in segments for t in _reading_properties(s.condition)})
            for row in await self.conn.fetch(_SIGNALS, ids, types, now - lookback, wanted):
                signals.setdefault(row["customer_id"], {}).setdefault(
                    row["signal_type"], []
                ).append(SignalFact(row["occurred_at"], _properties(row["properties"])))
            for row in await self.conn.fetch(_LAST_SEEN, ids, types):
                last_seen.setdefault(row["customer_id"], {})[row["signal_type"]] = row["last_at"]
        found: dict[UUID, SegmentFacts] = {}
        for row in await self.conn.fetch(_DIRECTORY, ids):
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

    async def customers(self, after: UUID | None, limit: int) -> list[UUID]:
        return [row["customer_id"] for row in await self.conn.fetch(_CUSTOMERS_PAGE, after, limit)]


class PostgresMembershipStates:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def states(
        self, customers: Collection[UUID], segments: Collection[UUID]
    ) -> dict[tuple[UUID, UUID], MembershipState]:
        return {
            (row["segment_id"], row["customer_id"]): MembershipState(
                row["member"], row["version"], row["due_at"]
            )
            for row in await self.conn.fetch(_STATES, list(customers), list(segments))
        }

    async def save(self, states: Sequence[tuple[UUID, UUID, MembershipState]]) -> None:
        if not states:
            return
        await self.conn.execute(
            _SAVE_STATES,
            [segment for segment, _, _ in states],
            [customer for _, customer, _ in states],
            [state.member for _, _, state in states],
            [state.version for _, _, state in states],
            [state.due for _, _, state in states],
        )

    async def members(self, segment: UUID) -> list[tuple[UUID, int]]:
        return [
            (row["customer_id"], row["version"])
            for row in await self.conn.fetch(_MEMBERS_OF, segment)
        ]

    async def empty(self, segment: UUID) -> None:
        await self.conn.execute(_EMPTY, segment)

    async def take_due(self, now: datetime, limit: int) -> list[UUID]:
        customers = [row["customer_id"] for row in await self.conn.fetch(_DUE, now, limit)]
        if customers:
            await self.conn.execute(_NOT_DUE, customers, now)
        return customers


def _reading_properties(condition: Condition) -> set[str]:
    """The signal types whose properties the condition looks at (filters, sums)."""
    if isinstance(condition, Classified):
        return {CLASSIFIED_SIGNAL}
    if isinstance(condition, SignalSum) or (
        isinstance(condition, SignalCount | NoSignal) and condition.where
    ):
        return {condition.signal}
    return {t for child in condition.children for t in _reading_properties(child)}


def _properties(stored: str | None) -> dict[str, Any]:
    return {} if stored is None else cast("dict[str, Any]", _json(stored))


# By value: a lookup here is a dict's, where `Channel(name)` and `in Channel.__members__` cost
# a call and a scan for each of every customer's consents (a broadcast reads 100,000 customers').
_CHANNELS = {channel.value: channel for channel in Channel}
_PURPOSES = {purpose.value: purpose for purpose in Purpose}


def _consents(stored: dict[str, Any]) -> dict[tuple[Channel, Purpose], bool]:
    found: dict[tuple[Channel, Purpose], bool] = {}
    opted_out: set[Channel] = set()
    for key, state in stored.items():
        channel_name, _, purpose_name = key.partition(":")
        channel = _CHANNELS.get(channel_name)
        if channel is None:
            continue
        if purpose_name == "*":
            if not state["granted"]:
                opted_out.add(channel)
        elif (purpose := _PURPOSES.get(purpose_name)) is not None:
            found[(channel, purpose)] = bool(state["granted"])
    for channel in opted_out:
        for purpose in Purpose:
            found[(channel, purpose)] = False
    return found
