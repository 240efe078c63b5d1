"""WhatsApp's status webhooks, mapped: a number that is not on WhatsApp bounces."""

from __future__ import annotations

import json

import pytest

from adapters.providers.fakes.whatsapp_server import wa_status
from adapters.providers.whatsapp_cloud import (
    WHATSAPP_BOUNCES,
    WhatsAppCloudProvider,
    hub_signature,
)
from ports.providers import DeliveryStatus, StatusUpdate

URL = "https://chorus.example.com/v1/webhooks/wa"
SECRET = "the-app-secret"


def whatsapp() -> WhatsAppCloudProvider:
    return WhatsAppCloudProvider(
        "wa",
        base_url="https://graph.example",
        phone_number_id="1234567890",
        access_token="the-token",
        app_secret=SECRET,
    )


def webhook(
    status: str, error: int | None = None, title: str = "Message undeliverable"
) -> StatusUpdate:
    item = wa_status("wamid.A", status, error_code=error, error_title=title)
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "WABA", "changes": [{"field": "messages", "value": {"statuses": [item]}}]}
        ],
    }
    body = json.dumps(payload).encode()
    (update,) = whatsapp().parse_webhook(
        {"X-Hub-Signature-256": hub_signature(SECRET, body)}, body, URL
    )
    assert isinstance(update, StatusUpdate)
    return update


def test_a_number_that_is_not_on_whatsapp_bounces() -> None:
    update = webhook("failed", 131026)
    assert update.status is DeliveryStatus.BOUNCED
    assert update.reason == "whatsapp error 131026: Message undeliverable: Message undeliverable"


def test_the_code_is_metas_message_undeliverable() -> None:
    assert frozenset({131026}) == WHATSAPP_BOUNCES


@pytest.mark.parametrize(
    ("code", "title"),
    [
        (131047, "Re-engagement message"),  # the 24-hour window is closed
        (131049, "This message was not delivered to maintain healthy ecosystem engagement"),
        (131050, "User has stopped marketing messages"),
        (131000, "Something went wrong"),
        (None, ""),
    ],
)
def test_other_failures_stay_failed(code: int | None, title: str) -> None:
    assert webhook("failed", code, title).status is DeliveryStatus.FAILED


def test_a_delivery_is_a_delivery() -> None:
    update = webhook("delivered")
    assert (update.status, update.reason) == (DeliveryStatus.DELIVERED, None)
