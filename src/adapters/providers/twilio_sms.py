"""SMS through Twilio's Messages API, and its signed status and inbound webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
    from collections.abc import Iterable, Mapping, Sequence

    import aiohttp

    from adapters.providers.http_provider import HttpAnswer

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TWILIO_BOUNCES",
    "TWILIO_STATUSES",
    "TwilioSmsProvider",
    "twilio_signature",
]

SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"

TWILIO_STATUSES: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
"""Twilio's message statuses, mapped; `receiving`/`received` are inbound messages."""

TWILIO_BOUNCES: frozenset[str] = frozenset({"30005", "30006", "21211", "21614"})
"""Error codes of an `undelivered` or `failed` message that say the number itself cannot take
an SMS, for good: 30005 unknown destination handset (the number does not exist), 30006
landline or unreachable carrier, 21211 invalid `To` number, 21614 `To` is not a mobile
number. They are a `bounced`, as an email's hard bounce is (and suppress the channel for the
customer); every other code (30003 unreachable handset, switched off or out of coverage;
30007 filtered by Twilio or the carrier as spam or against their rules...) is a `failed` that
may not happen again. 30007 is no complaint: the recipient never saw the message, and the fault
is its content or its sender's, not the number's (docs/providers.md)."""
_FAILED = frozenset({"undelivered", "failed"})

_INBOUND_STATUSES = frozenset({"receiving", "received"})


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 over the URL and the sorted name+value pairs."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, without its port, and with its default port: Twilio signs any of them."""
    parts = urlsplit(url)
    variants = [url]
    host = parts.hostname or ""
    if parts.port is not None:
        variants.append(urlunsplit(parts._replace(netloc=host)))
    else:
        default = {"https": 443, "http": 80}.get(parts.scheme)
        if default is not None:
            variants.append(urlunsplit(parts._replace(netloc=f"{host}:{default}")))
    return variants


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _price(amount: str | None, unit: str | None) -> tuple[Decimal | None, str | None]:
    """Twilio's price is a negative string (a charge); we keep the cost as a positive amount."""
    if amount in (None, ""):
        return None, None
    try:
        return abs(Decimal(amount)), unit.upper() if unit else None
    except InvalidOperation:
        raise ValueError("twilio price is not a number") from None


def _error_reason(response: HttpAnswer) -> str:
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and ("code" in payload or "message" in payload):
        return f"twilio error {payload.get('code')}: {payload.get('message')} (HTTP {response.status_code})"
    return f"twilio answered HTTP {response.status_code}"


class TwilioSmsProvider(HttpProvider):
    """One Twilio account sending from one number; webhooks are checked with its auth token."""

    CHANNEL = Channel.SMS
    LABEL = "twilio"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        status_callback_url: str | None = None,
        timeout: float = 10.0,
        client: aiohttp.ClientSession | None = None,
        max_connections: int = 100,
    ) -> None:
        super().__init__(name, timeout=timeout, client=client, max_connections=max_connections)
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._authorization = f"Basic {credentials}"
        self._auth_token = auth_token
        self._from = from_number
        self._status_callback_url = status_callback_url

    def __repr__(self) -> str:
        return f"TwilioSmsProvider(name={self._name!r})"

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Posts the message to Twilio's Messages API with the idempotency key as a header."""
        if not message.body:
            raise ProviderError("an SMS needs a body", retryable=False)
        form = {"To": message.to, "From": self._from, "Body": message.body}
        if self._status_callback_url:
            form["StatusCallback"] = self._status_callback_url
        response = await self._post(
            self._url,
            content=urlencode(form).encode(),
            headers={
                "Authorization": self._authorization,
                "Content-Type": "application/x-www-form-urlencoded",
                IDEMPOTENCY_HEADER: message.idempotency_key,
            },
        )
        status = response.status_code
        if status == 429 or status >= 500:
            raise ProviderError(_error_reason(response), retryable=True, status=status)
        if status >= 400:
            raise ProviderError(_error_reason(response), retryable=False, status=status)
        try:
            payload = response.json()
            sid = payload["sid"]
            state = TWILIO_STATUSES.get(str(payload.get("status")), DeliveryStatus.QUEUED)
            cost, currency = _price(payload.get("price"), payload.get("price_unit"))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ProviderError(
                f"twilio answered HTTP {status} without a message sid",
                retryable=True,
                status=status,
            ) from None
        return SendReceipt(self._name, str(sid), state, cost, currency)

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, url: str
    ) -> Sequence[StatusUpdate | InboundMessage]:
        """Checks X-Twilio-Signature against `url` (exactly as Twilio called it) and maps the form."""
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise InvalidSignature("twilio webhook without a signature")
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            raise ValueError("twilio webhook body is not a form") from None
        given = signature.encode()
        if not any(
            hmac.compare_digest(twilio_signature(self._auth_token, variant, pairs).encode(), given)
            for variant in _url_variants(url)
        ):
            raise InvalidSignature("twilio webhook signature does not match")
        params = dict(pairs)
        sid = params.get("MessageSid") or params.get("SmsSid")
        if not sid:
            raise ValueError("twilio webhook without a MessageSid")
        state = params.get("MessageStatus")
        if state is None or state in _INBOUND_STATUSES:
            if "Body" not in params or not params.get("From"):
                raise ValueError("twilio inbound message without From or Body")
            return [
                InboundMessage(
                    provider=self._name,
                    provider_message_id=sid,
                    channel=Channel.SMS,
                    sender=params["From"],
                    text=params["Body"],
                )
            ]
        mapped = TWILIO_STATUSES.get(state)
        if mapped is None:
            raise ValueError(f"unknown twilio message status {state[:40]!r}")
        error = params.get("ErrorCode")
        reason = None
        if error and state in _FAILED and error.strip() in TWILIO_BOUNCES:
            mapped = DeliveryStatus.BOUNCED
        if error:
            reason = f"twilio error {error}"
            if params.get("ErrorMessage"):
                reason += f": {params['ErrorMessage']}"
        cost, currency = _price(params.get("Price"), params.get("PriceUnit"))
        return [
            StatusUpdate(
                provider=self._name,
                provider_message_id=sid,
                status=mapped,
                reason=reason,
                cost=cost,
                currency=currency,
                raw=params,
            )
        ]
