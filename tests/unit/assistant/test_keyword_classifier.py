"""The keyword classifier, the stand-in for the model until one is chosen for routing."""

from __future__ import annotations

import pytest

from adapters.assistant.keywords import KeywordClassifier
from application.conversations.receive_inbound import intent_key
from domain.assistant.classification import (
    Classification,
    Sentiment,
    UnknownReason,
    Urgency,
)

classify = KeywordClassifier().classify


class TestIntent:
    @pytest.mark.parametrize(
        ("text", "intent"),
        [
            ("I want my money back", "refund"),
            ("Please CANCEL my subscription", "cancel"),
            ("Why was I charged twice?", "billing"),
            ("Where is my parcel", "delivery"),
            ("I forgot my password", "account"),
        ],
    )
    def test_the_first_intent_whose_words_it_holds(self, text: str, intent: str) -> None:
        found = classify(text)
        assert (found.intent, found.confidence, found.known) == (intent, 1.0, True)

    def test_words_count_only_whole(self) -> None:
        assert classify("the billboard outside").intent == "unknown"

    def test_a_message_with_none_of_the_words_is_unknown(self) -> None:
        found = classify("hello there")
        assert (found.intent, found.unknown_reason) == ("unknown", UnknownReason.LOW_CONFIDENCE)
        assert intent_key(found) is None

    @pytest.mark.parametrize(("text", "reason"), [(None, "not_text"), ("   ", "empty")])
    def test_what_is_no_text_is_unknown_with_its_reason(self, text: object, reason: str) -> None:
        assert classify(text).unknown_reason == reason


class TestSentiment:
    @pytest.mark.parametrize(
        ("text", "sentiment"),
        [
            ("This is terrible and I am upset", Sentiment.NEGATIVE),
            ("Thanks, that was great", Sentiment.POSITIVE),
            ("Where is my parcel", Sentiment.NEUTRAL),
            ("not good at all", Sentiment.NEGATIVE),
            ("not bad", Sentiment.POSITIVE),
        ],
    )
    def test_negative_and_positive_words_a_negation_flipping_the_next(
        self, text: str, sentiment: Sentiment
    ) -> None:
        assert classify(text).sentiment is sentiment


class TestIntentKey:
    def test_a_model_intent_becomes_a_routing_key(self) -> None:
        found = Classification("Refund_not_showing_up", 0.9, Sentiment.NEUTRAL, 0.0, Urgency.HIGH)
        assert intent_key(found) == "refund_not_showing_up"

    def test_a_model_intent_with_a_question_mark_is_kept_by_its_key(self) -> None:
        found = Classification("reverted_card_payment?", 0.9, Sentiment.NEUTRAL, 0.0, Urgency.HIGH)
        assert intent_key(found) == "reverted_card_payment"
