"""The fakes report on the clock they are given: beside a service on the manual clock, the
times their webhooks carry (`reported_at`, an inbound message's time) are on that clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from adapters.providers.email_api import EmailApiProvider
from adapters.providers.fakes.email_api_server import FakeEmailApi
from adapters.providers.fakes.whatsapp_server import FakeWhatsApp
from adapters.providers.whatsapp_cloud import WhatsAppCloudProvider
from adapters.system.clock import ManualClock
from ports.providers import InboundMessage, StatusUpdate

if TYPE_CHECKING:
    from adapters.providers.fakes.webhooks import FinalStatus

URL = "https://chorus.example.com/v1/webhooks/fake"
THEN = datetime(2031, 5, 4, 9, 30, tzinfo=UTC)  # a manual clock's time, far from the wall's


def whatsapp(fake: FakeWhatsApp) -> WhatsAppCloudProvider:
    return WhatsAppCloudProvider(
        "wa",
        base_url="https://graph.example",
        phone_number_id=fake.phone_number_id,
        access_token=fake.access_token,
        app_secret=fake.app_secret,
    )


def email(fake: FakeEmailApi) -> EmailApiProvider:
    return EmailApiProvider(
        "mail",
        base_url="https://mail.example",
        api_key=fake.api_key,
        webhook_secret=fake.webhook_secret,
        sender="Chorus <noreply@chorus.example>",
    )


class TestWhatsApp:
    @pytest.mark.parametrize("status", ["delivered", "bounced"])
    def test_a_status_is_reported_at_the_fakes_clock(self, status: FinalStatus) -> None:
        fake = FakeWhatsApp(clock=ManualClock(THEN))
        webhook = fake.status_webhook(URL, "wamid.A", {"to": "+447700900123"}, status)
        assert webhook is not None
        [update] = whatsapp(fake).parse_webhook(webhook.headers, webhook.body, URL)
        assert isinstance(update, StatusUpdate)
        assert update.at == THEN

    def test_an_inbound_message_is_sent_at_the_fakes_clock(self) -> None:
        fake = FakeWhatsApp(clock=ManualClock(THEN))
        webhook = fake.inbound_webhook(URL, "+447700900123", "STOP")
        [inbound] = whatsapp(fake).parse_webhook(webhook.headers, webhook.body, URL)
        assert isinstance(inbound, InboundMessage)
        assert inbound.at == THEN


class TestEmailApi:
    def test_statuses_and_inbound_mail_are_at_the_fakes_clock(self) -> None:
        fake = FakeEmailApi(clock=ManualClock(THEN))
        status = fake.status_webhook(URL, "msg_A", {}, "complained")
        assert status is not None
        inbound = fake.inbound_webhook(URL, "ada@example.org", "STOP")
        provider = email(fake)
        updates = [
            *provider.parse_webhook(status.headers, status.body, URL),
            *provider.parse_webhook(inbound.headers, inbound.body, URL),
        ]
        assert len(updates) == 3
        assert {update.at for update in updates} == {THEN}
