"""One trace from a signal to the provider call of the campaign send it causes: the signal's
trace context is kept at intake, continued by the campaign process that enrols its customer,
stored on the send's outbox row and continued by the dispatch. The trigger it fires is marked
in the same trace, and its firing goes out on the bus with it. Over HTTP that trace is the
caller's; over NATS it is the batch's, which links the publisher's. A real service in this
process (PostgreSQL, NATS, the projection lanes, a fake Twilio), its spans kept in memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass
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
    from collections.abc import AsyncIterator

    from nats.aio.client import Client
    from nats.aio.subscription import Subscription
    from opentelemetry.sdk.trace import ReadableSpan

pytestmark = pytest.mark.integration

PHONE = "+447700900457"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
PUBLISHER_TRACE = "5c0a4b3e9f2d48e1a7b6c5d4e3f2a1b0"
PUBLISHER_TRACEPARENT = f"00-{PUBLISHER_TRACE}-1a2b3c4d5e6f7081-01"
WAIT = 60.0  # seconds: the projection lanes may be slow on a busy machine
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


@dataclass
class TracedChorus:
    """The service, with a campaign that sends an SMS on `signal`, a trigger on it, a customer
    with a verified phone, and a subscription to the firings it publishes."""

    http: httpx.AsyncClient
    bus: Client
    prefix: str
    signal: str
    customer_id: str
    firings: Subscription

    def signal_body(self) -> dict[str, Any]:
        return {
            "id": f"order-{uuid.uuid4().hex}",
            "type": self.signal,
            "occurred_at": datetime.now(UTC).isoformat(),
            "identities": [{"type": "phone", "value": PHONE}],
        }


@contextlib.asynccontextmanager
async def traced_chorus(database_url: str, nats_url: str) -> AsyncIterator[TracedChorus]:
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
                    "identities": [{"type": "phone", "value": PHONE, "verification": "verified"}],
                    "profile": {"first_name": "Ana"},
                },
            )
            assert made.status_code in (200, 201), made.text
            customer_id = made.json()["customer"]["id"]
            yield TracedChorus(http, bus, stream.lower(), signal, customer_id, firings)
    finally:
        service.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await service
        fake.stop()
        await bus.close()


async def provider_call_in(trace_id: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and "provider sms send" not in in_trace(trace_id):
        await asyncio.sleep(0.1)


def assert_one_trace_from(
    received: ReadableSpan, spans: dict[str, ReadableSpan], customer_id: str
) -> None:
    """The campaign process's span for the signal is the child of the span it was received
    in, and the dispatch and provider call of its send follow it."""
    assert {
        "signal in triggers",
        "signal in campaign_enrollments",
        "dispatch message",
        "provider sms send",
    } <= set(spans), sorted(spans)
    enrolled = spans["signal in campaign_enrollments"]
    dispatch, provider = spans["dispatch message"], spans["provider sms send"]
    assert received.context is not None
    assert enrolled.context is not None
    assert dispatch.context is not None
    assert enrolled.parent is not None
    assert enrolled.parent.span_id == received.context.span_id
    assert (enrolled.attributes or {}).get("chorus.customer_id") == customer_id
    # The send's outbox row carries the process's span on to the dispatcher.
    assert dispatch.parent is not None
    assert dispatch.parent.span_id == enrolled.context.span_id
    assert provider.parent is not None
    assert provider.parent.span_id == dispatch.context.span_id
    assert (provider.attributes or {}).get("chorus.accepted") is True
    # The trigger the signal fired is marked in the same trace.
    assert spans["signal in triggers"].parent is not None
    assert spans["signal in triggers"].parent.span_id == received.context.span_id
    # Identifiers only: nothing the customer is known by is on a span of the trace.
    for span in spans.values():
        assert PHONE not in json.dumps(dict(span.attributes or {}))


class TestASignalAndTheCampaignSendItCausesAreOneTrace:
    async def test_over_http_the_provider_call_is_in_the_callers_trace(
        self, database_url: str, nats_url: str
    ) -> None:
        async with traced_chorus(database_url, nats_url) as chorus:
            posted = await chorus.http.post(
                "/v1/events",
                headers={"traceparent": TRACEPARENT},
                json={"signals": [chorus.signal_body()]},
            )
            assert posted.status_code in (200, 202), posted.text
            await provider_call_in(CALLER_TRACE)
            fired = await chorus.firings.next_msg(timeout=WAIT)
        spans = in_trace(CALLER_TRACE)
        assert "POST /v1/events" in spans, sorted(spans)
        assert_one_trace_from(spans["POST /v1/events"], spans, chorus.customer_id)
        # The firing goes out in the caller's trace: a service that asks for a send on it
        # (a NATS send command with that header) goes on in it.
        assert (fired.headers or {}).get("traceparent", "").split("-")[1] == CALLER_TRACE

    async def test_over_nats_the_provider_call_is_in_the_trace_of_the_batch_linking_the_publisher(
        self, database_url: str, nats_url: str
    ) -> None:
        async with traced_chorus(database_url, nats_url) as chorus:
            body = chorus.signal_body()
            await chorus.bus.jetstream().publish(
                f"{chorus.prefix}.signals.app",
                json.dumps(body).encode(),
                headers={"Nats-Msg-Id": body["id"], "traceparent": PUBLISHER_TRACEPARENT},
            )
            deadline = time.monotonic() + WAIT
            ingest: ReadableSpan | None = None
            while ingest is None and time.monotonic() < deadline:
                ingest = next(
                    (
                        span
                        for span in recorded_spans().get_finished_spans()
                        if span.name == "ingest signals"
                        and any(
                            format(link.context.trace_id, "032x") == PUBLISHER_TRACE
                            for link in span.links
                        )
                    ),
                    None,
                )
                await asyncio.sleep(0.1)
            assert ingest is not None
            assert ingest.context is not None
            batch_trace = format(ingest.context.trace_id, "032x")
            await provider_call_in(batch_trace)
        # One span received many publishers' signals: it links the publisher's trace, and the
        # signal's work and send go on in its own.
        assert batch_trace != PUBLISHER_TRACE
        assert_one_trace_from(ingest, in_trace(batch_trace), chorus.customer_id)
