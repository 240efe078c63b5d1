"""HMAC-signed unsubscribe tokens: no database lookup, and no way to unsubscribe someone else."""

from __future__ import annotations

import base64
import hashlib
import hmac
from uuid import UUID

from domain.policy.vocabulary import Channel, Purpose
from ports.unsubscribe import UnsubscribeTarget

__all__ = ["SignedUnsubscribeTokens"]

_SIGNATURE_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SignedUnsubscribeTokens:
    """`<customer><channel><purpose>` and a truncated HMAC-SHA256 of them, base64url."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the unsubscribe secret needs at least 16 bytes")
        self.secret = secret

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self.secret, body, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def issue(self, target: UnsubscribeTarget) -> str:
        body = f"{target.customer_id.hex}.{target.channel.value}.{target.purpose or ''}".encode()
        return _b64(body) + "." + _b64(self._sign(body))

    def read(self, token: str) -> UnsubscribeTarget | None:
        try:
            body_part, _, signature_part = token.partition(".")
            body = _unb64(body_part)
            if not hmac.compare_digest(self._sign(body), _unb64(signature_part)):
                return None
            customer, channel, purpose = body.decode().split(".")
            return UnsubscribeTarget(
                UUID(hex=customer), Channel(channel), Purpose(purpose) if purpose else None
            )
        except (ValueError, UnicodeDecodeError):
            return None
