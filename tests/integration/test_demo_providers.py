"""The demo's fake providers: what `chorus demo` runs, and what it tells a user about them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import uuid4

import httpx
import pytest

from adapters.postgres.manual_clock import PostgresClockStore
from adapters.providers.config import parse_provider_config
from adapters.providers.directory import ConfiguredProviderDirectory
from adapters.providers.fakes.receiver import WebhookReceiver
from domain.policy.vocabulary import Channel
from entrypoints.demo_providers import DemoProviders
from ports.providers import InboundMessage, OutboundMessage, StatusUpdate

if TYPE_CHECKING:
    from collections.abc import Iterator

    import asyncpg

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo_fakes() -> Iterator[DemoProviders]:
    fakes = DemoProviders("http://127.0.0.1:9")  # nothing is sent: no webhook goes out
    fakes.start()
    yield fakes
    fakes.stop()


class TestTheDemoFakes:
    def test_two_sms_providers_take_turns_in_failover_order(
        self, demo_fakes: DemoProviders
    ) -> None:
        config = parse_provider_config(json.dumps(demo_fakes.described["providers"]))
        directory = ConfiguredProviderDirectory.from_config(config)
        assert [p.name for p in directory.for_channel(Channel.SMS)] == ["twilio", "twilio-backup"]

    def test_every_provider_has_a_price_with_its_currency(self, demo_fakes: DemoProviders) -> None:
        config = parse_provider_config(json.dumps(demo_fakes.described["providers"]))
        directory = ConfiguredProviderDirectory.from_config(config)
        prices = {p.name: directory.price(p.name, "+447700900123") for p in config.providers}
        assert {name: price and price[1] for name, price in prices.items()} == {
            "twilio": "USD",
            "twilio-backup": "USD",
            "whatsapp_cloud": "USD",
            "email_api": "USD",
            "fcm": "USD",
            "smtp": "USD",
        }

    def test_the_environment_names_each_control_url_and_webhook_secret(
        self, demo_fakes: DemoProviders
    ) -> None:
        env = demo_fakes.environment()
        assert set(env) == {
            "FAKE_TWILIO_CONTROL_URL",
            "FAKE_TWILIO_BACKUP_CONTROL_URL",
            "FAKE_WHATSAPP_CLOUD_CONTROL_URL",
            "FAKE_EMAIL_API_CONTROL_URL",
            "FAKE_FCM_CONTROL_URL",
            "FAKE_TWILIO_WEBHOOK_SECRET",
            "FAKE_TWILIO_BACKUP_WEBHOOK_SECRET",
            "FAKE_WHATSAPP_CLOUD_WEBHOOK_SECRET",
            "FAKE_EMAIL_API_WEBHOOK_SECRET",
        }
        stats = httpx.get(env["FAKE_TWILIO_BACKUP_CONTROL_URL"] + "/stats", timeout=5)
        assert stats.status_code == 200

    def test_a_webhook_signed_with_the_documented_secret_is_accepted(
        self, demo_fakes: DemoProviders
    ) -> None:
        config = parse_provider_config(json.dumps(demo_fakes.described["providers"]))
        provider = ConfiguredProviderDirectory.from_config(config).get("email_api")
        assert provider is not None
        secret = demo_fakes.environment()["FAKE_EMAIL_API_WEBHOOK_SECRET"]
        body = b'{"type":"inbound","from":"ana@example.org","text":"Thanks!","message_id":"in-1"}'
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        url = "http://127.0.0.1:8000/v1/webhooks/email_api"
        [inbound] = provider.parse_webhook({"X-Signature": signature}, body, url)
        assert isinstance(inbound, InboundMessage)
        assert inbound.sender == "ana@example.org"


class TestTheDemoFakesOnTheManualClock:
    async def test_they_report_on_the_demo_s_clock_kept_in_its_database(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        then = datetime(2031, 5, 4, 9, 30, tzinfo=UTC)
        await PostgresClockStore(pool).save(then)
        with WebhookReceiver() as receiver:
            fakes = DemoProviders(receiver.url(""), delay_seconds=0, clock_from=database_url)
            fakes.start()
            assert fakes.process is not None
            assert database_url not in " ".join(map(str, fakes.process.args))  # a password
            directory = ConfiguredProviderDirectory.from_config(
                parse_provider_config(json.dumps(fakes.described["providers"]))
            )
            try:
                [provider] = directory.for_channel(Channel.WHATSAPP)
                await provider.send(
                    OutboundMessage(
                        uuid4(), uuid4().hex, Channel.WHATSAPP, "447700900123", body="Hi"
                    )
                )
                deadline = time.monotonic() + 10
                while not receiver.received and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                [request] = receiver.received
                [update] = provider.parse_webhook(
                    request.headers, request.body, receiver.url(request.path)
                )
            finally:
                await directory.close()
                fakes.stop()
        assert isinstance(update, StatusUpdate)
        assert update.at == then
