"""A request's idempotency key: the `Idempotency-Key` header, the body's `idempotency_key`
field, or both, which must then be the same key, over HTTP and NATS alike, rather than one of
them be kept silently."""

from __future__ import annotations

from entrypoints.text_checks import InputRefused, TextFault

__all__ = ["BODY_FIELD", "HEADER_FIELD", "request_key"]

HEADER_FIELD = "header.Idempotency-Key"
BODY_FIELD = "$.idempotency_key"
_GIVE_ONE = "give one key, or the same in both"


def request_key(header: str | None, body: str | None) -> str | None:
    """The key a request gives in its header or its body; both given and different, a 400
    naming both (`InputRefused`)."""
    if header and body and header != body:
        raise InputRefused(
            TextFault(BODY_FIELD, f"differs from the Idempotency-Key header: {_GIVE_ONE}"),
            TextFault(HEADER_FIELD, f"differs from the body's idempotency_key: {_GIVE_ONE}"),
        )
    return header or body
