"""The demo's fake providers: what `chorus demo` runs, and what it tells a user about them."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING

import httpx
import pytest

from adapters.providers.config import parse_provider_config
from adapters.providers.directory import ConfiguredProviderDirectory
from domain.policy.vocabulary import Channel
from entrypoints.demo_providers import DemoProviders
from ports.providers import InboundMessage

if TYPE_CHECKING:
    from collections.abc import Iterator

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
