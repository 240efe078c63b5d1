"""Signals' trace contexts in `signal_trace_contexts` (`0053_signal_trace_contexts.sql`): kept
at intake from the span that received them, read by the processes that act on them (ADR 0020).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.system.trace_context import sampled_traceparent, signal_work_span, tracing_installed
from domain.signals.aggregate import signal_id_for

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from contextlib import AbstractContextManager
    from uuid import UUID

    import asyncpg

__all__ = ["PostgresSignalTraces", "keep_signal_traces"]

# Rows older than this are pruned as new ones come: a process that far behind starts new traces.
_KEPT_FOR = "1 hour"
_PRUNED_AT_ONCE = 1000
# A signal received again keeps the trace it was first received in.
_KEEP = f"""
WITH pruned AS (
    DELETE FROM signal_trace_contexts WHERE signal_id IN (
        SELECT signal_id FROM signal_trace_contexts
        WHERE received_at < now() - interval '{_KEPT_FOR}'
        ORDER BY received_at LIMIT {_PRUNED_AT_ONCE}
        FOR UPDATE SKIP LOCKED
    )
)
INSERT INTO signal_trace_contexts (signal_id, trace_context)
SELECT unnest($1::uuid[]), $2
ON CONFLICT (signal_id) DO NOTHING
"""
_RECEIVED_IN = (
    "SELECT signal_id, trace_context FROM signal_trace_contexts WHERE signal_id = ANY($1::uuid[])"
)


async def keep_signal_traces(pool: asyncpg.Pool, event_ids: Collection[str]) -> None:
    """Keeps the current span's context as these signals' (by producer event id), before they
    are committed, so no process reads a signal before its context; nothing outside a sampled
    span (the exporter `none`, or a trace not sampled)."""
    traceparent = sampled_traceparent()
    if traceparent is None or not event_ids:
        return
    await pool.execute(_KEEP, [signal_id_for(event_id) for event_id in event_ids], traceparent)


class PostgresSignalTraces:
    """Reads the contexts on a pool of its own: they were committed before their signals."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def received_in(self, signal_ids: Collection[UUID]) -> Mapping[UUID, str]:
        if not signal_ids or not tracing_installed():
            return {}
        rows = await self.pool.fetch(_RECEIVED_IN, list(signal_ids))
        return {signal_id: trace_context for signal_id, trace_context in rows}

    def continued(
        self, process: str, trace_context: str | None, signal_id: UUID, customer_id: UUID
    ) -> AbstractContextManager[object]:
        return signal_work_span(process, trace_context, signal_id, customer_id)
