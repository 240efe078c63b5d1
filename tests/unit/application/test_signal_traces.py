"""A signal's trace goes on past the log: its trigger firings are marked in it, and a firing
published on the bus carries it to whoever acts on it (ADR 0020)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import uuid4

import msgspec.structs
import pytest

from adapters.inmemory.signal_traces import InMemorySignalTraces
from adapters.postgres.codec import EventCodec
from adapters.system.trace_context import sampled_traceparent
from application.processes.outbound_events import OutboundEvents
from application.processes.trigger_matcher import TriggerMatcher
from domain.signals.aggregate import signal_id_for
from domain.triggers.aggregate import Firing, trigger_id
from domain.triggers.definition import SourceEvent, SourceKind
from entrypoints.tracing import tracer
from tests.tracing_spans import recorded_spans
from tests.unit.application.test_outbound_events import RecordingPublisher
from tests.unit.application.test_trigger_matcher import BIG_ORDERS, Matching

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
CODEC = EventCodec()


@pytest.fixture(autouse=True)
def _recording() -> None:
    recorded_spans().clear()


def received_in_a_request() -> tuple[str, int, int]:
    """A stored context, as intake keeps it: with its trace and span ids."""
    with tracer().start_as_current_span("POST /v1/events") as request:
        stored = sampled_traceparent()
    assert stored is not None
    context = request.get_span_context()
    return stored, context.trace_id, context.span_id


def firing(kind: SourceKind, stream_id: UUID) -> CanMutateAggregate[UUID]:
    """A firing as the outbound process reads it back from the log."""
    source = SourceEvent(kind, "order.placed", uuid4(), stream_id, 1, T0, T0)
    fired = Firing.fired(trigger_id("big-orders"), "big-orders", 1, source, T0)
    return CODEC.decode(*msgspec.structs.astuple(CODEC.encode(fired)))


class TestTriggerFiringsInTheSignalsTrace:
    async def test_a_signal_that_fires_a_trigger_is_marked_in_the_trace_it_was_received_in(
        self,
    ) -> None:
        stored, trace_id, request_span = received_in_a_request()
        world = Matching()
        traces = InMemorySignalTraces({signal_id_for("e1"): stored})
        world.matcher = world.matching_with(TriggerMatcher(world.clock, traces))
        await world.trigger("big-orders", BIG_ORDERS)
        await world.signal("order.placed", total=120)
        await world.signal("order.placed", total=40)  # fires nothing: no span
        (span,) = [
            s for s in recorded_spans().get_finished_spans() if s.name == "signal in triggers"
        ]
        assert span.context is not None
        assert span.context.trace_id == trace_id
        assert span.parent is not None
        assert span.parent.span_id == request_span
        assert (span.attributes or {}).get("chorus.signal_id") == str(signal_id_for("e1"))
        (fired,) = world.firings()
        assert (span.attributes or {}).get("chorus.customer_id") == str(fired.customer_id)

    async def test_without_a_trigger_the_contexts_are_not_even_read(self) -> None:
        world = Matching()
        traces = InMemorySignalTraces()
        world.matcher = world.matching_with(TriggerMatcher(world.clock, traces))
        await world.signal("order.placed", total=120)
        assert traces.asked == []
        assert recorded_spans().get_finished_spans() == ()


class TestAFiringOnTheBusCarriesTheSignalsTrace:
    async def test_a_firing_on_a_signal_is_published_with_the_signals_traceparent(self) -> None:
        stored, _, _ = received_in_a_request()
        signal = uuid4()
        publisher = RecordingPublisher()
        process = OutboundEvents(publisher, traces=InMemorySignalTraces({signal: stored}))
        await process.handle([firing(SourceKind.SIGNAL, signal)], None)
        (message,) = publisher.messages
        assert message.headers["traceparent"] == stored
        assert message.headers["Content-Type"].startswith("application/cloudevents+json")

    async def test_a_firing_on_a_segment_or_an_untraced_signal_carries_none(self) -> None:
        publisher = RecordingPublisher()
        traces = InMemorySignalTraces(
            {uuid4(): "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
        )
        process = OutboundEvents(publisher, traces=traces)
        events = [firing(SourceKind.SEGMENT_ENTERED, uuid4()), firing(SourceKind.SIGNAL, uuid4())]
        await process.handle(events, None)
        assert [m.headers.get("traceparent") for m in publisher.messages] == [None, None]
