"""One trace from a send request to its provider call, and its webhook by correlation id:
a real service in this process (PostgreSQL, NATS, a fake Twilio calling back), its spans kept
by the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from adapters.providers.fakes.twilio_server import FakeTwilio
from adapters.providers.fakes.webhooks import StatusCallbacks
from entrypoints.service import run_service
from entrypoints.settings import Settings
from entrypoints.tracing import CORRELATION_ATTRIBUTE
from tests.e2e.conftest import create_admin_key
from tests.e2e.service import UNREACHABLE_RATE_LIMITS, free_port
from tests.tracing_spans import recorded_spans

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

pytestmark = pytest.mark.integration

PHONE = "+447700900456"
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"


def spans_with(correlation_id: str) -> list[ReadableSpan]:
    return [
        span
        for span in recorded_spans().get_finished_spans()
        if (span.attributes or {}).get(CORRELATION_ATTRIBUTE) == correlation_id
    ]


class TestOneSendIsOneTrace:
    # At once, the status usually overtakes the send's recorded round and is parked, then
    # applied by the scheduler; a second later, as providers do, the webhook applies it.
    @pytest.mark.parametrize("callback_delay", [0.0, 1.0], ids=["at-once", "a-second-later"])
    async def test_the_request_its_dispatch_provider_call_and_webhook_share_the_correlation_id(
        self, database_url: str, nats_url: str, callback_delay: float
    ) -> None:
        recorded_spans().clear()
        port, stream = free_port(), f"TRACE_{uuid.uuid4().hex[:8].upper()}"
        base = f"http://127.0.0.1:{port}"
        fake = FakeTwilio(
            auth_token="token",
            callbacks=StatusCallbacks(
                url=f"{base}/v1/webhooks/sms", status="delivered", delay_seconds=callback_delay
            ),
        )
        fake.start()
        providers = [
            {
                "name": "sms",
                "type": "twilio",
                "base_url": fake.base_url,
                "account_sid": fake.account_sid,
                "auth_token": fake.auth_token,
                "from_number": "+15005550006",
            }
        ]
        settings = Settings.from_env(
            {
                "DATABASE_URL": database_url,
                "NATS_URL": nats_url,
                "CHORUS_PORT": str(port),
                "CHORUS_CLOCK": "manual",
                "CHORUS_DEFAULT_REGION": "GB",
                "CHORUS_SIGNAL_STREAM": f"{stream}_SIGNALS",
                "CHORUS_NATS_PREFIX": stream.lower(),
                "CHORUS_OUTBOUND_STREAM": f"{stream}_OUT",
                "CHORUS_PROVIDERS": json.dumps(providers),
                **UNREACHABLE_RATE_LIMITS,
            }
        )
        key = await create_admin_key(database_url)
        ready = asyncio.Event()

        async def on_ready() -> None:
            ready.set()

        service = asyncio.create_task(run_service(settings, on_ready=on_ready))
        try:
            await asyncio.wait_for(ready.wait(), 30)
            async with httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10
            ) as http:
                made = await http.put(
                    "/v1/customers",
                    json={
                        "identities": [
                            {"type": "phone", "value": PHONE, "verification": "verified"}
                        ],
                        "profile": {"first_name": "Ana"},
                    },
                )
                assert made.status_code in (200, 201), made.text
                sent = await http.post(
                    "/v1/messages",
                    headers={"X-Correlation-Id": "order-7-shipped", "traceparent": TRACEPARENT},
                    json={
                        "customer_id": made.json()["customer"]["id"],
                        "team": "orders",
                        "purpose": "transactional",
                        "channels": ["sms"],
                        "content": {"body": "Your order shipped"},
                    },
                )
                assert sent.status_code == 200, sent.text
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not any(
                    s.name == "message status delivered" for s in spans_with("order-7-shipped")
                ):
                    await asyncio.sleep(0.1)
        finally:
            service.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await service
            fake.stop()

        spans = {span.name: span for span in spans_with("order-7-shipped")}
        assert {
            "POST /v1/messages",
            "dispatch message",
            "provider sms send",
            "message status delivered",
        } <= set(spans), sorted(spans)
        request, dispatch = spans["POST /v1/messages"], spans["dispatch message"]
        provider, status = spans["provider sms send"], spans["message status delivered"]
        # The caller's trace goes on through the outbox row into the dispatcher.
        assert request.context is not None
        assert dispatch.context is not None
        assert format(request.context.trace_id, "032x") == CALLER_TRACE
        assert dispatch.context.trace_id == request.context.trace_id
        assert dispatch.parent is not None
        assert dispatch.parent.span_id == request.context.span_id
        # The provider call is the dispatch's child, and says it was accepted.
        assert provider.parent is not None
        assert provider.parent.span_id == dispatch.context.span_id
        assert (provider.attributes or {}).get("chorus.accepted") is True
        # The webhook names the message the dispatch sent.
        message_id = (dispatch.attributes or {}).get("chorus.message_id")
        assert (status.attributes or {}).get("chorus.message_id") == message_id
        assert (status.attributes or {}).get("chorus.provider") == "sms"
        assert message_id == sent.json()["message_id"]
