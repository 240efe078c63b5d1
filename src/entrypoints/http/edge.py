"""The HTTP edge: what a request may hold, checked once for every route.

`EdgeRequest.json()` refuses a JSON body with invalid UTF-8, nesting deeper than MAX_DEPTH,
text PostgreSQL cannot hold or a number too large to be finite (`1e400`), naming the field;
handlers that read the body themselves (signals, rules) check it with
`entrypoints.text_checks`. `edge_middleware` refuses a query string longer than
MAX_QUERY_BYTES (414), query parameters that are not clean text or that are given twice where
the route takes one value, an `Idempotency-Key` header that is not a clean line of 1 to 200
characters or that is given twice with different keys, and bodies that are not JSON (415) on every route but the providers' and
unsubscribe forms. `drain_before_answering` reads the rest of a body an answer came before
(a 413, a 401), so that the client reads the answer instead of a reset connection.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, SerializationException

from entrypoints.http.idempotency import KEY_MAX_LENGTH
from entrypoints.idempotency_keys import HEADER_FIELD
from entrypoints.text_checks import (
    InputRefused,
    TextFault,
    line_fault,
    number_fault,
    raw_fault,
)

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

__all__ = [
    "EMPTY_BODY",
    "MAX_BODY_BYTES",
    "MAX_QUERY_BYTES",
    "QUERY_TOO_LONG",
    "EdgeRequest",
    "body_read",
    "drain_before_answering",
    "edge_middleware",
    "idempotency_key_fault",
    "idempotency_keys_fault",
    "is_json",
    "query_fault",
    "repeated_query_fault",
]

MAX_BODY_BYTES = 16 * 1024 * 1024
"""A request body, at most: a larger one gets a 413."""
MAX_QUERY_BYTES = 8 * 1024
"""A query string, at most (as sent, percent-encoded): a longer one gets a 414."""
QUERY_TOO_LONG = f"a query string may have at most {MAX_QUERY_BYTES:,} bytes"
EMPTY_BODY = "the body is empty: send a JSON object"
"""Why a body that is empty or only white space is not JSON, on every route that reads one."""

# Bodies up to this size are read to the end before a early answer, so that it can be read; a
# client announcing more than this gets its connection closed after the answer.
_DRAIN_AT_MOST = 4 * MAX_BODY_BYTES
# Providers post forms (Twilio) and their own JSON; the one-click unsubscribe posts a form.
_ANY_BODY_PATHS = ("/v1/webhooks/", "/v1/unsubscribe/")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_DRAIN = "chorus.edge.drain"
_BODY_READ = "chorus.edge.body"


def is_json(content_type: str) -> bool:
    """`application/json` or `application/*+json`, with any parameters (a charset)."""
    media = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


class EdgeRequest(Request[Any, Any, Any]):
    """A request whose JSON body is checked before any handler or model sees it."""

    async def json(self) -> Any:
        body = await self.body()
        if body and not body.strip():  # none at all reads as no `data`: see problems
            raise SerializationException(EMPTY_BODY)
        fault = raw_fault(body)
        if fault is not None:
            raise InputRefused(fault)
        try:
            value = await super().json()
        except SerializationException as error:
            fault = number_fault(body, str(error))
            if fault is None:
                raise
            raise InputRefused(fault) from None
        self.scope.setdefault("state", {})[_BODY_READ] = value
        return value


def body_read(scope: Scope) -> Any:
    """The JSON the request's body was read as (`EdgeRequest.json`), for an answer that names
    a place in it; `msgspec.UNSET` when it was not read."""
    return scope.get("state", {}).get(_BODY_READ, msgspec.UNSET)


def query_fault(query: bytes) -> TextFault | None:
    """The first query parameter whose name or value is not UTF-8 text without control
    characters."""
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return TextFault("query", "is not valid UTF-8 once percent-decoded")
    for name, value in pairs:
        reason = line_fault(name)
        if reason is not None:
            return TextFault(f"query[{name!a}]", f"its name {reason}")
        reason = line_fault(value)
        if reason is not None:
            return TextFault(f"query.{name}", reason)
    return None


def repeated_query_fault(query: bytes, scope: Scope) -> TextFault | None:
    """The first query parameter given more than once (`?status=open&status=resolved`) that the
    route takes one value of, rather than keep one of them silently; one it takes a list of
    (`?type=a&type=b`) may repeat."""
    counts = Counter(name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    repeated = [name for name, count in counts.items() if count > 1]
    handler = scope.get("route_handler")
    if not repeated or handler is None:
        return None
    # What the route reads from the query, as Litestar itself reads it (its dependencies too);
    # only the names of the path's parameters count, which the scope has once routed.
    path_params = cast("dict[str, Any]", scope.get("path_params", {}))
    expected = handler.create_kwargs_model(path_params).expected_query_params
    single = {param.field_alias for param in expected if not param.is_sequence}
    for name in repeated:
        if name in single:
            return TextFault(f"query.{name}", f"is given {counts[name]} times: it takes one value")
    return None


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def idempotency_key_fault(key: bytes) -> str | None:
    """Why an `Idempotency-Key` header cannot be one: a control character, or not 1 to
    KEY_MAX_LENGTH characters."""
    reason = line_fault(key.decode("latin-1"))
    if reason is not None:
        return reason
    if not 1 <= len(key.decode("utf-8", "replace")) <= KEY_MAX_LENGTH:
        return f"must be 1 to {KEY_MAX_LENGTH} characters long"
    return None


def idempotency_keys_fault(scope: Scope) -> TextFault | None:
    """Why a request's `Idempotency-Key` headers cannot give its key: one that cannot be a key,
    or several that differ (the same key repeated is one key), rather than one kept silently."""
    keys = [value for name, value in scope["headers"] if name.lower() == b"idempotency-key"]
    for key in keys:
        reason = idempotency_key_fault(key)
        if reason is not None:
            return TextFault(HEADER_FIELD, reason)
    if len(set(keys)) > 1:
        return TextFault(
            HEADER_FIELD, f"is given {len(keys)} times with different keys: send one key"
        )
    return None


def _has_body(headers: dict[bytes, bytes]) -> bool:
    return headers.get(b"content-length", b"0").strip() not in (b"0", b"") or (
        b"transfer-encoding" in headers
    )


def edge_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers = _headers(scope)
        received_all = not _has_body(headers)

        async def receive_counted() -> ReceiveMessage:
            nonlocal received_all
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                received_all = True
            return message

        async def drain() -> None:
            announced = headers.get(b"content-length", b"").strip()
            if received_all or (announced.isdigit() and int(announced) > _DRAIN_AT_MOST):
                return
            read = 0
            while not received_all and read <= _DRAIN_AT_MOST:
                message = await receive_counted()
                read += len(message["body"]) if message["type"] == "http.request" else 0

        scope.setdefault("state", {})[_DRAIN] = drain
        if len(scope["query_string"]) > MAX_QUERY_BYTES:
            raise HTTPException(status_code=414, detail=QUERY_TOO_LONG)
        if scope["query_string"]:
            fault = query_fault(scope["query_string"]) or repeated_query_fault(
                scope["query_string"], scope
            )
            if fault is not None:
                raise InputRefused(fault)
        fault = idempotency_keys_fault(scope)  # the one header that is stored
        if fault is not None:
            raise InputRefused(fault)
        path: str = scope["path"]
        if (
            scope["method"] in _WITH_BODY
            and not received_all
            and not path.startswith(_ANY_BODY_PATHS)
            and not is_json(headers.get(b"content-type", b"").decode("latin-1"))
        ):
            raise HTTPException(
                status_code=415,
                detail="send the body as JSON, with Content-Type: application/json",
            )
        await app(scope, receive_counted, send)

    return middleware


async def drain_before_answering(message: Message, scope: Scope) -> None:
    """A `before_send` hook: an answer that comes before the body was read (a 413, a 401)
    waits until the body is read, or the client would find its connection reset."""
    if message["type"] != "http.response.start":
        return
    drain = scope.get("state", {}).get(_DRAIN)
    if drain is not None:
        await drain()
