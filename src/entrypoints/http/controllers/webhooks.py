"""Providers' webhooks: delivery statuses and inbound messages, verified by signature."""

from __future__ import annotations

from typing import Any

import structlog
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, post

from application.delivery.webhooks import HandleWebhook
from entrypoints.metrics import WEBHOOK_STATUSES
from entrypoints.settings import Settings
from entrypoints.tracing import status_span
from ports.providers import InvalidSignature

__all__ = ["WebhooksController"]

_log = structlog.get_logger("chorus.webhooks")


class WebhooksController(Controller):
    path = "/v1/webhooks"
    tags = ["delivery"]
    security = [{}]

    @post(
        "/{provider:str}",
        operation_id="receiveWebhook",
        name="webhooks:receive",
        status_code=200,
        summary="A provider's status or inbound-message webhook",
        description=(
            "No API key: the provider's own signature is checked (X-Twilio-Signature, "
            "X-Hub-Signature-256, ...) and a webhook that fails it gets a 401 and records "
            "nothing. Statuses are recorded once per message; a status that overtakes its "
            "message (sent back before the send's answer was recorded) is parked and applied "
            "as soon as the message is."
        ),
    )
    @inject
    async def receive(
        self,
        provider: str,
        request: Request[Any, Any, Any],
        handle: FromDishka[HandleWebhook],
        settings: FromDishka[Settings],
    ) -> dict[str, Any]:
        body = await request.body()
        url = str(request.url)
        if settings.public_url:
            # Providers sign the URL they called, which is the public one behind a proxy.
            query = f"?{request.url.query}" if request.url.query else ""
            url = settings.public_url.rstrip("/") + request.url.path + query
        try:
            handled = await handle(provider, dict(request.headers), body, url)
        except InvalidSignature:
            _log.warning("webhook signature refused", provider=provider, bytes=len(body))
            raise
        if handled.inbound:
            _log.info("inbound messages received", provider=provider, count=handled.inbound)
        if handled.refused:
            _log.warning(
                "webhook items left out: a sender that is no identity or an id with control "
                "characters",
                provider=provider,
                count=handled.refused,
            )
        if handled.parked:
            _log.info("statuses parked until their message is recorded", count=handled.parked)
        for item in handled.messages:
            WEBHOOK_STATUSES.labels(provider, item.status).inc()
            # The status joins its message's story: same correlation id as its send (ADR 0020).
            with status_span(
                item.status, item.correlation_id, item.message_id, provider, item.recorded
            ):
                _log.info(
                    "message status reported" if item.recorded else "message status repeated",
                    provider=provider,
                    message_id=str(item.message_id),
                    status=item.status,
                    message_correlation_id=item.correlation_id,
                )
        return {
            "statuses": handled.statuses,
            "duplicates": handled.duplicates,
            "inbound": handled.inbound,
            "refused": handled.refused,
            "parked": handled.parked,
            "messages": [str(item.message_id) for item in handled.messages],
        }
