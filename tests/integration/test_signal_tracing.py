"""One trace from a signal to the provider call of the campaign send it causes: the signal's
trace context is kept at intake, continued by the campaign process that enrols its customer,
stored on the send's outbox row and continued by the dispatch. The trigger it fires is marked
in the same trace, and its firing goes out on the bus with it. A real service in this process
(PostgreSQL, NATS, the projection lanes, a fake Twilio), its spans kept in memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import nats
import pytest

from adapters.providers.fakes.twilio_server import FakeTwilio
from entrypoints.service import run_service
from entrypoints.settings import Settings
from tests.e2e.conftest import create_admin_key
from tests.e2e.service import UNREACHABLE_RATE_LIMITS, free_port
from tests.tracing_spans import recorded_spans

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

pytestmark = pytest.mark.integration

PHONE = "+447700900457"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
THANKS: dict[str, Any] = {
    "default_locale": "en",
    "variants": [{"channel": "sms", "locale": "en", "body": "Thanks {{ customer.first_name }}"}],
}


def campaign(key: str, signal: str) -> dict[str, Any]:
    return {
        "key": key,
        "name": "Thanks for the order",
        "journey": {
            "entry": {"type": "signal", "signal": signal},
            "start": "thanks",
            "steps": {
                "thanks": {
                    "type": "send",
                    "channels": ["sms"],
                    "template": key,
                    "purpose": "transactional",
                    "team": "orders",
                }
            },
        },
    }


def in_trace(trace_id: str) -> dict[str, ReadableSpan]:
    return {
        span.name: span
        for span in recorded_spans().get_finished_spans()
        if span.context is not None and format(span.context.trace_id, "032x") == trace_id
    }


class TestASignalAndTheCampaignSendItCausesAreOneTrace:
    async def test_the_provider_call_of_the_send_is_in_the_trace_of_the_signal_request(
        self, database_url: str, nats_url: str
    ) -> None:
        recorded_spans().clear()
        port, stream = free_port(), f"STRACE_{uuid.uuid4().hex[:8].upper()}"
        key, signal = f"thanks-{uuid.uuid4().hex[:8]}", f"order.traced.{uuid.uuid4().hex[:8]}"
        fake = FakeTwilio(auth_token="token")
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
        admin = await create_admin_key(database_url)
        ready = asyncio.Event()

        async def on_ready() -> None:
            ready.set()

        bus = await nats.connect(nats_url)
        firings = await bus.subscribe(f"{stream.lower()}.out.triggers.fired")
        service = asyncio.create_task(run_service(settings, on_ready=on_ready))
        try:
            await asyncio.wait_for(ready.wait(), 30)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {admin}"},
                timeout=10,
            ) as http:
                (await http.put(f"/v1/templates/{key}", json=THANKS)).raise_for_status()
                (await http.post("/v1/campaigns", json=campaign(key, signal))).raise_for_status()
                (await http.post(f"/v1/campaigns/{key}/activate")).raise_for_status()
                trigger = {"name": "Traced", "on": {"type": "signal", "signal": signal}}
                (await http.put(f"/v1/triggers/{key}", json=trigger)).raise_for_status()
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
                customer_id = made.json()["customer"]["id"]
                posted = await http.post(
                    "/v1/events",
                    headers={"traceparent": TRACEPARENT},
                    json={
                        "signals": [
                            {
                                "id": f"order-{uuid.uuid4().hex}",
                                "type": signal,
                                "occurred_at": datetime.now(UTC).isoformat(),
                                "identities": [{"type": "phone", "value": PHONE}],
                            }
                        ]
                    },
                )
                assert posted.status_code in (200, 202), posted.text
                deadline = time.monotonic() + 60  # the lanes may be slow on a busy machine
                while time.monotonic() < deadline and "provider sms send" not in in_trace(
                    CALLER_TRACE
                ):
                    await asyncio.sleep(0.1)
                fired = await firings.next_msg(timeout=max(deadline - time.monotonic(), 1))
        finally:
            service.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await service
            fake.stop()
            await bus.close()

        spans = in_trace(CALLER_TRACE)
        assert {
            "POST /v1/events",
            "signal in triggers",
            "signal in campaign_enrollments",
            "dispatch message",
            "provider sms send",
        } <= set(spans), sorted(spans)
        request, enrolled = spans["POST /v1/events"], spans["signal in campaign_enrollments"]
        dispatch, provider = spans["dispatch message"], spans["provider sms send"]
        assert request.context is not None
        assert enrolled.context is not None
        assert dispatch.context is not None
        # The campaign process continues the request the signal came in, kept with the signal.
        assert enrolled.parent is not None
        assert enrolled.parent.span_id == request.context.span_id
        assert (enrolled.attributes or {}).get("chorus.customer_id") == customer_id
        # Its send's outbox row carries the process's span on to the dispatcher.
        assert dispatch.parent is not None
        assert dispatch.parent.span_id == enrolled.context.span_id
        assert provider.parent is not None
        assert provider.parent.span_id == dispatch.context.span_id
        assert (provider.attributes or {}).get("chorus.accepted") is True
        # The trigger the signal fired is marked in its trace, and the firing goes out with it:
        # a service that asks for a send on it goes on in the caller's trace.
        assert spans["signal in triggers"].parent is not None
        assert spans["signal in triggers"].parent.span_id == request.context.span_id
        assert (fired.headers or {}).get("traceparent", "").split("-")[1] == CALLER_TRACE
        # Identifiers only: nothing the customer is known by is on a span of the trace.
        for span in spans.values():
            assert PHONE not in json.dumps(dict(span.attributes or {}))
