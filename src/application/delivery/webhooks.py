"""A provider's webhook: statuses onto their messages, inbound messages into signals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.customer.conflicts import retry_on_conflict
from domain.customer.identities import IdentityClaim
from domain.customer.keywords import INBOUND_SIGNAL
from domain.message.aggregate import MessageStatus
from domain.policy.vocabulary import Channel
from domain.shared.errors import NotFound
from domain.signals.aggregate import SignalReport
from ports.providers import InboundMessage, StatusUpdate

if TYPE_CHECKING:
    from collections.abc import Mapping
    from uuid import UUID

    from application.customer.change_suppression import ChangeSuppression
    from application.customer.ingest_signals import IngestSignals
    from domain.customer.identities import IdentityNormalizer
    from ports.clock import Clock
    from ports.delivery import DeliveryStore
    from ports.providers import ProviderDirectory

__all__ = ["HandleWebhook", "UnknownMessages", "WebhookHandled"]

_SUPPRESSING = {
    MessageStatus.BOUNCED: "hard bounce",
    MessageStatus.COMPLAINED: "spam complaint",
}
_SENDER_IDENTITY = {
    Channel.EMAIL: "email",
    Channel.SMS: "phone",
    Channel.VOICE: "phone",
    Channel.WHATSAPP: "phone",
    Channel.PUSH: "device_token",
    Channel.CHAT: "account_id",
}


class UnknownMessages(Exception):
    """Statuses for messages we have not recorded as accepted yet: the provider should retry."""

    def __init__(self, provider_message_ids: list[str]) -> None:
        super().__init__(f"unknown messages: {', '.join(provider_message_ids)}")
        self.provider_message_ids = provider_message_ids


@dataclass(frozen=True, slots=True)
class WebhookHandled:
    statuses: int
    duplicates: int
    inbound: int
    messages: tuple[UUID, ...]


class HandleWebhook:
    """Verifies the signature first; nothing is recorded for a webhook that fails it.

    A status is recorded once per message, so provider retries change nothing. A hard bounce
    or a complaint suppresses the channel for the customer; an inbound message becomes a
    `message.received` signal (so STOP reaches the rules), idempotent by the provider's id.
    """

    def __init__(
        self,
        providers: ProviderDirectory,
        store: DeliveryStore,
        suppress: ChangeSuppression,
        ingest: IngestSignals,
        normalizer: IdentityNormalizer,
        clock: Clock,
    ) -> None:
        self.providers = providers
        self.store = store
        self.suppress = suppress
        self.ingest = ingest
        self.normalizer = normalizer
        self.clock = clock

    async def __call__(
        self, provider_name: str, headers: Mapping[str, str], body: bytes, url: str
    ) -> WebhookHandled:
        provider = self.providers.get(provider_name)
        if provider is None:
            raise NotFound(f"no provider {provider_name!r} is configured")
        items = provider.parse_webhook(headers, body, url)  # raises InvalidSignature
        statuses = duplicates = 0
        unknown: list[str] = []
        messages: list[UUID] = []
        reports: list[SignalReport] = []
        for item in items:
            if isinstance(item, StatusUpdate):
                message_id = await self.store.by_provider_id(
                    provider_name, item.provider_message_id
                )
                if message_id is None:
                    unknown.append(item.provider_message_id)
                    continue
                recorded = await self._record_status(message_id, provider_name, item)
                statuses += recorded
                duplicates += not recorded
                messages.append(message_id)
            elif isinstance(item, InboundMessage):
                reports.append(self._signal(provider_name, item))
        if reports:
            await self.ingest(reports)
        if unknown:
            raise UnknownMessages(unknown)
        return WebhookHandled(statuses, duplicates, len(reports), tuple(messages))

    async def _record_status(self, message_id: UUID, provider: str, update: StatusUpdate) -> bool:
        status = MessageStatus(update.status.value)

        async def attempt() -> tuple[bool, UUID | None, str | None]:
            message = await self.store.get(message_id)
            if message is None:
                return False, None, None
            at = update.at or self.clock.now()
            changed = message.report(
                status, provider, at, update.reason, update.cost, update.currency
            )
            if changed:
                await self.store.save(message)
            return changed, message.customer_id, message.channel.value

        changed, customer_id, channel = await retry_on_conflict(attempt)
        why = _SUPPRESSING.get(status)
        if changed and why is not None and customer_id is not None and channel is not None:
            reason = f"{why} reported by {provider}" + (
                f": {update.reason}" if update.reason else ""
            )
            await self.suppress(customer_id, Channel(channel), reason, active=True)
        return changed

    def _signal(self, provider: str, inbound: InboundMessage) -> SignalReport:
        kind = _SENDER_IDENTITY[inbound.channel]
        sender = inbound.sender
        if inbound.channel is Channel.WHATSAPP and not sender.startswith("+"):
            sender = "+" + sender  # WhatsApp ids are the number's digits
        identity = self.normalizer.normalize(kind, sender)
        return SignalReport(
            event_id=f"{provider}:{inbound.provider_message_id}",
            type=INBOUND_SIGNAL,
            occurred_at=inbound.at or self.clock.now(),
            identities=(IdentityClaim(identity),),
            properties={"channel": inbound.channel.value, "text": inbound.text},
            source=provider,
        )
