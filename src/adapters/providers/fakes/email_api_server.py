"""A fake of the JSON email API (see `adapters.providers.email_api`), with webhook builders."""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from adapters.providers.email_api import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    email_api_signature,
)
from adapters.providers.fakes.http_fake import FakeRequest, FakeResponse, HttpFake
from adapters.providers.fakes.webhooks import FinalStatus, StatusCallbacks, Webhook

if TYPE_CHECKING:
    from ports.clock import Clock

__all__ = ["FakeEmailApi", "ReceivedEmail"]

_MESSAGES_PATH = "/v1/messages"


@dataclass(frozen=True, slots=True)
class ReceivedEmail:
    """One message the fake accepted (once per idempotency key)."""

    id: str
    idempotency_key: str | None
    sender: str
    to: str
    subject: str
    text: str | None
    html: str | None
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


class FakeEmailApi(HttpFake):
    """Serves `POST /v1/messages` with a bearer key; `received` holds `ReceivedEmail`s."""

    def __init__(
        self,
        *,
        api_key: str = "fake-email-api-key",
        webhook_secret: str = "fake-email-webhook-secret",
        price: str | None = "0.0008",
        currency: str = "USD",
        retry_after_seconds: int = 1,
        callbacks: StatusCallbacks | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(callbacks=callbacks, clock=clock)
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.price = price
        self.currency = currency
        self.retry_after_seconds = retry_after_seconds

    def authorized(self, request: FakeRequest) -> bool:
        """`Authorization: Bearer <api_key>`."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.encode(), self.api_key.encode()
        )

    def error_response(self, status: int, reason: str) -> FakeResponse:
        """`{"error": reason}`; a 429 also says when to come back (Retry-After)."""
        headers = {"retry-after": str(self.retry_after_seconds)} if status == 429 else None
        return FakeResponse.json(status, {"error": reason}, headers)

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Accepts a message, or answers the first one's id again for a repeated key."""
        if request.path != _MESSAGES_PATH:
            return self.error_response(404, "not found")
        if request.method != "POST":
            return self.error_response(405, "method not allowed")
        payload = request.json()
        if not isinstance(payload, dict):
            return self.error_response(400, "the body must be a JSON object")
        sender, to = payload.get("from"), payload.get("to")
        if not isinstance(sender, str) or "@" not in sender:
            return self.error_response(400, "'from' must be an email address")
        if not isinstance(to, str) or "@" not in to:
            return self.error_response(400, "'to' must be an email address")
        text, html = payload.get("text"), payload.get("html")
        if not text and not html:
            return self.error_response(400, "a message needs 'text' or 'html'")
        key = request.headers.get(IDEMPOTENCY_HEADER.lower())
        made = "em_" + uuid.uuid4().hex
        record = ReceivedEmail(
            id=made,
            idempotency_key=key,
            sender=sender,
            to=to,
            subject=str(payload.get("subject") or ""),
            text=text,
            html=html,
            headers=dict(payload.get("headers") or {}),
            metadata=dict(payload.get("metadata") or {}),
        )
        message_id = self.accept(key, record, lambda: made)
        return FakeResponse.json(
            200,
            {
                "id": message_id,
                "status": "queued",
                "price": self.price,
                "currency": self.currency,
            },
        )

    # webhooks

    def status_webhook(
        self, url: str, message_id: str, record: Any, status: FinalStatus
    ) -> Webhook | None:
        """Delivery events: a complaint comes after the delivery, a bounce is a hard one."""
        now = self.clock.now()
        events = {
            "delivered": [self.event(message_id, "delivered", timestamp=now)],
            "failed": [
                self.event(message_id, "dropped", reason="dropped by the fake", timestamp=now)
            ],
            "bounced": [
                self.event(
                    message_id,
                    "bounce",
                    bounce_type="hard",
                    reason="550 5.1.1 mailbox does not exist",
                    timestamp=now,
                )
            ],
            "complained": [
                self.event(message_id, "delivered", timestamp=now),
                self.event(message_id, "complaint", timestamp=now),
            ],
        }[status]
        headers, body = self.signed_webhook(events)
        return Webhook(url, headers, body, message_id)

    def inbound_webhook(self, url: str, sender: str, text: str) -> Webhook:
        """An email from `sender` whose text is `text`."""
        inbound = self.inbound(sender, text, subject=text, timestamp=self.clock.now())
        headers, body = self.signed_webhook(inbound)
        return Webhook(url, headers, body)

    @staticmethod
    def event(
        message_id: str,
        event: str,
        *,
        reason: str | None = None,
        bounce_type: str | None = None,
        timestamp: datetime | None = None,
    ) -> dict[str, Any]:
        """One delivery event as the API reports it."""
        made: dict[str, Any] = {
            "id": "evt_" + uuid.uuid4().hex,
            "message_id": message_id,
            "event": event,
            "timestamp": (timestamp or datetime.now(UTC)).isoformat(),
        }
        if reason is not None:
            made["reason"] = reason
        if bounce_type is not None:
            made["bounce_type"] = bounce_type
        return made

    @staticmethod
    def inbound(
        sender: str,
        text: str,
        *,
        subject: str | None = None,
        to: str | None = None,
        timestamp: datetime | None = None,
    ) -> dict[str, Any]:
        """One inbound email as the API reports it."""
        made: dict[str, Any] = {
            "type": "inbound",
            "from": sender,
            "text": text,
            "message_id": "in_" + uuid.uuid4().hex,
            "timestamp": (timestamp or datetime.now(UTC)).isoformat(),
        }
        if subject is not None:
            made["subject"] = subject
        if to is not None:
            made["to"] = to
        return made

    def signed_webhook(
        self, events: Sequence[Mapping[str, Any]] | Mapping[str, Any]
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of a webhook carrying `events` (a list, or one inbound object)."""
        payload = dict(events) if isinstance(events, Mapping) else [dict(e) for e in events]
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: email_api_signature(self.webhook_secret, body),
        }
        return headers, body

    async def emit_webhook(
        self,
        target_url: str,
        events: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        *,
        client: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        """Posts a signed webhook to `target_url` (e.g. Chorus's /v1/webhooks/{provider})."""
        headers, body = self.signed_webhook(events)
        if client is not None:
            return await client.post(target_url, content=body, headers=headers)
        async with httpx.AsyncClient(timeout=10.0) as owned:
            return await owned.post(target_url, content=body, headers=headers)
