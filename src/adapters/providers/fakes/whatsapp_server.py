"""A fake WhatsApp Cloud API: bearer auth, dedup by biz_opaque_callback_data, signed webhooks."""

from __future__ import annotations

import hmac
import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from adapters.providers.fakes.http_fake import FakeRequest, FakeResponse, HttpFake
from adapters.providers.fakes.webhooks import Webhook
from adapters.providers.whatsapp_cloud import API_VERSION, SIGNATURE_HEADER, hub_signature

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from adapters.providers.fakes.webhooks import FinalStatus, StatusCallbacks
    from ports.clock import Clock

__all__ = ["FakeWhatsApp", "wa_status", "wa_text"]

_MESSAGES_PATH = re.compile(rf"^/{re.escape(API_VERSION)}/(?P<phone>[^/]+)/messages$")
_FINAL: dict[str, tuple[str, int | None, str]] = {
    "delivered": ("delivered", None, ""),
    # Held back by Meta this once: the number may take the next one.
    "failed": (
        "failed",
        131049,
        "This message was not delivered to maintain healthy ecosystem engagement",
    ),
    "bounced": ("failed", 131026, "Message undeliverable"),  # the number is not on WhatsApp
    "complained": ("failed", 131050, "User has stopped marketing messages"),
}


def wa_status(
    message_id: str,
    status: str,
    *,
    recipient_id: str = "15550001111",
    error_code: int | None = None,
    error_title: str = "Message undeliverable",
    category: str | None = None,
    callback_data: str | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """One `value.statuses[]` item, as the Cloud API reports a message's progress."""
    item: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "recipient_id": recipient_id,
    }
    if category is not None:
        item["conversation"] = {
            "id": uuid.uuid4().hex,
            "origin": {"type": category},
        }
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": category}
    if error_code is not None:
        item["errors"] = [
            {
                "code": error_code,
                "title": error_title,
                "message": error_title,
                "error_data": {"details": error_title},
            }
        ]
    if callback_data is not None:
        item["biz_opaque_callback_data"] = callback_data
    return item


def wa_text(
    sender: str, text: str, *, message_id: str | None = None, timestamp: int | None = None
) -> dict[str, Any]:
    """One inbound text in `value.messages[]`."""
    return {
        "from": sender,
        "id": message_id or "wamid." + uuid.uuid4().hex,
        "timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "type": "text",
        "text": {"body": text},
    }


class FakeWhatsApp(HttpFake):
    """Accepts `POST /v19.0/{phone_number_id}/messages`; records each body once per callback data."""

    def __init__(
        self,
        *,
        phone_number_id: str = "106540352242922",
        access_token: str = "fake-whatsapp-token",
        app_secret: str = "fake-whatsapp-app-secret",
        callbacks: StatusCallbacks | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(callbacks=callbacks, clock=clock)
        self.phone_number_id = phone_number_id
        self.access_token = access_token
        self.app_secret = app_secret

    def authorized(self, request: FakeRequest) -> bool:
        """A bearer access token."""
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.access_token}".encode())

    def error_response(self, status: int, reason: str) -> FakeResponse:
        """A Graph API error body."""
        code = {401: 190, 429: 130429, 400: 100}.get(status, 131000 if status >= 500 else 100)
        return FakeResponse.json(
            status,
            {
                "error": {
                    "message": reason,
                    "type": "OAuthException",
                    "code": code,
                    "fbtrace_id": uuid.uuid4().hex[:16],
                }
            },
        )

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Accepts a text or template message and answers its wamid."""
        match = _MESSAGES_PATH.match(request.path)
        if request.method != "POST" or match is None:
            return self.error_response(404, "Unknown path components")
        if match["phone"] != self.phone_number_id:
            return self.error_response(400, "Object with ID does not exist")
        body = request.json()
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return self.error_response(400, "(#100) The parameter messaging_product is required.")
        to = body.get("to")
        if not isinstance(to, str) or not to.lstrip("+").isdigit():
            return self.error_response(400, "(#100) Invalid parameter: to")
        kind = body.get("type", "text")
        if kind == "text":
            text = body.get("text")
            if not isinstance(text, dict) or not text.get("body"):
                return self.error_response(400, "(#100) The parameter text['body'] is required.")
        elif kind == "template":
            template = body.get("template")
            if not isinstance(template, dict) or not template.get("name"):
                return self.error_response(
                    400, "(#100) The parameter template['name'] is required."
                )
            language = template.get("language")
            if not isinstance(language, dict) or not language.get("code"):
                return self.error_response(
                    400, "(#100) The parameter template['language'] is required."
                )
        else:
            return self.error_response(400, f"(#100) Unsupported message type {kind}")
        key = body.get("biz_opaque_callback_data")
        wamid = self.accept(
            key if isinstance(key, str) else None, body, lambda: "wamid." + uuid.uuid4().hex
        )
        return FakeResponse.json(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [{"id": wamid, "message_status": "accepted"}],
            },
        )

    def status_webhook(
        self, url: str, message_id: str, record: Any, status: FinalStatus
    ) -> Webhook | None:
        """A `statuses` webhook to the app's URL, carrying the message's callback data back."""
        whatsapp_status, error_code, title = _FINAL[status]
        callback_data = record.get("biz_opaque_callback_data")
        item = wa_status(
            message_id,
            whatsapp_status,
            recipient_id=str(record.get("to", "")).lstrip("+"),
            error_code=error_code,
            error_title=title,
            callback_data=callback_data if isinstance(callback_data, str) else None,
            timestamp=self._timestamp(),
        )
        headers, body = self.signed_webhook(statuses=[item])
        return Webhook(url, headers, body, message_id)

    def inbound_webhook(self, url: str, sender: str, text: str) -> Webhook:
        """A text from `sender` (its WhatsApp id: the number without "+")."""
        inbound = wa_text(sender.lstrip("+"), text, timestamp=self._timestamp())
        headers, body = self.signed_webhook(messages=[inbound])
        return Webhook(url, headers, body)

    def _timestamp(self) -> int:
        """Now on the fake's clock, as the Cloud API says a time: epoch seconds."""
        return int(self.clock.now().timestamp())

    def signed_body(self, body: bytes) -> tuple[dict[str, str], bytes]:
        """Headers that sign any raw body with the app secret."""
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: hub_signature(self.app_secret, body),
        }
        return headers, body

    def signed_webhook(
        self,
        *,
        statuses: Sequence[Mapping[str, Any]] = (),
        messages: Sequence[Mapping[str, Any]] = (),
    ) -> tuple[dict[str, str], bytes]:
        """A signed `messages` webhook carrying these statuses and inbound messages."""
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": "15550009999",
                "phone_number_id": self.phone_number_id,
            },
        }
        if statuses:
            value["statuses"] = [dict(item) for item in statuses]
        if messages:
            value["contacts"] = [
                {"profile": {"name": "Customer"}, "wa_id": item["from"]} for item in messages
            ]
            value["messages"] = [dict(item) for item in messages]
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}
            ],
        }
        return self.signed_body(json.dumps(payload).encode())
