"""WhatsApp through Meta's Cloud API: text or template messages, and X-Hub-Signature-256 webhooks."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from adapters.providers.http_provider import HttpProvider
from domain.policy.vocabulary import Channel
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
    "API_VERSION",
    "RETRYABLE_GRAPH_CODES",
    "SIGNATURE_HEADER",
    "WHATSAPP_BOUNCES",
    "WHATSAPP_STATUSES",
    "WhatsAppCloudProvider",
    "hub_signature",
]

API_VERSION = "v19.0"
SIGNATURE_HEADER = "X-Hub-Signature-256"

WHATSAPP_STATUSES: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "played": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
}
"""Cloud API statuses, mapped; others (e.g. the retired `deleted`) are skipped."""

WHATSAPP_BOUNCES: frozenset[int] = frozenset({131026})
"""Error codes of a `failed` status that say the number cannot take a WhatsApp message: 131026,
"message undeliverable", first of all because the number is not on WhatsApp (Meta also names a
recipient who has not accepted its terms, or whose app is too old to take the message). It is a
`bounced`, as an email's hard bounce is, and suppresses WhatsApp for the customer; their other
channels stay open. Every other code (131047 the 24-hour window is closed, 131049 held back for
the recipient's engagement, 131050 the recipient stopped marketing messages...) is a `failed`."""

RETRYABLE_GRAPH_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131048, 131056, 133004})
"""Graph error codes that mean "busy or throttled, try later", whatever the HTTP status."""


