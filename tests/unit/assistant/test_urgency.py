from __future__ import annotations

import pytest

from domain.assistant.classification import UNKNOWN_INTENT, CustomerContext, Urgency
from domain.assistant.urgency import urgency


class TestUrgencyFromTheIntent:
    def test_a_stolen_card_is_critical_whatever_the_tone(self) -> None:
        assert urgency("lost_or_stolen_card", 0.6, None) is Urgency.CRITICAL

    def test_a_declined_payment_is_high(self) -> None:
        assert urgency("declined_card_payment", 0.0, None) is Urgency.HIGH

    def test_a_question_about_supported_countries_can_wait(self) -> None:
        assert urgency("country_support", 0.0, None) is Urgency.LOW

    def test_an_intent_with_no_rule_is_normal(self) -> None:
        assert urgency("change_pin", 0.0, None) is Urgency.NORMAL

    def test_an_unknown_message_is_never_low_so_a_person_reads_it(self) -> None:
        assert urgency(UNKNOWN_INTENT, 0.9, None) is Urgency.NORMAL


class TestUrgencyRaisedByTheCustomer:
    def test_anger_raises_it_once(self) -> None:
        assert urgency("country_support", -0.7, None) is Urgency.NORMAL
        assert urgency("declined_card_payment", -0.7, None) is Urgency.CRITICAL

    def test_mild_displeasure_alone_raises_nothing(self) -> None:
        assert urgency("change_pin", -0.2, None) is Urgency.NORMAL

    def test_mild_displeasure_after_repeated_negative_messages_counts_as_anger(self) -> None:
        context = CustomerContext(recent_negative_messages=2)
        assert urgency("change_pin", -0.2, context) is Urgency.HIGH

    @pytest.mark.parametrize("tier", ["vip", "VIP", "premium"])
    def test_a_priority_tier_raises_it_once(self, tier: str) -> None:
        assert urgency("change_pin", 0.0, CustomerContext(tier=tier)) is Urgency.HIGH

    def test_an_ordinary_tier_raises_nothing(self) -> None:
        assert urgency("change_pin", 0.0, CustomerContext(tier="standard")) is Urgency.NORMAL

    def test_it_never_goes_above_critical(self) -> None:
        context = CustomerContext(tier="vip", recent_negative_messages=5)
        assert urgency("compromised_card", -0.9, context) is Urgency.CRITICAL
