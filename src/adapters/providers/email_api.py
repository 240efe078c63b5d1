"""Email through a Postmark/SendGrid-style JSON HTTP API, and its signed webhooks.

The API (`FakeEmailApi` serves it locally):

Send: ``POST {base_url}/v1/messages`` with ``Authorization: Bearer <api_key>``,
``Idempotency-Key: <key>`` and a JSON body::

    {"from": "...", "to": "...", "subject": "...", "text": "...", "html": "..." | null,
     "headers": {"List-Unsubscribe": "...", ...}, "metadata": {"chorus_message_id": "<uuid>"}}

It answers ``200 {"id": "...", "status": "queued", "price": "0.0008", "currency": "USD"}``.
The same Idempotency-Key answers the same id and sends once. Errors are JSON
``{"error": "..."}``: 429 (with ``Retry-After``, in seconds or an HTTP date), 408, 409 and 5xx
are worth retrying, like timeouts and connection failures; any other 4xx is not.

Webhooks: ``POST`` to Chorus with ``X-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed
with the webhook secret>`` and either a JSON list of delivery events::

    [{"id": "evt_1", "message_id": "<the API's id>", "event": "delivered",
      "timestamp": "2025-01-01T12:00:00Z", "reason": "...", "bounce_type": "hard" | "soft"}]

or an inbound email (alone, or as an element of that list)::

    {"type": "inbound", "from": "a@example.org", "text": "...", "message_id": "...",
     "timestamp": "..."?, "to": "..."?, "subject": "..."?}

Events map to our statuses: delivered → DELIVERED, open → READ, complaint → COMPLAINED,
dropped → FAILED; a hard bounce (or one without a bounce_type) → BOUNCED, since the address is
dead and should be suppressed; a soft bounce → FAILED, since this message is lost but the
address stays usable; deferred → SENT with the reason, since the API still retries and the
message has not reached an end yet. Event names we do not know are skipped, not refused, so a
provider adding one does not make it retry the whole batch forever.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import msgspec

from adapters.providers.http_provider import HttpProvider
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue
from ports.providers import (
    DeliveryStatus,
    InboundMessage,
    InvalidSignature,
    OutboundMessage,
    ProviderError,
    SendReceipt,
    StatusUpdate,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import aiohttp

    from adapters.providers.http_provider import HttpAnswer

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "EmailApiProvider",
    "RetryLater",
    "email_api_signature",
]

SIGNATURE_HEADER = "X-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_RETRYABLE_CLIENT_ERRORS = frozenset({408, 409, 425, 429})


def email_api_signature(secret: str, body: bytes) -> str:
    """The X-Signature value for a webhook body: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class RetryLater(ProviderError):
    """A retryable refusal; `retry_after` is how long the API asked us to wait, in seconds."""

    def __init__(
        self, reason: str, *, retry_after: float | None, status: int | None = None
    ) -> None:
        super().__init__(reason, retryable=True, status=status, retry_after=retry_after)


class _Accepted(msgspec.Struct):
    id: str
    status: str = "queued"
    price: str | None = None
    currency: str | None = None


class _Event(msgspec.Struct, forbid_unknown_fields=False):
    id: str
    message_id: str
    event: str
    timestamp: datetime
    reason: str | None = None
    bounce_type: str | None = None


class _Inbound(msgspec.Struct, forbid_unknown_fields=False):
    type: str
    sender: str = msgspec.field(name="from")
    text: str
    message_id: str
    timestamp: datetime | None = None
    to: str | None = None
    subject: str | None = None


_EVENT_STATUSES: dict[str, DeliveryStatus] = {
    "delivered": DeliveryStatus.DELIVERED,
    "open": DeliveryStatus.READ,
    "complaint": DeliveryStatus.COMPLAINED,
    "dropped": DeliveryStatus.FAILED,
    "deferred": DeliveryStatus.SENT,
}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


def _refused(error: msgspec.ValidationError, index: int | None) -> InvalidValue:
    """The field of a webhook item that was refused, named as the client sent it (`text`,
    `[1].text` in a batch), and why."""
    reason, _, at = str(error).partition(" - at `")
    path = at.rstrip("`").removeprefix("$")
    if not path and (missing := _MISSING_FIELD.search(reason)):
        path = f".{missing.group(1)}"
    where = ("" if index is None else f"[{index}]") + path
    return InvalidValue(where.removeprefix(".") or "body", f"not an email api webhook: {reason}")


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (_aware(when) or when).timestamp() - datetime.now(UTC).timestamp())


def _error_reason(response: HttpAnswer) -> str:
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    detail = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(detail, str) and detail:
        return f"email api answered HTTP {response.status_code}: {detail[:200]}"
    return f"email api answered HTTP {response.status_code}"


