"""The story of one message over HTTP: deferred in quiet hours, then sent, then bounced."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from adapters.providers.fakes.email_api_server import FakeEmailApi
from domain.access.records import PROVIDERS_STREAM
from domain.signals.intake import intake_id_for
from tests.e2e.conftest import bouncing_email
from tests.e2e.service import ChorusProcess

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

NIGHT = "2026-11-27T23:00:00Z"
NEXT_NIGHT = "2026-11-28T23:00:00Z"  # when the daily cap's window has room again


@pytest.fixture
async def service(
    database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[tuple[ChorusProcess, FakeEmailApi]]:
    """Chorus with one email provider whose every message bounces."""
    price = {"amount": "0.001", "currency": "USD"}
    async with bouncing_email(
        database_url, nats_url, tmp_path / "chorus.log", sender="orders@shop.example", price=price
    ) as made:
        yield made


def client(chorus: ChorusProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=chorus.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def deferred_send(http: httpx.Client) -> dict[str, Any]:
    """Ana, three sends that fill the built-in daily cap (3 a day across teams), then an
    email of team `orders` with a template, deferred by the cap for a day."""
    http.post("/v1/admin/clock", json={"set": NIGHT}).raise_for_status()
    identity = {"type": "email", "value": "ana@example.org", "verification": "verified"}
    profile = {"first_name": "Ana", "time_zone": "Europe/London"}
    answer = http.put("/v1/customers", json={"identities": [identity], "profile": profile})
    assert answer.status_code in (200, 201), answer.text
    variant = {
        "channel": "email",
        "locale": "en",
        "subject": "Hi",
        "body": "Hi {{ customer.first_name }}",
    }
    template = {"default_locale": "en", "variants": [variant]}
    assert http.put("/v1/templates/hello", json=template).status_code in (200, 201)
    body = {
        "customer_id": answer.json()["customer"]["id"],
        "team": "orders",
        "purpose": "service",
        "channels": ["email"],
        "template": "hello",
    }
    for _ in range(3):  # decisions only: without content nothing is sent
        advice = {k: v for k, v in body.items() if k != "template"}
        assert http.post("/v1/messages", json=advice).json()["outcome"] == "send"
    decided = http.post("/v1/messages", json=body)
    assert decided.status_code == 200, decided.text
    told: dict[str, Any] = decided.json()
    return told


def story_once(http: httpx.Client, message_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        story: dict[str, Any] = http.get(f"/v1/audit/messages/{message_id}").json()
        if story.get("status") == status or time.monotonic() > deadline:
            return story
        time.sleep(0.2)


class TestTheStoryOfAMessage:
    def test_deferred_then_sent_then_bounced_shows_both_decisions_and_each_status_source(
        self, service: tuple[ChorusProcess, FakeEmailApi]
    ) -> None:
        chorus, email = service
        with client(chorus, chorus.admin_key) as http:  # type: ignore[attr-defined]
            decided = deferred_send(http)
            assert decided["outcome"] == "defer", decided
            message_id = decided["message_id"]
            waiting = http.get(f"/v1/audit/messages/{message_id}").json()
            http.post("/v1/admin/clock", json={"set": NEXT_NIGHT}).raise_for_status()
            auditor = http.post("/v1/keys", json={"name": "audit", "role": "auditor"})
            http.post("/v1/teams", json={"key": "growth", "name": "Growth"}).raise_for_status()
            other = http.post(
                "/v1/keys", json={"name": "growth", "role": "service", "teams": ["growth"]}
            )
            admin_key_id = next(
                k["id"] for k in http.get("/v1/keys").json()["items"] if k["role"] == "admin"
            )
            signal = {
                "id": f"story:{uuid.uuid4().hex}",
                "type": "page.viewed",
                "occurred_at": NIGHT,
                "identities": [{"type": "email", "value": "ana@example.org"}],
            }
            received = http.post("/v1/events?wait=attributed", json={"signals": [signal]})
            assert received.status_code < 300, received.text
        # Streams of other kinds: a key's and the providers' documents, a received signal's
        # document, and (below) the customer's events. None is a message.
        other_streams = [
            admin_key_id,
            str(PROVIDERS_STREAM),
            str(intake_id_for(signal["id"])),
        ]
        with client(chorus, auditor.json()["secret"]) as http:
            story = story_once(http, message_id, "bounced")
            not_a_uuid = http.get("/v1/audit/messages/not-a-uuid")
            unknown = http.get(f"/v1/audit/messages/{uuid.uuid4()}")
            other_streams.append(story["customer_id"])
            not_messages = [http.get(f"/v1/audit/messages/{i}") for i in other_streams]
        with client(chorus, other.json()["secret"]) as http:
            of_another_team = http.get(f"/v1/audit/messages/{message_id}")

        # Deferred, it names the template and version its deferral keeps to send.
        assert (waiting["status"], waiting["template"], waiting["template_version"]) == (
            "deferred",
            "hello",
            1,
        )
        assert (waiting["recipient"], waiting["content"]) == (None, None)
        assert story["status"] == "bounced", story
        asked = story["requested_by"]
        assert (asked["kind"], asked["team"], asked["key_id"]) == ("api", "orders", admin_key_id)
        assert [(d["outcome"], d["decided_at"]) for d in story["decisions"]] == [
            ("defer", NIGHT),
            ("send", NEXT_NIGHT),
        ]
        deferred, sent = story["decisions"]
        assert deferred["defer_until"] == NEXT_NIGHT
        assert "cap.global.daily" in [rule["rule_id"] for rule in deferred["fired"]]
        assert sent["origin"] == "scheduler"
        assert deferred["rule_set_version"] == sent["rule_set_version"]
        assert (story["template"], story["template_version"]) == ("hello", 1)
        assert story["content"]["body"] == "Hi Ana"
        assert [(a["provider"], a["accepted"]) for a in story["attempts"]] == [("email", True)]
        assert [(s["status"], s["by"], s["source"]) for s in story["statuses"]] == [
            ("queued", "provider", "receipt"),
            ("bounced", "provider", "webhook"),
        ]
        assert (story["cost"], story["currency"]) == ("0.0008", "USD")
        assert len(email.received) == 1
        assert not_a_uuid.status_code == 400
        assert not_a_uuid.json()["errors"][0]["field"] == "path.message_id"
        assert unknown.status_code == 404
        for stream_id, answer in zip(other_streams, not_messages, strict=True):
            assert answer.status_code == 404, (stream_id, answer.text)
            assert answer.json()["detail"] == f"no message {stream_id}"
        assert of_another_team.status_code == 403
