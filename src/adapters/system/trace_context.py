"""W3C trace context (`traceparent`) carried where the correlation id already travels.

A span in one process continues in another only through what was stored or sent between
them: an outbox row, a NATS header, an HTTP header. These helpers turn the current span into
that string and back; with no span recording (the exporter `none`), they cost one lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from uuid import UUID

    from opentelemetry.util.types import AttributeValue

__all__ = [
    "TRACEPARENT",
    "context_from",
    "continued_span",
    "current_traceparent",
    "sampled_traceparent",
    "signal_work_span",
    "trace_headers",
    "tracing_installed",
]

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER = trace.get_tracer("chorus")


def current_traceparent() -> str | None:
    """The current span as a `traceparent` value, or None outside any recorded span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


def sampled_traceparent() -> str | None:
    """The current span as a `traceparent` value if it is sampled (its spans are exported),
    else None: what is worth storing for later spans to continue."""
    if not trace.get_current_span().get_span_context().trace_flags.sampled:
        return None
    return current_traceparent()


def tracing_installed() -> bool:
    """Whether a tracer provider is installed: without one (the exporter `none`) no span is
    recorded, and nothing need be looked up to continue one."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def trace_headers() -> dict[str, str]:
    """Headers that continue the current span in the receiver (empty outside any span)."""
    traceparent = current_traceparent()
    return {TRACEPARENT: traceparent} if traceparent else {}


def context_from(carrier: str | Mapping[str, str] | None) -> Context | None:
    """The span context a stored `traceparent` (or a mapping of headers) names, for a span
    to continue it; None when there is none or it is malformed (a new trace starts then)."""
    if not carrier:
        return None
    headers = {TRACEPARENT: carrier} if isinstance(carrier, str) else carrier
    if TRACEPARENT not in headers:
        headers = {k.lower(): v for k, v in headers.items()}
    context = _PROPAGATOR.extract(headers)
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def continued_span(
    name: str, carrier: str | None, attributes: Mapping[str, AttributeValue]
) -> AbstractContextManager[object]:
    """A span, current while the block runs, that continues the stored `traceparent` as its
    child: one input's work (a signal's, in a process reading the log) in that input's trace.
    Nothing at all without a stored context: the work then joins whatever span is current."""
    context = context_from(carrier)
    if context is None:
        return nullcontext()
    return _TRACER.start_as_current_span(
        name,
        context=context,
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
    )


def signal_work_span(
    process: str, carrier: str | None, signal_id: UUID, customer_id: UUID
) -> AbstractContextManager[object]:
    """`process`'s work on one signal, in the trace the signal was received in (ADR 0020):
    identifiers only, never what the signal says."""
    return continued_span(
        f"signal in {process}",
        carrier,
        {"chorus.signal_id": str(signal_id), "chorus.customer_id": str(customer_id)},
    )
