"""A write answered once per `Idempotency-Key`: the key read from the request, the request's
fingerprint, and the kept answer turned back into the route's response."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Response

from domain.shared.errors import InvalidValue
from entrypoints.http.auth import current_key
from entrypoints.idempotency_keys import request_key

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar import Request

    from application.idempotent_writes import IdempotentWrites

__all__ = ["KEY_MAX_LENGTH", "answer_once", "idempotency_key"]

KEY_MAX_LENGTH = 200
"""Characters in an idempotency key, at most (and at least one), header or body field."""
T = TypeVar("T")


def idempotency_key(request: Request[Any, Any, Any], in_body: str | None = None) -> str | None:
    """The `Idempotency-Key` header, or its twin in the body, which must be the same key when
    both are given (a 400 naming both); the edge refused a header with control characters or of
    another length, or given twice with different keys, already."""
    key = request_key(request.headers.get("idempotency-key"), in_body)
    if key is not None and not 1 <= len(key) <= KEY_MAX_LENGTH:
        raise InvalidValue(
            "header.Idempotency-Key", f"must be 1 to {KEY_MAX_LENGTH} characters long"
        )
    return key


def _fingerprint(request: Request[Any, Any, Any], asked: Any) -> bytes:
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    digest.update(msgspec.json.encode(asked))
    return digest.digest()


async def answer_once(
    request: Request[Any, Any, Any],
    writes: IdempotentWrites,
    asked: Any,
    out: type[T],
    write: Callable[[], Awaitable[tuple[int, T]]],
    *,
    key: str | None = None,
) -> Response[T]:
    """The response of `write`, or with the request's idempotency key (`key`, else the header)
    the answer first given to it: its status and body, `Chorus-Repeated: true`. `asked` is what
    the request asks, as decoded (the same key with another `asked`: 409)."""

    async def written() -> tuple[int, bytes]:
        status_code, content = await write()
        return status_code, msgspec.json.encode(content)

    answered = await writes.answer(
        str(current_key(request).id),
        key or idempotency_key(request),
        _fingerprint(request, asked),
        written,
    )
    content = msgspec.json.decode(answered.body, type=out)
    headers = {"Chorus-Repeated": str(answered.repeated).lower()}
    links = getattr(content, "links", None)
    if isinstance(links, dict) and "self" in links:
        headers["Location"] = links["self"]
    return Response(content, status_code=answered.status_code, headers=headers)
