"""A customer as of an instant, with 10,000 events on their streams: p50 and p99.

One customer's history is written through the Customer aggregate itself, a minute apart over
about a week: send decisions (most of a busy customer's events), consent grants and
withdrawals, profile changes, new device tokens, suppressions added and lifted; and segment
entries and exits on their membership streams. Other customers' events sit in the same table.
Then `CustomerAsOf` (the code behind `GET /v1/audit/customers/{id}?as_of=`) rebuilds them at
instants drawn uniformly over the history, one at a time, timed from the call to the view:
cold (a process that never replayed this customer, so the whole stream up to the instant is
read and replayed) and warm (after a first look at the customer, from the nearest checkpoint
the replays keep in memory).

A second history of the same length holds no decisions at all, only changes the view shows:
the worst case for the replay, which leaves decisions out.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from adapters.postgres.audit_log import PostgresAuditLog
from adapters.postgres.event_store import PostgresEventStore
from adapters.system.clock import SystemClock
from application.audit.customer_as_of import Checkpoints, CustomerAsOf
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.customer.identities import Identity, IdentityClaim, Verification
from domain.policy.decision import SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.aggregate import Membership, membership_id, segment_id

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

__all__ = ["TARGET_P99_MS", "AuditConfig", "run_audit"]

TARGET_P99_MS = 100.0
_START = datetime(2026, 6, 1, tzinfo=UTC)
_BATCH = 500


@dataclass(frozen=True, slots=True)
class AuditConfig:
    events: int = 10_000  # on the customer's streams: their own and their memberships
    membership_share: float = 0.05
    decision_share: float = 0.6  # of the customer's own events, in the realistic history
    other_customers: int = 500
    other_events_each: int = 40
    queries: int = 300  # warm, one after another
    cold_queries: int = 100  # each of a process that never replayed the customer
    warmup: int = 5
    seed: int = 11


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _memberships(
    customer_id: UUID, count: int, times: list[datetime]
) -> list[CanMutateAggregate[UUID]]:
    """Alternating entries and exits of a few segments, at the given times."""
    facts: list[Any] = []
    versions: dict[str, int] = {}
    for n in range(count):
        key = f"segment-{n % 5}"
        sid = segment_id(key)
        version = versions[key] = versions.get(key, 0) + 1
        fields = {
            "originator_id": membership_id(sid, customer_id),
            "originator_version": version,
            "timestamp": times[n],
            "segment_id": sid,
            "segment_key": key,
            "segment_version": 1,
            "customer_id": customer_id,
        }
        kind = Membership.Entered if version % 2 else Membership.Exited
        extra = {} if version % 2 else {"reason": "condition"}
        facts.append(kind(**fields, **extra))
    return facts


class _History:
    """Writes one customer's events through the aggregate, a batch per commit."""

    def __init__(self, pool: asyncpg.Pool, rng: random.Random) -> None:
        self.pool = pool
        self.rng = rng
        self.store = PostgresEventStore()
        self.rules = default_rule_set()

    async def write(self, own_events: int, decision_share: float) -> tuple[UUID, datetime]:
        rng = self.rng
        at = _START
        customer = Customer.register(
            uuid.uuid4(), at, (IdentityClaim(Identity("email", f"{uuid.uuid4().hex}@x.org")),)
        )
        customer.update_profile(at, {"time_zone": "Europe/Lisbon"}, {})
        requests = [
            SendRequest("care", Purpose.TRANSACTIONAL, (Channel.EMAIL,)),
            SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,)),
            SendRequest("billing", Purpose.SERVICE, (Channel.EMAIL, Channel.SMS)),
        ]
        granted = False
        while customer.version < own_events:
            at += timedelta(minutes=1)
            roll = rng.random()
            if roll < decision_share:
                customer.decide_message(
                    uuid.uuid4(), uuid.uuid4(), rng.choice(requests), self.rules, at, "bench"
                )
            elif roll < decision_share + (1 - decision_share) * 0.45:
                granted = not granted
                source = "preference centre" if granted else "unsubscribe link"
                customer.change_consent(
                    ConsentRecord(Channel.EMAIL, Purpose.MARKETING, granted, source), at
                )
            elif roll < decision_share + (1 - decision_share) * 0.8:
                customer.update_profile(at, {}, {"visits": customer.version})
            elif roll < decision_share + (1 - decision_share) * 0.9:
                token = Identity("device_token", uuid.uuid4().hex)
                customer.link(IdentityClaim(token, Verification.VERIFIED), at)
            elif customer.suppressed:
                customer.lift_suppression(Channel.SMS, "support", at)
            else:
                customer.suppress(Channel.SMS, "bounce", at)
            if len(customer.pending_events) >= _BATCH:
                await self.store.append(self.pool, [customer])  # type: ignore[arg-type]
        await self.store.append(self.pool, [customer])  # type: ignore[arg-type]
        return customer.id, at

    async def others(self, customers: int, each: int) -> None:
        """Other customers' events around, so the table is not one customer's alone."""
        for _ in range(customers):
            at = _START
            other = Customer.register(
                uuid.uuid4(), at, (IdentityClaim(Identity("email", f"{uuid.uuid4().hex}@y.org")),)
            )
            for n in range(each - 1):
                at += timedelta(minutes=7)
                other.update_profile(at, {}, {"n": n})
            await self.store.append(self.pool, [other])  # type: ignore[arg-type]


