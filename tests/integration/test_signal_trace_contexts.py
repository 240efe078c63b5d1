"""Intake keeps the trace context a signal was received in, for the processes after it: only
a sampled one, the first one a signal came with, and for a while only (ADR 0020)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from adapters.postgres.signal_intake import PostgresSignalIntake
from adapters.postgres.signal_traces import PostgresSignalTraces
from adapters.system.trace_context import context_from, current_traceparent
from domain.signals.aggregate import signal_id_for
from entrypoints.tracing import tracer
from tests.tracing_spans import recorded_spans
from tests.unit.in_memory_chorus import received

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 5, 12, tzinfo=UTC)
UNSAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


async def received_in_a_span(intake: PostgresSignalIntake, *event_ids: str) -> str:
    with tracer().start_as_current_span("POST /v1/events"):
        stored = current_traceparent()
        await intake.receive([received(e, f"{e}@example.org") for e in event_ids], AT)
    assert stored is not None
    return stored


class TestKeepingSignalsTraceContexts:
    async def test_each_signal_received_in_a_span_keeps_it_and_a_repeat_keeps_the_first(
        self, pool: asyncpg.Pool
    ) -> None:
        recorded_spans()
        intake, traces = PostgresSignalIntake(pool), PostgresSignalTraces(pool)
        first = await received_in_a_span(intake, "e-1", "e-2")
        await received_in_a_span(intake, "e-2")
        kept = await traces.received_in([signal_id_for("e-1"), signal_id_for("e-2")])
        assert kept == {signal_id_for("e-1"): first, signal_id_for("e-2"): first}

    async def test_outside_a_sampled_span_nothing_is_kept(self, pool: asyncpg.Pool) -> None:
        recorded_spans()
        intake = PostgresSignalIntake(pool)
        await intake.receive([received("e-3", "bo@example.org")], AT)
        with tracer().start_as_current_span("request", context=context_from(UNSAMPLED)):
            await intake.receive([received("e-4", "cy@example.org")], AT)
        assert await pool.fetchval("SELECT count(*) FROM signal_trace_contexts") == 0

    async def test_contexts_older_than_an_hour_are_pruned_as_new_ones_come(
        self, pool: asyncpg.Pool
    ) -> None:
        recorded_spans()
        intake, traces = PostgresSignalIntake(pool), PostgresSignalTraces(pool)
        await received_in_a_span(intake, "old", "recent")
        await pool.execute(
            "UPDATE signal_trace_contexts SET received_at = now() - interval '61 minutes'"
            " WHERE signal_id = $1",
            signal_id_for("old"),
        )
        await received_in_a_span(intake, "new")
        kept = await traces.received_in([signal_id_for(e) for e in ("old", "recent", "new")])
        assert set(kept) == {signal_id_for("recent"), signal_id_for("new")}
