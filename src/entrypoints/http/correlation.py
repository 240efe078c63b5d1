"""A correlation id per request: taken from `X-Correlation-Id` or made, logged and echoed;
and the request's server span, continuing the caller's `traceparent` when it sent one."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import structlog
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from opentelemetry import trace

from adapters.system.trace_context import context_from
from entrypoints.tracing import CORRELATION_ATTRIBUTE, tracer

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEADER", "correlation_middleware"]

HEADER = "x-correlation-id"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def correlation_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(HEADER.encode(), b"").decode("latin-1")
        correlation_id = given if _ACCEPTABLE.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        traceparent = headers.get(b"traceparent", b"").decode("latin-1")
        method = scope.get("method", "GET")
        name = f"{method} {scope.get('path_template') or 'unrouted'}"
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((HEADER.encode(), correlation_id.encode()))
                message["headers"] = headers
            await send(message)

        with (
            tracer().start_as_current_span(
                name,
                context=context_from(traceparent),
                kind=trace.SpanKind.SERVER,
                attributes={CORRELATION_ATTRIBUTE: correlation_id, "http.request.method": method},
                # An exception's message may quote the request: spans never hold it.
                record_exception=False,
                set_status_on_exception=False,
            ) as span,
            structlog.contextvars.bound_contextvars(correlation_id=correlation_id),
        ):
            try:
                await app(scope, receive, send_with_id)
            except HTTPException as error:  # answered by Litestar's handler, outside this one
                status = error.status_code
                raise
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(trace.StatusCode.ERROR)

    return middleware
