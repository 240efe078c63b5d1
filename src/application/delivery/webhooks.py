"""A provider's webhook: statuses onto their messages, inbound messages into signals."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.customer.identities import IdentityClaim
from domain.customer.keywords import INBOUND_SIGNAL
from domain.message.aggregate import Message, MessageStatus
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue, NotFound
from domain.shared.text import has_control, readable, without_contacts
from domain.signals.aggregate import SignalReport
from ports.providers import InboundMessage, StatusUpdate

if TYPE_CHECKING:
    from collections.abc import Mapping
    from uuid import UUID

    from application.customer.change_suppression import ChangeSuppression
    from application.customer.signals import IngestSignals
    from domain.customer.identities import IdentityNormalizer
    from ports.clock import Clock
    from ports.delivery import DeliveryStore
    from ports.providers import ProviderDirectory
    from ports.unit_of_work import UnitsOfWork

__all__ = ["ApplyParkedStatuses", "HandleWebhook", "StatusRecorded", "WebhookHandled"]

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


@dataclass(frozen=True, slots=True)
class StatusRecorded:
    """One status on one message, with the correlation id its send request came with."""

    message_id: UUID
    status: str
    recorded: bool  # False: the provider repeated a status already recorded
    correlation_id: str | None


@dataclass(frozen=True, slots=True)
class WebhookHandled:
    statuses: int
    duplicates: int
    inbound: int
    parked: int  # statuses that overtook their message; applied once it is recorded
    messages: tuple[StatusRecorded, ...]
    # Items left out, nothing recorded: an inbound message whose sender is no identity, an id
    # with control characters (no message has one, and no event id may).
    refused: int = 0


class HandleWebhook:
    """Verifies the signature first; nothing is recorded for a webhook that fails it.

    A status is recorded once per message, so provider retries change nothing; one that
    overtakes its message (the provider called back before the dispatcher recorded the
    provider's id) is parked and applied when the message is known. A hard bounce
    or a complaint suppresses the channel for the customer; an inbound message becomes a
    `message.received` signal (so STOP reaches the rules), idempotent by the provider's id.
    """

    def __init__(
        self,
        providers: ProviderDirectory,
        uows: UnitsOfWork,
        store: DeliveryStore,
        suppress: ChangeSuppression,
        ingest: IngestSignals,
        normalizer: IdentityNormalizer,
        clock: Clock,
    ) -> None:
        self.providers = providers
        self.uows = uows
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
        try:
            items = provider.parse_webhook(headers, body, url)  # raises InvalidSignature
        except InvalidValue:
            raise  # the provider named the field it refused
        except (ValueError, KeyError, TypeError) as error:  # signed, but not a payload we know
            raise InvalidValue("body", f"not a {provider_name} webhook: {error}") from None
        statuses = duplicates = parked = refused = 0
        messages: list[StatusRecorded] = []
        reports: list[SignalReport] = []
        for item in items:
            if has_control(item.provider_message_id):
                refused += 1
                continue
            if isinstance(item, StatusUpdate):
                message_id = await self.store.by_provider_id(
                    provider_name, item.provider_message_id
                )
                if message_id is None:
                    # Parked as it will be recorded: its reason without contacts, and none of
                    # the provider's raw fields (they name the recipient).
                    await self.store.park(
                        replace(item, provider=provider_name, reason=_reason(item), raw={})
                    )
                    parked += 1
                    continue
                recorded = await self.record_status(message_id, provider_name, item)
                statuses += recorded.recorded
                duplicates += not recorded.recorded
                messages.append(recorded)
            elif isinstance(item, InboundMessage):
                # One sender that is no identity must not make the provider retry the others.
                try:
                    reports.append(self._signal(provider_name, item))
                except InvalidValue:
                    refused += 1
        if reports:
            await self.ingest(reports)
        return WebhookHandled(statuses, duplicates, len(reports), parked, tuple(messages), refused)

    async def record_status(
        self, message_id: UUID, provider: str, update: StatusUpdate
    ) -> StatusRecorded:
        status = update.status

        async def attempt() -> tuple[bool, UUID | None, str | None, str | None]:
            async with self.uows() as uow:
                messages = uow.repository(Message)
                message = (await messages.get([message_id])).get(message_id)
                if message is None:
                    return False, None, None, None
                # Chorus's own clock orders what it learns: a provider's time is its claim, on
                # a clock that may be skewed (or, on the manual clock, the wall's), and a
                # retried webhook comes late. It is kept beside, as `reported_at`.
                reason = _reason(update)
                changed = message.report(
                    status,
                    provider,
                    self.clock.now(),
                    reason,
                    update.cost,
                    update.currency,
                    reported_at=update.at,
                )
                if changed:
                    messages.add(message)
            return changed, message.customer_id, message.channel.value, message.correlation_id

        changed, customer_id, channel, correlation_id = await retry_on_conflict(attempt)
        why = _SUPPRESSING.get(status)
        if changed and why is not None and customer_id is not None and channel is not None:
            said = _reason(update)
            reason = f"{why} reported by {provider}" + (f": {said}" if said else "")
            await self.suppress(customer_id, Channel(channel), reason, active=True)
        return StatusRecorded(message_id, status.value, changed, correlation_id)

    def _signal(self, provider: str, inbound: InboundMessage) -> SignalReport:
        kind = _SENDER_IDENTITY[inbound.channel]
        sender = inbound.sender
        if inbound.channel is Channel.WHATSAPP and not sender.startswith("+"):
            sender = "+" + sender  # WhatsApp ids are the number's digits
        identity = self.normalizer.normalize(kind, sender)
        properties: dict[str, str | None] = {
            "channel": inbound.channel.value,
            "text": None if inbound.text is None else readable(inbound.text),
        }
        if inbound.content_type is not None:
            properties["content_type"] = readable(inbound.content_type)
        if inbound.at is not None:
            properties["sent_at"] = inbound.at.isoformat()  # the provider's time, kept
        return SignalReport(
            event_id=f"{provider}:{inbound.provider_message_id}",
            type=INBOUND_SIGNAL,
            # When Chorus received it, on its clock, as statuses are: a reply is ordered
            # after the message it answers, whatever clock the provider stamps with.
            occurred_at=self.clock.now(),
            identities=(IdentityClaim(identity),),
            properties=properties,
            source=provider,
        )


def _reason(update: StatusUpdate) -> str | None:
    """A provider's reason as Chorus keeps it: readable, and without the email addresses and
    phone numbers a bounce notice often names (`550 5.1.1 <…>: Recipient address rejected`):
    it is copied on, to the customer's suppression, the rules' decisions that cite it and a
    campaign's responses, so it must say nothing of whom it was about (docs/erasure.md)."""
    return without_contacts(readable(update.reason)) if update.reason else update.reason


class ApplyParkedStatuses:
    """Applies parked statuses whose message has been recorded since; a scheduler calls it."""

    def __init__(self, store: DeliveryStore, webhooks: HandleWebhook) -> None:
        self.store = store
        self.webhooks = webhooks

    async def __call__(self, limit: int = 100) -> int:
        return len(await self.apply(limit))

    async def apply(self, limit: int = 100) -> list[tuple[str, StatusRecorded]]:
        """Each status applied, by the provider that reported it."""
        parked = await self.store.parked(limit)
        applied = []
        for message_id, update in parked:
            recorded = await self.webhooks.record_status(message_id, update.provider, update)
            applied.append((update.provider, recorded))
            await self.store.unpark(update)
        return applied
