"""Channel providers: what delivery needs from an email, SMS, WhatsApp or push provider."""

from __future__ import annotations

from collections.abc import Mapping  # statuses are stored; their types are read at run time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from uuid import UUID

from domain.message.aggregate import MessageStatus
from domain.policy.vocabulary import Channel

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "Availability",
    "CircuitOpen",
    "DeliveryStatus",
    "Guarded",
    "InboundMessage",
    "InvalidSignature",
    "OutboundMessage",
    "Provider",
    "ProviderDirectory",
    "ProviderError",
    "SendReceipt",
    "StatusUpdate",
]


DeliveryStatus = MessageStatus
"""Where a message is, as providers report it: the domain's own vocabulary."""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One rendered message for one recipient; `idempotency_key` makes a retry safe."""

    message_id: UUID
    idempotency_key: str
    channel: Channel
    to: str  # email address, E.164 number, WhatsApp id or device token
    body: str | None = None
    subject: str | None = None
    html: str | None = None
    template: str | None = None  # an approved template's name (WhatsApp)
    template_language: str | None = None
    template_parameters: tuple[str, ...] = ()
    title: str | None = None  # push
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. List-Unsubscribe
    data: Mapping[str, str] = field(default_factory=dict)  # push payload, provider metadata


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """The provider accepted the message."""

    provider: str
    provider_message_id: str
    status: DeliveryStatus
    cost: Decimal | None = None
    currency: str | None = None


class ProviderError(Exception):
    """The provider refused or failed; `retryable` says whether trying again may help."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after  # seconds the provider asked us to wait, if it said


class CircuitOpen(ProviderError):
    """The provider failed too often lately: refused at once, without calling it.

    `retry_after` is how long until the next trial call is let through.
    """

    def __init__(self, provider: str, *, retry_after: float | None = None) -> None:
        super().__init__("circuit open", retryable=True, retry_after=retry_after)
        self.provider = provider


class InvalidSignature(Exception):
    """A webhook's signature does not match: it did not come from the provider."""


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A provider's report on a message it accepted."""

    provider: str
    provider_message_id: str
    status: DeliveryStatus
    at: datetime | None = None
    reason: str | None = None
    cost: Decimal | None = None
    currency: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a customer sent us through a provider."""

    provider: str
    provider_message_id: str
    channel: Channel
    sender: str  # as the provider names them: address, E.164 number, WhatsApp id
    text: str | None  # None: the customer sent no text (an image, an order, a contact card)
    at: datetime | None = None
    content_type: str | None = None  # what they sent instead of text, as the provider names it


class Provider(Protocol):
    """One configured provider account for one channel."""

    @property
    def name(self) -> str: ...

    @property
    def channel(self) -> Channel: ...

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Sends with the message's idempotency key; raises ProviderError."""
        ...

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, url: str
    ) -> Sequence[StatusUpdate | InboundMessage]:
        """Verifies the signature (raising InvalidSignature) and maps the payload."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Availability:
    """How many sends a provider would take right now.

    `sends` is None for as many as come, 1 for a circuit breaker's trial, 0 for none until
    `wait` seconds have passed (its breaker is open, or a trial is still out).
    """

    sends: int | None = None
    wait: float = 0.0


@runtime_checkable
class Guarded(Protocol):
    """A provider that can tell, before a send, whether it would refuse it at once."""

    def availability(self) -> Availability:
        """What it would take now; a provider without guards takes everything."""
        ...


class ProviderDirectory(Protocol):
    """The configured providers: by name for webhooks, by channel in failover order for sends."""

    def for_channel(self, channel: Channel) -> Sequence[Provider]:
        """The enabled providers of `channel` in failover order; empty if there are none."""
        ...

    def get(self, name: str) -> Provider | None:
        """The provider of that name, enabled or not (its webhooks still arrive)."""
        ...

    def price(self, provider_name: str, recipient: str) -> tuple[Decimal, str] | None:
        """What one message to `recipient` costs through that provider, if configured."""
        ...
