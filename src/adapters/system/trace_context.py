"""W3C trace context (`traceparent`) carried where the correlation id already travels.

A span in one process continues in another only through what was stored or sent between
them: an outbox row, a NATS header, an HTTP header. These helpers turn the current span into
that string and back; with no span recording (the exporter `none`), they cost one lookup.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["TRACEPARENT", "context_from", "current_traceparent", "trace_headers"]

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()


def current_traceparent() -> str | None:
    """The current span as a `traceparent` value, or None outside any recorded span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


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
