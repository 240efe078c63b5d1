from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.customer.aggregate import Customer
from domain.customer.identities import Identity, IdentityClaim
from domain.customer.keywords import consent_from_keyword
from domain.policy.vocabulary import Channel

T0 = datetime(2026, 11, 27, 12, tzinfo=UTC)


class TestKeywords:
    @pytest.mark.parametrize("text", ["STOP", "stop", " Stop. ", "UNSUBSCRIBE", "quit!"])
    def test_stop_words_opt_out_of_the_channel(self, text: str) -> None:
        change = consent_from_keyword(Channel.SMS, text)
        assert change is not None
        assert change.purpose is None
        assert not change.granted

    def test_start_opts_back_in(self) -> None:
        change = consent_from_keyword(Channel.SMS, "START")
        assert change is not None
        assert change.granted

    @pytest.mark.parametrize("text", ["please don't stop my order", "HELP", "stopp", ""])
    def test_anything_else_changes_nothing(self, text: str) -> None:
        assert consent_from_keyword(Channel.SMS, text) is None


class TestInboundMessages:
    def test_stop_then_start_on_the_customer(self) -> None:
        customer = Customer.register(
            uuid4(), T0, (IdentityClaim(Identity("phone", "+447700900123")),)
        )
        customer.receive_inbound(Channel.SMS, "STOP", T0, T0)
        assert Channel.SMS in customer.opted_out
        assert customer.opted_out[Channel.SMS].source == "inbound STOP"
        customer.receive_inbound(Channel.SMS, "START", T0 + timedelta(minutes=1), T0)
        assert Channel.SMS not in customer.opted_out

    def test_a_message_opens_the_service_window_and_an_older_one_does_not_move_it_back(
        self,
    ) -> None:
        customer = Customer.register(
            uuid4(), T0, (IdentityClaim(Identity("whatsapp_id", "447700900123")),)
        )
        customer.receive_inbound(Channel.WHATSAPP, "hi", T0, T0)
        customer.receive_inbound(Channel.WHATSAPP, "earlier", T0 - timedelta(hours=1), T0)
        assert customer.last_inbound[Channel.WHATSAPP] == T0
        assert customer.facts().last_inbound[Channel.WHATSAPP] == T0


class TestTimeZoneInference:
    def test_a_customer_without_a_time_zone_gets_their_phones_country_zone(self) -> None:
        customer = Customer.register(
            uuid4(), T0, (IdentityClaim(Identity("phone", "+81312345678")),)
        )
        assert customer.facts().time_zone == "Asia/Tokyo"

    def test_a_country_with_several_zones_infers_none(self) -> None:
        customer = Customer.register(
            uuid4(), T0, (IdentityClaim(Identity("phone", "+12125550100")),)
        )
        assert customer.facts().time_zone in (None, "America/New_York")

    def test_the_profile_time_zone_wins(self) -> None:
        customer = Customer.register(
            uuid4(), T0, (IdentityClaim(Identity("phone", "+81312345678")),)
        )
        customer.update_profile(T0, {"time_zone": "Europe/Paris"}, {})
        assert customer.facts().time_zone == "Europe/Paris"
