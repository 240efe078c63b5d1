"""The service's log of a short but complete run holds no personal data and no secret: every
email, phone number, message text and key it was given is searched for in it, in every form."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import nats
import pytest

from adapters.providers.fakes.email_api_server import FakeEmailApi
from adapters.providers.fakes.twilio_server import FakeTwilio
from adapters.providers.fakes.webhooks import StatusCallbacks
from tests.e2e.conftest import _delete_streams
from tests.e2e.service import ChorusProcess

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

SIGNAL_EMAIL = "lena.hartmann@example.org"
SIGNAL_PHONE = ("07700 900123", "+447700900123", "7700900123")  # as given, E.164, digits
CUSTOMER_EMAIL = "marek.novak@example.net"
CUSTOMER_PHONE = ("+44 7700 900987", "+447700900987", "7700900987")
SMS_TEXT = "Your parcel code is 58213407"
EMAIL_TEXT = "Marek, your invoice INV-99431 is ready"
BAD_EMAIL = "jonas.weber(at)example.org"
NATS_EMAIL = "ines.moreau@example.com"
BAD_PHONE = "+44 7700 9OO 555"
WRONG_SECRET = "not-a-key-4b1d2c9e7f"


async def publish_signals(chorus: ChorusProcess) -> None:
    """One signal over NATS, and one the service dead-letters for its malformed phone."""
    nc = await nats.connect(chorus.nats_url)
    try:
        js = nc.jetstream()
        for event_id, identities in (
            ("app-1", [{"type": "email", "value": NATS_EMAIL}]),
            ("app-2", [{"type": "phone", "value": BAD_PHONE}]),
        ):
            signal = {
                "id": event_id,
                "type": "app.opened",
                "occurred_at": "2026-11-27T10:00:00Z",
                "identities": identities,
            }
            await js.publish(
                f"{chorus.subject_prefix}.signals.app",
                json.dumps(signal).encode(),
                headers={"Nats-Msg-Id": event_id},
            )
    finally:
        await nc.close()


def until_status(http: httpx.Client, message_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        view: dict[str, Any] = http.get(f"/v1/messages/{message_id}").json()
        if view.get("status") == status or time.monotonic() > deadline:
            return view
        time.sleep(0.1)


class TestTheLogHoldsNoPersonalDataNorSecrets:
    def test_a_run_from_ingest_to_webhook_leaves_no_email_phone_text_or_key_in_the_log(
        self, database_url: str, nats_url: str, tmp_path: Path
    ) -> None:
        log_path = tmp_path / "chorus.log"
        chorus = ChorusProcess(
            database_url, nats_url, f"E2E_{uuid.uuid4().hex[:8].upper()}", log_path
        )
        sms = FakeTwilio(
            auth_token="twilio-token-7c1e55",
            callbacks=StatusCallbacks(url=f"{chorus.base_url}/v1/webhooks/sms", status="delivered"),
        )
        email = FakeEmailApi(
            api_key="email-api-key-93ad1f",
            webhook_secret="email-hook-secret-2f8b",
            callbacks=StatusCallbacks(
                url=f"{chorus.base_url}/v1/webhooks/email", status="delivered"
            ),
        )
        sms.start()
        email.start()
        chorus.env["CHORUS_LOG_LEVEL"] = "debug"  # the most the service ever writes
        chorus.env["CHORUS_OTEL_EXPORTER"] = "console"  # and its spans, in the same log
        chorus.env["CHORUS_PROVIDERS"] = json.dumps(
            [
                {
                    "name": "sms",
                    "type": "twilio",
                    "base_url": sms.base_url,
                    "account_sid": sms.account_sid,
                    "auth_token": sms.auth_token,
                    "from_number": "+15005550006",
                },
                {
                    "name": "email",
                    "type": "email_api",
                    "base_url": email.base_url,
                    "api_key": email.api_key,
                    "webhook_secret": email.webhook_secret,
                    "sender": "orders@shop.example",
                },
            ]
        )
        admin = chorus.chorus("keys", "create", "--role", "admin")
        chorus.start()
        try:
            with httpx.Client(
                base_url=chorus.base_url, headers={"Authorization": f"Bearer {admin}"}, timeout=10
            ) as http:
                team = http.post("/v1/teams", json={"key": "orders", "name": "Orders"})
                assert team.status_code == 201, team.text
                made_key = http.post(
                    "/v1/keys", json={"name": "orders", "role": "service", "teams": ["orders"]}
                )
                assert made_key.status_code == 201, made_key.text
                service_secret = made_key.json()["secret"]
                ingested = http.post(
                    "/v1/events?wait=attributed",
                    json={
                        "signals": [
                            {
                                "id": "crm-1",
                                "type": "contact.updated",
                                "occurred_at": "2026-11-27T10:00:00Z",
                                "identities": [
                                    {"type": "email", "value": SIGNAL_EMAIL},
                                    {"type": "phone", "value": SIGNAL_PHONE[0]},
                                ],
                            },
                            {  # refused, with its reason: the reason names no value
                                "id": "crm-2",
                                "type": "contact.updated",
                                "occurred_at": "2026-11-27T10:00:00Z",
                                "identities": [{"type": "email", "value": BAD_EMAIL}],
                            },
                        ]
                    },
                )
                assert ingested.status_code == 422, ingested.text  # one stored, one refused
                assert ingested.json()["accepted"] == 1
                asyncio.run(publish_signals(chorus))
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    found = http.get(f"/v1/customers?identity=email:{NATS_EMAIL}")
                    if found.status_code == 200:
                        break
                    time.sleep(0.2)
                assert found.status_code == 200, found.text
                customer = http.put(
                    "/v1/customers",
                    json={
                        "identities": [
                            {"type": "email", "value": CUSTOMER_EMAIL, "verification": "verified"},
                            {
                                "type": "phone",
                                "value": CUSTOMER_PHONE[0],
                                "verification": "verified",
                            },
                        ],
                        "profile": {"first_name": "Marek"},
                    },
                )
                assert customer.status_code in (200, 201), customer.text
                customer_id = customer.json()["customer"]["id"]
                refused = http.get("/v1/keys", headers={"Authorization": f"Bearer {WRONG_SECRET}"})
                assert refused.status_code == 401
                sent = []
                for channel, content in (
                    ("sms", {"body": SMS_TEXT}),
                    ("email", {"subject": "Invoice", "body": EMAIL_TEXT}),
                ):
                    answer = http.post(
                        "/v1/messages",
                        headers={"Authorization": f"Bearer {service_secret}"},
                        json={
                            "customer_id": customer_id,
                            "team": "orders",
                            "purpose": "transactional",
                            "channels": [channel],
                            "content": content,
                        },
                    )
                    assert answer.status_code == 200, answer.text
                    sent.append(answer.json()["message_id"])
                for message_id in sent:
                    view = until_status(http, message_id, "delivered")
                    assert view["status"] == "delivered", view
        finally:
            chorus.stop()
            sms.stop()
            email.stop()
            asyncio.run(_delete_streams(chorus))

        log = log_path.read_text()
        assert '"message accepted"' in log  # the log is the run's: its dispatches are in it
        assert '"trace_id"' in log
        assert '"name": "dispatch message"' in log  # the console exporter's spans are searched too
        secrets = (
            admin,
            service_secret,
            WRONG_SECRET,
            sms.auth_token,
            email.api_key,
            email.webhook_secret,
        )
        personal = (
            SIGNAL_EMAIL,
            CUSTOMER_EMAIL,
            *SIGNAL_PHONE,
            *CUSTOMER_PHONE,
            SMS_TEXT,
            EMAIL_TEXT,
        )
        found = {value for value in (*secrets, *personal) if value.lower() in log.lower()}
        assert not found, [
            line for line in log.splitlines() if any(v.lower() in line.lower() for v in found)
        ][:10]