def hub_signature(app_secret: str, body: bytes) -> str:
    """Meta's X-Hub-Signature-256 value: `sha256=` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


# The webhook payload, as much of it as we read; unknown fields are ignored.


class _ErrorData(msgspec.Struct):
    details: str | None = None


class _Error(msgspec.Struct):
    code: int
    title: str | None = None
    message: str | None = None
    error_data: _ErrorData | None = None


class _Pricing(msgspec.Struct):
    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None
    type: str | None = None


class _Origin(msgspec.Struct):
    type: str | None = None


class _Conversation(msgspec.Struct):
    id: str | None = None
    origin: _Origin | None = None
    expiration_timestamp: str | None = None


class _Status(msgspec.Struct):
    id: str
    status: str
    timestamp: str | None = None
    recipient_id: str | None = None
    errors: list[_Error] = []
    pricing: _Pricing | None = None
    conversation: _Conversation | None = None
    biz_opaque_callback_data: str | None = None


class _Text(msgspec.Struct):
    body: str


class _Button(msgspec.Struct):
    text: str | None = None
    payload: str | None = None


class _Reply(msgspec.Struct):
    id: str | None = None
    title: str | None = None


class _Interactive(msgspec.Struct):
    type: str | None = None
    button_reply: _Reply | None = None
    list_reply: _Reply | None = None


class _Media(msgspec.Struct):
    caption: str | None = None


class _Message(msgspec.Struct, rename={"from_": "from"}):
    from_: str
    id: str
    type: str
    timestamp: str | None = None
    text: _Text | None = None
    button: _Button | None = None
    interactive: _Interactive | None = None
    image: _Media | None = None
    video: _Media | None = None
    document: _Media | None = None


class _Value(msgspec.Struct):
    messaging_product: str | None = None
    statuses: list[_Status] = []
    messages: list[_Message] = []


class _Change(msgspec.Struct):
    field: str
    value: _Value


class _Entry(msgspec.Struct):
    id: str
    changes: list[_Change]


class _Payload(msgspec.Struct):
    object: str
    entry: list[_Entry]


_decoder = msgspec.json.Decoder(_Payload)


class _Sent(msgspec.Struct):
    id: str


class _SendAnswer(msgspec.Struct):
    messages: list[_Sent]


class _GraphError(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: int | None = None
    error_subcode: int | None = None


class _GraphErrorBody(msgspec.Struct):
    error: _GraphError


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _time(timestamp: str | None) -> datetime | None:
    if timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        raise ValueError("whatsapp timestamp is not epoch seconds") from None


def _text(message: _Message) -> str | None:
    """What the customer wrote; None for a message with no text (an order, a contact card, a
    media file without a caption): its `type` says what it was."""
    if message.text is not None:
        return message.text.body
    if message.button is not None:
        return message.button.text or message.button.payload or ""
    if message.interactive is not None:
        reply = message.interactive.button_reply or message.interactive.list_reply
        if reply is not None:
            return reply.title or reply.id or ""
    media = message.image or message.video or message.document
    if media is not None and media.caption:
        return media.caption
    return None


def _failure(errors: list[_Error]) -> str | None:
    if not errors:
        return None
    first = errors[0]
    words = first.title or first.message or "failed"
    if first.error_data is not None and first.error_data.details:
        words += f": {first.error_data.details}"
    return f"whatsapp error {first.code}: {words}"


def _mapped(status: _Status) -> DeliveryStatus | None:
    mapped = WHATSAPP_STATUSES.get(status.status)
    if (
        mapped is DeliveryStatus.FAILED
        and status.errors
        and status.errors[0].code in WHATSAPP_BOUNCES
    ):
        return DeliveryStatus.BOUNCED
    return mapped


def _raw(status: _Status) -> dict[str, Any]:
    raw: dict[str, Any] = msgspec.to_builtins(status)
    return raw


class WhatsAppCloudProvider(HttpProvider):
    """One WhatsApp business phone number; webhooks are checked with the app secret."""

    CHANNEL = Channel.WHATSAPP
    LABEL = "whatsapp"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        phone_number_id: str,
        access_token: str,
        app_secret: str,
        timeout: float = 10.0,
        client: aiohttp.ClientSession | None = None,
        max_connections: int = 100,
    ) -> None:
        super().__init__(name, timeout=timeout, client=client, max_connections=max_connections)
        self._url = f"{base_url.rstrip('/')}/{API_VERSION}/{phone_number_id}/messages"
        self._auth_header = {"Authorization": f"Bearer {access_token}"}
        self._app_secret = app_secret

    def __repr__(self) -> str:
        return f"WhatsAppCloudProvider(name={self._name!r})"

    @staticmethod
    def payload(message: OutboundMessage) -> dict[str, Any]:
        """The Cloud API body: a template when the message names one, else text."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to,
            # WhatsApp has no idempotency header: the key rides along, comes back in status
            # webhooks, and the outbox keeps a retry from sending twice.
            "biz_opaque_callback_data": message.idempotency_key,
        }
        if message.template:
            template: dict[str, Any] = {
                "name": message.template,
                "language": {"code": message.template_language or "en"},
            }
            if message.template_parameters:
                template["components"] = [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": value} for value in message.template_parameters
                        ],
                    }
                ]
            body["type"] = "template"
            body["template"] = template
        elif message.body:
            body["type"] = "text"
            body["text"] = {"preview_url": False, "body": message.body}
        else:
            raise ProviderError("a WhatsApp message needs a template or a body", retryable=False)
        return body

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Posts the message to the phone number's messages edge."""
        body = self.payload(message)
        response = await self._post(
            self._url,
            content=msgspec.json.encode(body),
            headers={**self._auth_header, "Content-Type": "application/json"},
        )
        status = response.status_code
        if status >= 400:
            raise self._error(response)
        try:
            answer = msgspec.json.decode(response.content, type=_SendAnswer)
            wamid = answer.messages[0].id
        except (msgspec.ValidationError, msgspec.DecodeError, IndexError):
            wamid = None
        if not wamid:
            raise ProviderError(
                f"whatsapp answered HTTP {status} without a message id",
                retryable=True,
                status=status,
            )
        return SendReceipt(self._name, wamid, DeliveryStatus.QUEUED)

    @staticmethod
    def _error(response: HttpAnswer) -> ProviderError:
        status = response.status_code
        try:
            error = msgspec.json.decode(response.content, type=_GraphErrorBody).error
        except (msgspec.ValidationError, msgspec.DecodeError):
            error = None
        retryable = status == 429 or status >= 500
        if error is None:
            return ProviderError(
                f"whatsapp answered HTTP {status}", retryable=retryable, status=status
            )
        if error.code in RETRYABLE_GRAPH_CODES:
            retryable = True
        return ProviderError(
            f"whatsapp error {error.code}: {error.message} (HTTP {status})",
            retryable=retryable,
            status=status,
        )

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, url: str
    ) -> Sequence[StatusUpdate | InboundMessage]:
        """Checks X-Hub-Signature-256 over the raw body, then maps statuses and inbound messages."""
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature or not hmac.compare_digest(
            hub_signature(self._app_secret, body).encode(), signature.strip().encode()
        ):
            raise InvalidSignature("whatsapp webhook signature does not match")
        try:
            payload = _decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise ValueError(f"malformed whatsapp webhook: {exc}") from None
        if payload.object != "whatsapp_business_account":
            raise ValueError("not a whatsapp_business_account webhook")
        found: list[StatusUpdate | InboundMessage] = []
        for entry in payload.entry:
            for change in entry.changes:
                if change.field != "messages":
                    continue
                for status in change.value.statuses:
                    mapped = _mapped(status)
                    if mapped is None:
                        continue
                    found.append(
                        StatusUpdate(
                            provider=self._name,
                            provider_message_id=status.id,
                            status=mapped,
                            at=_time(status.timestamp),
                            reason=_failure(status.errors),
                            raw=_raw(status),
                        )
                    )
                for message in change.value.messages:
                    found.append(
                        InboundMessage(
                            provider=self._name,
                            provider_message_id=message.id,
                            channel=Channel.WHATSAPP,
                            sender=message.from_,
                            text=_text(message),
                            at=_time(message.timestamp),
                            content_type=None if _text(message) is not None else message.type,
                        )
                    )
        return found
