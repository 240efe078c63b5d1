"""`chorus audit verify` over a log of 1,000,000 events: events per second, against a raw read
of the same log in the same run.

The log is written through the aggregates themselves: customers registered with an email and a
consent, then send requests decided by the policy engine (transactional, marketing and service,
some over the daily cap), and a `Message` queued for each allowed one, as a send with content
records it. The raw read is what any replay must at least do: every customer event and every
queued message read from PostgreSQL in the order the checks read them, the rows received and
nothing done with them. The verification reads the same rows, decodes them, replays each
customer, decides each decision again, and checks each message against its decision (the read
model comparison, a rebuild of each projection, is measured by the projections benchmark).
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.verified_log import PostgresVerifiedLog
from application.audit.verify import VerifyLog
from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.customer.identities import Identity, IdentityClaim, Verification
from domain.message.aggregate import Message
from domain.message.content import Content
from domain.policy.decision import SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.vocabulary import Channel, Purpose

if TYPE_CHECKING:
    from eventsourcing.domain import Aggregate

__all__ = ["AuditVerifyConfig", "run_audit_verify"]

_START = datetime(2026, 6, 1, tzinfo=UTC)
_REQUESTS = (
    SendRequest("care", Purpose.TRANSACTIONAL, (Channel.EMAIL,)),
    SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,)),
    SendRequest("billing", Purpose.SERVICE, (Channel.EMAIL, Channel.SMS)),
)
_CONTENT = Content(subject="Hello", body="Hi")
_RAW = """
SELECT stream_id, version, topic, class_version, occurred_at, payload FROM events
WHERE topic LIKE $1 ORDER BY stream_id, version
"""
_RAW_MESSAGES = """
SELECT stream_id, version, topic, class_version, occurred_at, payload FROM events
WHERE topic = $1 ORDER BY position
"""


@dataclass(frozen=True, slots=True)
class AuditVerifyConfig:
    events: int = 1_000_000
    events_per_customer: int = 100
    batch: int = 20  # customers a commit
    rounds: int = 2  # each timing taken this many times, the best kept
    seed: int = 17


class _Quiet:
    def begin(self, check: str, total: int) -> None:
        pass

    def reached(self, check: str, done: int) -> None:
        pass


def _customer(rng: random.Random, at: datetime, events: int) -> list[Aggregate]:
    """One customer's history, and the messages their allowed sends queued."""
    rules = default_rule_set()
    email = Identity("email", f"{uuid.uuid4().hex}@x.org")
    customer = Customer.register(uuid.uuid4(), at, (IdentityClaim(email, Verification.VERIFIED),))
    customer.change_consent(
        ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form"), at
    )
    messages: list[Aggregate] = []
    written = customer.version
    while written < events:
        at += timedelta(minutes=rng.randint(5, 600))
        message_id, decision_id = uuid.uuid4(), uuid.uuid4()
        request = rng.choice(_REQUESTS)
        decision = customer.decide_message(message_id, decision_id, request, rules, at, "bench")
        written += 1
        if decision.allows_send and decision.channel is not None:
            messages.append(
                Message(
                    id=message_id,
                    timestamp=at,
                    customer_id=customer.id,
                    decision_id=decision_id,
                    channel=decision.channel,
                    purpose=request.purpose,
                    team=request.team,
                    recipient=email.value,
                    content=_CONTENT,
                    campaign=None,
                    template=None,
                    template_version=None,
                    correlation_id=None,
                )
            )
            written += 1
    return [customer, *messages]


async def _write(pool: asyncpg.Pool, config: AuditVerifyConfig) -> None:
    rng = random.Random(config.seed)
    store = PostgresEventStore()
    written = 0
    while written < config.events:
        batch: list[Aggregate] = []
        for _ in range(config.batch):
            batch.extend(_customer(rng, _START, config.events_per_customer))
        written += sum(len(a.pending_events) for a in batch)
        await store.append(pool, batch)  # type: ignore[arg-type]


async def _raw(pool: asyncpg.Pool) -> int:
    """The rows the checks read, received and dropped."""
    count = 0
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        customer = Customer.stored_as.name + ".%"
        async for _ in conn.cursor(_RAW, customer, prefetch=2_000):
            count += 1
        async for _ in conn.cursor(_RAW_MESSAGES, topic_of(Message.Queued), prefetch=2_000):
            count += 1
    return count


async def run_audit_verify(dsn: str, config: AuditVerifyConfig) -> dict[str, Any]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        await _write(pool, config)
        await pool.execute("ANALYZE events")
        total = await pool.fetchval("SELECT count(*) FROM events")
        raw_seconds = verify_seconds = float("inf")
        verified = 0
        reports: list[Any] = []
        for _ in range(config.rounds):
            started = time.perf_counter()
            raw_events = await _raw(pool)
            raw_seconds = min(raw_seconds, time.perf_counter() - started)
            checks = VerifyLog(PostgresVerifiedLog(pool), None)
            started = time.perf_counter()
            reports = await checks(_Quiet())
            verify_seconds = min(verify_seconds, time.perf_counter() - started)
            verified = checks.events
    finally:
        await pool.close()
    raw_rate = raw_events / raw_seconds
    verify_rate = verified / verify_seconds
    return {
        "events_in_table": total,
        "events_read": verified,
        "checks": {r.check: {"checked": r.checked, "differences": r.differences} for r in reports},
        "raw_read_events_per_s": round(raw_rate),
        "verify_events_per_s": round(verify_rate),
        "ratio": round(verify_rate / raw_rate, 3),
        "raw_read_seconds": round(raw_seconds, 2),
        "verify_seconds": round(verify_seconds, 2),
    }
