"""A fake Twilio Messages API: basic auth, idempotency tokens, and signed webhook builders."""

from __future__ import annotations

import base64
import hmac
import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from adapters.providers.fakes.http_fake import FakeRequest, FakeResponse, HttpFake
from adapters.providers.fakes.webhooks import Webhook
from adapters.providers.twilio_sms import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, twilio_signature

if TYPE_CHECKING:
    from adapters.providers.fakes.webhooks import FinalStatus, StatusCallbacks

__all__ = ["FakeTwilio"]

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_FINAL: dict[str, tuple[str, str | None]] = {
    "delivered": ("delivered", None),
    "failed": ("undelivered", "30003"),  # unreachable destination handset
    "bounced": ("undelivered", "30005"),  # unknown destination handset
    # Twilio reports no recipient's complaint: the nearest it has, the message filtered by
    # Twilio or the carrier as spam, which Chorus records as `failed`.
    "complained": ("failed", "30007"),
}


class FakeTwilio(HttpFake):
    """Accepts `POST /2010-04-01/Accounts/{sid}/Messages.json`; records each form once per token."""

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "fake-twilio-token",
        price: str | None = "-0.00790",
        price_unit: str = "USD",
        callbacks: StatusCallbacks | None = None,
    ) -> None:
        super().__init__(callbacks=callbacks)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.price = price
        self.price_unit = price_unit

    def authorized(self, request: FakeRequest) -> bool:
        """HTTP basic auth with the account sid and auth token."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except ValueError:
            return False
        expected = f"{self.account_sid}:{self.auth_token}"
        return hmac.compare_digest(decoded.encode(), expected.encode())

    def error_response(self, status: int, reason: str) -> FakeResponse:
        """Twilio's error body: code, message, more_info, status."""
        code = {400: 21211, 401: 20003, 404: 20404, 429: 20429}.get(status, 20500)
        return FakeResponse.json(
            status,
            {
                "code": code,
                "message": reason,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Creates a message, or answers the first one's sid again for a repeated token."""
        match = _MESSAGES_PATH.match(request.path)
        if request.method != "POST" or match is None:
            return self.error_response(404, "The requested resource was not found")
        if match["sid"] != self.account_sid:
            return self.error_response(401, "Authenticate")
        form = request.form()
        to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not _E164.match(to):
            return self.error_response(400, f"The 'To' number {to} is not a valid phone number.")
        if not sender:
            return self.error_response(400, "A 'From' phone number is required.")
        if not body:
            return self.error_response(400, "A text message body is required.")
        key = request.headers.get(IDEMPOTENCY_HEADER.lower())
        sid = self.accept(key, form, lambda: "SM" + uuid.uuid4().hex)
        return FakeResponse.json(
            201,
            {
                "account_sid": self.account_sid,
                "sid": sid,
                "to": to,
                "from": sender,
                "body": body,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "price": self.price,
                "price_unit": self.price_unit,
                "error_code": None,
                "error_message": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
        )

    def callback_url(self, record: Any, callbacks: StatusCallbacks) -> str | None:
        """The message's own StatusCallback, as Twilio does; else the configured URL."""
        return record.get("StatusCallback") or callbacks.url

    def status_webhook(
        self, url: str, message_id: str, record: Any, status: FinalStatus
    ) -> Webhook | None:
        """A status callback: `delivered`, or `undelivered`/`failed` with Twilio's error code."""
        twilio_status, error_code = _FINAL[status]
        headers, body = self.signed_status_callback(
            url,
            message_id,
            twilio_status,
            error_code=error_code,
            to=record.get("To", ""),
            from_=record.get("From", ""),
        )
        return Webhook(url, headers, body, message_id)

    def inbound_webhook(self, url: str, sender: str, text: str) -> Webhook:
        """An incoming SMS from `sender`, as Twilio posts it to the number's messaging URL."""
        headers, body = self.signed_inbound(url, sender, text)
        return Webhook(url, headers, body)

    def sign(self, url: str, params: dict[str, str]) -> tuple[dict[str, str], bytes]:
        """Headers and form body of a webhook to `url`, signed as Twilio signs it."""
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: twilio_signature(self.auth_token, url, params.items()),
            IDEMPOTENCY_HEADER: uuid.uuid4().hex,
        }
        return headers, urlencode(params).encode()

    def signed_status_callback(
        self,
        url: str,
        message_sid: str,
        status: str,
        *,
        error_code: str | None = None,
        to: str = "+15005550006",
        from_: str = "+15005550001",
        price: str | None = None,
        price_unit: str = "USD",
    ) -> tuple[dict[str, str], bytes]:
        """A signed status callback, as Twilio posts to a message's StatusCallback."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": from_,
            "MessageSid": message_sid,
            "MessageStatus": status,
            "SmsSid": message_sid,
            "SmsStatus": status,
            "To": to,
        }
        if error_code is not None:
            params["ErrorCode"] = error_code
        if price is not None:
            params["Price"], params["PriceUnit"] = price, price_unit
        return self.sign(url, params)

    def signed_inbound(
        self, url: str, from_: str, body: str, *, to: str = "+15005550001"
    ) -> tuple[dict[str, str], bytes]:
        """A signed inbound message webhook, as Twilio posts to a number's messaging URL."""
        sid = "SM" + uuid.uuid4().hex
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": from_,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
        }
        return self.sign(url, params)