def _status_update(provider: str, event: _Event, raw: Mapping[str, Any]) -> StatusUpdate | None:
    reason: str | None = event.reason
    if event.event == "bounce":
        soft = (event.bounce_type or "hard").lower() == "soft"
        status = DeliveryStatus.FAILED if soft else DeliveryStatus.BOUNCED
        reason = f"{'soft' if soft else 'hard'} bounce" + (
            f": {event.reason}" if event.reason else ""
        )
    else:
        mapped = _EVENT_STATUSES.get(event.event)
        if mapped is None:
            return None
        status = mapped
        if event.event == "deferred":
            reason = "deferred" + (f": {event.reason}" if event.reason else "")
    return StatusUpdate(
        provider=provider,
        provider_message_id=event.message_id,
        status=status,
        at=_aware(event.timestamp),
        reason=reason,
        raw=dict(raw),
    )


class EmailApiProvider(HttpProvider):
    """One account of the JSON email API; webhooks are checked with its webhook secret."""

    CHANNEL = Channel.EMAIL
    LABEL = "email api"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str,
        webhook_secret: str,
        sender: str,
        timeout: float = 10.0,
        client: aiohttp.ClientSession | None = None,
        max_connections: int = 100,
    ) -> None:
        super().__init__(name, timeout=timeout, client=client, max_connections=max_connections)
        self._url = f"{base_url.rstrip('/')}/v1/messages"
        self._authorization = f"Bearer {api_key}"
        self._webhook_secret = webhook_secret
        self.sender = sender

    def __repr__(self) -> str:
        return f"EmailApiProvider(name={self._name!r}, url={self._url!r})"

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Posts the message with its idempotency key; raises ProviderError or RetryLater."""
        if message.body is None and message.html is None:
            raise ProviderError("an email needs a text or an HTML body", retryable=False)
        payload = {
            "from": self.sender,
            "to": message.to,
            "subject": message.subject or "",
            "text": message.body,
            "html": message.html,
            "headers": dict(message.headers),
            "metadata": {"chorus_message_id": str(message.message_id)},
        }
        response = await self._post(
            self._url,
            content=msgspec.json.encode(payload),
            headers={
                "Authorization": self._authorization,
                IDEMPOTENCY_HEADER: message.idempotency_key,
                "Content-Type": "application/json",
            },
        )
        status = response.status_code
        if status >= 500 or status in _RETRYABLE_CLIENT_ERRORS:
            reason = _error_reason(response)
            wait = _retry_after(response.headers.get("Retry-After"))
            if wait is not None:
                reason += f" (retry after {wait:g}s)"
            raise RetryLater(reason, retry_after=wait, status=status)
        if status >= 400:
            raise ProviderError(_error_reason(response), retryable=False, status=status)
        try:
            accepted = msgspec.json.decode(response.content, type=_Accepted)
            cost = Decimal(accepted.price) if accepted.price not in (None, "") else None
        except (msgspec.DecodeError, InvalidOperation):
            # it may have been accepted: the idempotency key makes trying again safe
            raise ProviderError(
                f"email api answered HTTP {status} without a message id",
                retryable=True,
                status=status,
            ) from None
        return SendReceipt(
            provider=self._name,
            provider_message_id=accepted.id,
            status=DeliveryStatus.QUEUED if accepted.status == "queued" else DeliveryStatus.SENT,
            cost=cost,
            currency=accepted.currency.upper() if accepted.currency and cost is not None else None,
        )

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, url: str
    ) -> Sequence[StatusUpdate | InboundMessage]:
        """Checks X-Signature over the raw body, then maps events and inbound emails."""
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise InvalidSignature("email api webhook without a signature")
        expected = email_api_signature(self._webhook_secret, body)
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise InvalidSignature("email api webhook signature does not match")
        try:
            payload = msgspec.json.decode(body)
        except msgspec.DecodeError as error:
            raise ValueError(f"email api webhook is not JSON: {error}") from None
        items = payload if isinstance(payload, list) else [payload]
        mapped: list[StatusUpdate | InboundMessage] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise ValueError(f"email api webhook item {index} is not an object")
            try:
                if item.get("type") == "inbound":
                    inbound = msgspec.convert(item, _Inbound)
                    mapped.append(
                        InboundMessage(
                            provider=self._name,
                            provider_message_id=inbound.message_id,
                            channel=Channel.EMAIL,
                            sender=inbound.sender,
                            text=inbound.text,
                            at=_aware(inbound.timestamp),
                        )
                    )
                    continue
                event = msgspec.convert(item, _Event)
            except msgspec.ValidationError as error:
                raise _refused(error, index if isinstance(payload, list) else None) from None
            update = _status_update(self._name, event, item)
            if update is not None:
                mapped.append(update)
        return mapped
