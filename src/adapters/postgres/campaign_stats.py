"""The campaign stats: a projection of the enrollments' and their messages' events into
counters (`campaign_stats`), and the read model over them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from adapters.campaign_stats import TOPICS, fold, named
from domain.campaign.stats import MessageCost, StatsFold, Trace
from ports.campaign_stats import Counter

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    import asyncpg

    from ports.projections import LoggedEvent

__all__ = ["CampaignStatsProjection", "PostgresCampaignStats"]

_COUNTERS = """
SELECT step, split, arm, figure, detail, value FROM campaign_stats
WHERE campaign_id = $1 AND value <> 0 ORDER BY step, split, arm, figure, detail
"""
_ADD = """
INSERT INTO {counters} AS c (campaign_id, step, split, arm, figure, detail, value)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::numeric[])
ON CONFLICT (campaign_id, step, split, arm, figure, detail) DO UPDATE
SET value = c.value + EXCLUDED.value
"""
_TRACES = """
SELECT enrollment_id, campaign_id, arms, steps, waiting, converted FROM {enrollments}
WHERE enrollment_id = ANY($1::uuid[])
"""
_STORE_TRACES = """
INSERT INTO {enrollments} (enrollment_id, campaign_id, arms, steps, waiting, converted)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[], $4::jsonb[], $5::text[],
                     $6::boolean[])
ON CONFLICT (enrollment_id) DO UPDATE
SET arms = EXCLUDED.arms, steps = EXCLUDED.steps, waiting = EXCLUDED.waiting,
    converted = EXCLUDED.converted
"""
_MESSAGES = """
SELECT message_id, enrollment_id, step, cost, currency FROM {messages}
WHERE message_id = ANY($1::uuid[])
"""
_STORE_MESSAGES = """
INSERT INTO {messages} (message_id, enrollment_id, step, cost, currency)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::numeric[], $5::text[])
ON CONFLICT (message_id) DO UPDATE
SET enrollment_id = EXCLUDED.enrollment_id, step = EXCLUDED.step, cost = EXCLUDED.cost,
    currency = EXCLUDED.currency
"""
_FORGET_MESSAGES = "DELETE FROM {messages} WHERE message_id = ANY($1::uuid[])"


class PostgresCampaignStats:
    """The counters, as the projection keeps them (CampaignStatsReadModel)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def counters(self, campaign_id: UUID) -> list[Counter]:
        return [Counter(*row) for row in await self.pool.fetch(_COUNTERS, campaign_id)]


class CampaignStatsProjection:
    """Counts each campaign's enrollments, sends, responses, conversions and costs per step and
    variant (`domain.campaign.stats`), page by page: the enrollments and messages a page names
    are read, folded, and written back with the counters' changes."""

    name = "campaign_stats"
    topics = TOPICS

    def __init__(self, suffix: str = "") -> None:
        self.counters = "campaign_stats" + suffix
        self.enrollments = "campaign_stats_enrollments" + suffix
        self.messages = "campaign_stats_messages" + suffix
        self.tables = (self.counters, self.enrollments, self.messages)

    def writing_to(self, suffix: str) -> CampaignStatsProjection:
        return CampaignStatsProjection(suffix)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        enrollment_ids, message_ids = named(events)
        messages = {
            row["message_id"]: MessageCost(*list(row)[1:])
            for row in await conn.fetch(_MESSAGES.format(messages=self.messages), message_ids)
        }
        enrollment_ids |= {
            message.enrollment_id
            for message in messages.values()
            if message.enrollment_id is not None
        }
        traces = {
            row["enrollment_id"]: Trace(
                row["campaign_id"],
                json.loads(row["arms"]),
                json.loads(row["steps"]),
                row["waiting"],
                row["converted"],
            )
            for row in await conn.fetch(
                _TRACES.format(enrollments=self.enrollments), list(enrollment_ids)
            )
        }
        folded = StatsFold(traces, messages)
        fold(folded, events)
        await self._store(conn, folded)

    async def _store(self, conn: asyncpg.Connection, folded: StatsFold) -> None:
        traces = folded.traces
        if traces:
            await conn.execute(
                _STORE_TRACES.format(enrollments=self.enrollments),
                list(traces),
                [t.campaign_id for t in traces.values()],
                [json.dumps(t.arms) for t in traces.values()],
                [json.dumps(t.steps) for t in traces.values()],
                [t.waiting for t in traces.values()],
                [t.converted for t in traces.values()],
            )
        messages = folded.messages
        if messages:
            await conn.execute(
                _STORE_MESSAGES.format(messages=self.messages),
                list(messages),
                [m.enrollment_id for m in messages.values()],
                [m.step for m in messages.values()],
                [m.cost for m in messages.values()],
                [m.currency for m in messages.values()],
            )
        if folded.forgotten:
            await conn.execute(
                _FORGET_MESSAGES.format(messages=self.messages), list(folded.forgotten)
            )
        changes = folded.touched()
        if changes:
            keys = list(changes)
            await conn.execute(
                _ADD.format(counters=self.counters),
                *[[key[i] for key in keys] for i in range(6)],
                list(changes.values()),
            )
