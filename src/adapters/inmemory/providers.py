"""Providers that record what they are asked to send, and a directory of them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from domain.message.aggregate import MessageStatus
from ports.providers import (
    InboundMessage,
    InvalidSignature,
    ProviderError,
    SendReceipt,
    StatusUpdate,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from domain.policy.vocabulary import Channel
    from ports.providers import OutboundMessage, Provider

__all__ = ["InMemoryProviders", "RecordingProvider"]


class RecordingProvider:
    """Accepts every send (once per idempotency key) unless told to fail the next ones.

    Its webhooks are JSON, `{"statuses": [{"id", "status", "at"?}], "inbound": [{"id", "from",
    "text", "at"?}]}`, signed by an `X-Signature` header holding its secret.
    """

    def __init__(self, name: str, channel: Channel, *, secret: str = "secret") -> None:
        self._name = name
        self._channel = channel
        self.secret = secret
        self.sent: list[OutboundMessage] = []
        self.receipts: dict[str, SendReceipt] = {}
        self.failures: list[ProviderError] = []
        self.closed = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def channel(self) -> Channel:
        return self._channel

    def fail_next(self, reason: str = "unavailable", *, retryable: bool = True) -> None:
        self.failures.append(ProviderError(reason, retryable=retryable))

    async def send(self, message: OutboundMessage) -> SendReceipt:
        if self.failures:
            raise self.failures.pop(0)
        earlier = self.receipts.get(message.idempotency_key)
        if earlier is not None:
            return earlier
        self.sent.append(message)
        receipt = SendReceipt(self.name, f"{self.name}-{len(self.sent)}", MessageStatus.SENT)
        self.receipts[message.idempotency_key] = receipt
        return receipt

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, url: str
    ) -> Sequence[StatusUpdate | InboundMessage]:
        if headers.get("X-Signature") != self.secret:
            raise InvalidSignature(f"{self.name}: the signature does not match")
        document: dict[str, Any] = msgspec.json.decode(body)
        items: list[StatusUpdate | InboundMessage] = [
            StatusUpdate(
                self.name,
                s["id"],
                MessageStatus(s["status"]),
                datetime.fromisoformat(s["at"]) if "at" in s else None,
                reason=s.get("reason"),
            )
            for s in document.get("statuses", [])
        ]
        items += [
            InboundMessage(
                self.name,
                m["id"],
                self.channel,
                m["from"],
                m["text"],
                datetime.fromisoformat(m["at"]) if "at" in m else None,
            )
            for m in document.get("inbound", [])
        ]
        return items

    async def close(self) -> None:
        self.closed = True


class InMemoryProviders:
    """The providers given, in failover order per channel; each message costs `price`."""

    def __init__(self, *providers: Provider, price: tuple[Decimal, str] | None = None) -> None:
        self.providers = list(providers)
        self.prices = price

    def for_channel(self, channel: Channel) -> Sequence[Provider]:
        return [p for p in self.providers if p.channel is channel]

    def get(self, name: str) -> Provider | None:
        return next((p for p in self.providers if p.name == name), None)

    def price(self, provider_name: str, recipient: str) -> tuple[Decimal, str] | None:
        return self.prices
