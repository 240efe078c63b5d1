"""The W3C trace context carried between processes, and the trace ids on log lines."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from adapters.system.trace_context import (
    context_from,
    continued_span,
    current_traceparent,
    sampled_traceparent,
    trace_headers,
)
from entrypoints.tracing import add_trace_ids, configure_tracing, tracer
from tests.tracing_spans import recorded_spans


@pytest.fixture(autouse=True)
def _recording() -> None:
    recorded_spans().clear()


class TestCarryingTheTraceContext:
    def test_outside_any_span_there_is_nothing_to_carry(self) -> None:
        assert current_traceparent() is None
        assert trace_headers() == {}

    def test_a_span_continues_in_another_process_from_its_stored_traceparent(self) -> None:
        with tracer().start_as_current_span("request") as request:
            stored = current_traceparent()
        with tracer().start_as_current_span("dispatch", context=context_from(stored)) as later:
            pass
        assert stored is not None
        assert stored.startswith("00-")
        sent, received = request.get_span_context(), later.get_span_context()
        assert received.trace_id == sent.trace_id
        assert later.parent is not None
        assert later.parent.span_id == sent.span_id

    def test_headers_carry_it_whatever_the_case_of_their_names(self) -> None:
        with tracer().start_as_current_span("publish") as publish:
            headers = {k.title(): v for k, v in trace_headers().items()}
        context = context_from(headers)
        assert context is not None
        carried = trace.get_current_span(context).get_span_context()
        assert carried.trace_id == publish.get_span_context().trace_id

    @pytest.mark.parametrize(
        "stored", [None, "", "garbage", "00-00000000000000000000000000000000-0000000000000000-01"]
    )
    def test_a_missing_or_malformed_traceparent_starts_a_new_trace(
        self, stored: str | None
    ) -> None:
        assert context_from(stored) is None


class TestContinuingAStoredTrace:
    def test_one_input_s_work_is_a_child_of_the_span_it_was_received_in(self) -> None:
        with tracer().start_as_current_span("POST /v1/events") as received:
            stored = sampled_traceparent()
        with continued_span("signal in campaigns", stored, {"chorus.signal_id": "s-1"}):
            queued = current_traceparent()
        (work,) = [s for s in recorded_spans().get_finished_spans() if s.name != received.name]
        assert work.parent is not None
        assert work.parent.span_id == received.get_span_context().span_id
        assert work.context is not None
        assert work.context.trace_id == received.get_span_context().trace_id
        assert (work.attributes or {}).get("chorus.signal_id") == "s-1"
        # What the work queues (an outbox row) continues the work's span, not the request's.
        assert queued is not None
        assert format(work.context.span_id, "016x") in queued

    def test_without_a_stored_context_no_span_is_started(self) -> None:
        with continued_span("signal in campaigns", None, {}):
            assert current_traceparent() is None
        assert recorded_spans().get_finished_spans() == ()

    def test_a_trace_not_sampled_is_not_kept(self) -> None:
        unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        with tracer().start_as_current_span("request", context=context_from(unsampled)):
            assert current_traceparent() is not None
            assert sampled_traceparent() is None


class TestLogLinesCarryTheSpan:
    def test_a_line_in_a_span_names_its_trace_and_span(self) -> None:
        with tracer().start_as_current_span("request") as span:
            line = add_trace_ids(None, "info", {"event": "sent", "correlation_id": "c-1"})
        context = span.get_span_context()
        assert line["trace_id"] == format(context.trace_id, "032x")
        assert line["span_id"] == format(context.span_id, "016x")
        assert line["correlation_id"] == "c-1"

    def test_a_line_outside_any_span_has_no_trace_ids(self) -> None:
        line = add_trace_ids(None, "info", {"event": "started"})
        assert "trace_id" not in line
        assert "span_id" not in line


class TestChoosingTheExporter:
    def test_none_by_default_installs_no_tracer_provider(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CHORUS_OTEL_EXPORTER", raising=False)
        assert configure_tracing() is None
        monkeypatch.setenv("CHORUS_OTEL_EXPORTER", "none")
        assert configure_tracing() is None

    def test_an_unknown_exporter_is_refused_by_name(self) -> None:
        with pytest.raises(ValueError, match="otlp"):
            configure_tracing(exporter="jaeger")