def _figures(times_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(times_ms), 2),
        "p99_ms": round(_percentile(times_ms, 0.99), 2),
        "max_ms": round(max(times_ms), 2),
    }


async def _timed(
    log: PostgresAuditLog, customer_id: UUID, start: datetime, end: datetime, config: AuditConfig
) -> dict[str, Any]:
    """Cold: each instant asked of a process that never replayed the customer. Warm: the
    instants asked one after another of one process, after a first look at the customer now
    (as an auditor's session goes), replaying from the nearest checkpoint."""
    rng = random.Random(config.seed)
    span = (end - start).total_seconds()

    def instants(count: int) -> list[datetime]:
        return [start + timedelta(seconds=rng.uniform(0, span)) for _ in range(count)]

    async def timed(as_of: CustomerAsOf, instant: datetime) -> float:
        began = time.perf_counter()
        await as_of(customer_id, instant)
        return (time.perf_counter() - began) * 1000

    for _ in range(config.warmup):
        await CustomerAsOf(log, SystemClock(), Checkpoints())(customer_id, end)
    cold = [
        await timed(CustomerAsOf(log, SystemClock(), Checkpoints()), instant)
        for instant in instants(config.cold_queries)
    ]
    whole = [
        await timed(CustomerAsOf(log, SystemClock(), Checkpoints()), end)
        for _ in range(max(5, config.cold_queries // 5))
    ]
    session = CustomerAsOf(log, SystemClock(), Checkpoints())
    await session(customer_id, end)
    warm = [await timed(session, instant) for instant in instants(config.queries)]
    return {
        "cold": {"queries": len(cold), **_figures(cold)},
        "cold_whole_history": {"queries": len(whole), **_figures(whole)},
        "warm": {"queries": len(warm), **_figures(warm)},
    }


async def _scenario(
    pool: asyncpg.Pool, config: AuditConfig, decision_share: float, rng: random.Random
) -> dict[str, Any]:
    history = _History(pool, rng)
    membership_events = round(config.events * config.membership_share)
    own = config.events - membership_events
    customer_id, end = await history.write(own, decision_share)
    span = (end - _START).total_seconds()
    fact_times = sorted(
        _START + timedelta(seconds=rng.uniform(0, span)) for _ in range(membership_events)
    )
    await history.store.append(
        pool,  # type: ignore[arg-type]
        events=_memberships(customer_id, membership_events, fact_times),
    )
    counts = await pool.fetchrow(
        """SELECT count(*) FILTER (WHERE stream_id = $1) AS own,
                  count(*) FILTER (WHERE stream_id <> $1) AS memberships,
                  count(*) FILTER (WHERE stream_id = $1 AND topic LIKE '%.Message%') AS decisions
           FROM events WHERE subject_id = $1""",
        customer_id,
    )
    await pool.execute("ANALYZE events")
    figures = await _timed(PostgresAuditLog(pool), customer_id, _START, end, config)
    return {
        "events_on_streams": counts["own"] + counts["memberships"],
        "customer_stream_events": counts["own"],
        "membership_events": counts["memberships"],
        "decision_events": counts["decisions"],
        **figures,
        "meets_target": figures["cold"]["p99_ms"] <= TARGET_P99_MS,
        "warm_meets_target": figures["warm"]["p99_ms"] <= TARGET_P99_MS,
    }


async def run_audit(dsn: str, config: AuditConfig) -> dict[str, Any]:
    rng = random.Random(config.seed)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        await _History(pool, rng).others(config.other_customers, config.other_events_each)
        realistic = await _scenario(pool, config, config.decision_share, rng)
        no_decisions = await _scenario(pool, config, 0.0, rng)
        table_events = await pool.fetchval("SELECT count(*) FROM events")
    finally:
        await pool.close()
    return {
        "benchmark": "audit",
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": realistic["meets_target"],
        "events_in_table": table_events,
        "as_of": realistic,
        "as_of_without_decisions": no_decisions,
    }
