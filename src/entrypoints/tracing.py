"""OpenTelemetry for a Chorus process: which exporter its spans go to, and its tracer.

`CHORUS_OTEL_EXPORTER` is `none` (the default: no tracer provider is installed, every span is
the API's no-op), `console` (spans as JSON on stderr) or `otlp` (OTLP over HTTP, to
`OTEL_EXPORTER_OTLP_ENDPOINT` or the standard variables). Spans are named after the step
they time and carry `chorus.correlation_id`, so one id finds one trace (docs/operations.md).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from uuid import UUID

    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "CORRELATION_ATTRIBUTE",
    "EXPORTERS",
    "add_trace_ids",
    "configure_tracing",
    "status_span",
    "tracer",
]

EXPORTERS = ("none", "console", "otlp")
CORRELATION_ATTRIBUTE = "chorus.correlation_id"
_installed: TracerProvider | None = None
_TRACER = trace.get_tracer("chorus")


def _exporter(name: str) -> SpanExporter | None:
    if name == "none":
        return None
    if name == "console":
        # stderr, with the logs: stdout is the commands' answers (`chorus keys create` prints
        # a secret there), which no span may be mixed into.
        return ConsoleSpanExporter(out=sys.stderr)
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"CHORUS_OTEL_EXPORTER must be one of {', '.join(EXPORTERS)}, not {name!r}")


def configure_tracing(
    service: str = "chorus", exporter: str | None = None
) -> TracerProvider | None:
    """Installs the process's tracer provider for `exporter` (default: `CHORUS_OTEL_EXPORTER`,
    else none). Once per process: OpenTelemetry keeps the first provider it is given."""
    global _installed
    chosen = _exporter((exporter or os.environ.get("CHORUS_OTEL_EXPORTER") or "none").lower())
    if chosen is None or _installed is not None:
        return _installed
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(chosen))
    trace.set_tracer_provider(provider)
    _installed = provider
    return provider


def tracer() -> trace.Tracer:
    """Chorus's tracer, from whichever provider is installed (the no-op one by default): a
    proxy made once, that takes the provider installed later, e.g. by tests."""
    return _TRACER


def status_span(
    status: str, correlation_id: str | None, message_id: UUID, provider: str, recorded: bool
) -> AbstractContextManager[trace.Span]:
    """The span of one provider status on one message: it joins the message's story by the
    correlation id of its send (providers do not carry our trace context back)."""
    return tracer().start_as_current_span(
        f"message status {status}",
        record_exception=False,
        attributes={
            CORRELATION_ATTRIBUTE: correlation_id or "",
            "chorus.message_id": str(message_id),
            "chorus.provider": provider,
            "chorus.recorded": recorded,
        },
    )


def add_trace_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor: the current span's trace and span ids, in W3C hex, on the line."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict
