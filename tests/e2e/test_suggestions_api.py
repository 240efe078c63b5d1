"""Reply suggestions and channel variants over HTTP: a customer's inbound message, classified
by the running service, gets replies from the templates tagged with its intent, rendered with
the customer's name and listing the facts used; a marketer gets a template's variant per
channel, shaped by each channel's tone."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
import pytest

from domain.conversation.aggregate import conversation_id

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chorus(shared_chorus: ChorusProcess) -> ChorusProcess:
    """The module's tests share one service: each has its own templates and customers."""
    return shared_chorus


REFUND_REPLY = {
    "description": "Acknowledges a refund request",
    "default_locale": "en",
    "intents": ["request_refund", "refund_not_showing_up"],
    "variants": [
        {
            "channel": "email",
            "locale": "en",
            "subject": "Your refund",
            "body": "Hi {{ customer.first_name }},\n\nWe have your refund request "
            "and will answer within a day.",
        },
        {
            "channel": "sms",
            "locale": "en",
            "body": "Hi {{ customer.first_name }} 👋 your refund is under way "
            "https://bank.example/refunds https://bank.example/help",
        },
    ],
}
CARD_REPLY = {
    "default_locale": "en",
    "intents": ["lost_or_stolen_card"],
    "variants": [{"channel": "email", "locale": "en", "subject": "Card", "body": "Blocked."}],
}


def client(chorus: ChorusProcess, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key or chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def inbound(email: str, text: str) -> dict[str, Any]:
    return {
        "id": "m-refund-1",
        "type": "message.received",
        "occurred_at": "2026-11-30T12:00:00Z",
        "identities": [{"type": "email", "value": email}],
        "properties": {"channel": "email", "text": text},
    }


def suggestions_once_classified(http: httpx.Client, thread: UUID) -> dict[str, Any]:
    """The suggestions once the service has threaded and classified the message."""
    deadline = time.monotonic() + 60
    while True:
        answer = http.get(f"/v1/conversations/{thread}/suggestions")
        if answer.status_code == 200 and answer.json()["intent"] is not None:
            body: dict[str, Any] = answer.json()
            return body
        assert answer.status_code in (200, 404), answer.text
        assert time.monotonic() < deadline, "the inbound message was never classified"
        time.sleep(0.1)


class TestSuggestionsOverHttp:
    def test_an_inbound_message_gets_replies_from_the_templates_tagged_with_its_intent(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as http:
            assert http.put("/v1/templates/refund.ack", json=REFUND_REPLY).status_code == 201
            assert http.put("/v1/templates/card.lost", json=CARD_REPLY).status_code == 201
            made = http.put(
                "/v1/customers",
                json={
                    "identities": [{"type": "email", "value": "ana@example.org"}],
                    "profile": {"first_name": "Ana"},
                },
            )
            made.raise_for_status()
            customer_id = made.json()["customer"]["id"]
            sent = http.post(
                "/v1/events",
                json={"signals": [inbound("ana@example.org", "I want a refund for my order")]},
            )
            assert sent.status_code == 202, sent.text
            thread = conversation_id(UUID(customer_id))
            body = suggestions_once_classified(http, thread)
        assert (body["intent"], body["channel"]) == ("request_refund", "email")
        assert body["message_id"] is not None
        [suggestion] = body["suggestions"]
        assert (suggestion["template"], suggestion["version"]) == ("refund.ack", 1)
        assert suggestion["channel"] == "email"
        assert suggestion["subject"] == "Your refund"
        assert suggestion["text"].startswith("Hi Ana,\n\nWe have your refund request")
        assert suggestion["used"] == ["customer.first_name"]
        assert body["left_out"] == []

    def test_a_marketer_gets_a_variant_per_channel_shaped_by_its_tone(
        self, chorus: ChorusProcess
    ) -> None:
        marketer = chorus.key("marketer")
        # Under a name of its own, and tagged with no intent: the other test's message is
        # answered from every template tagged with its intent.
        untagged = {k: v for k, v in REFUND_REPLY.items() if k != "intents"}
        with client(chorus, marketer) as http:
            assert http.put("/v1/templates/refund.variants", json=untagged).status_code == 201
            answer = http.post(
                "/v1/templates/refund.variants/variants",
                json={"context": {"customer": {"first_name": "Rui"}}, "channels": ["sms", "push"]},
            )
            missing = http.post("/v1/templates/nothing.here/variants", json={"context": {}})
            no_key = http.post("/v1/templates/Not%20A%20Key/variants", json={"context": {}})
        assert answer.status_code == 200, answer.text
        sms, push = answer.json()["variants"]
        assert sms["text"] == "Hi Rui your refund is under way https://bank.example/refunds"
        assert [c["change"] for c in sms["changes"]] == ["emoji_stripped", "links_dropped"]
        assert sms["used"] == ["customer.first_name"]
        assert (push["channel"], push["written_for"]) == ("push", "email")
        assert push["tone"]["max_length"] == 180
        assert missing.status_code == 404
        assert no_key.status_code == 400, no_key.text
        assert [e["field"] for e in no_key.json()["errors"]] == ["path.key"]
