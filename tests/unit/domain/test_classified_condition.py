"""The `classified` segment condition: how many of a customer's messages, classified so,
arrived in a window; evaluated over the classified messages kept with the signals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.customer.classified import CLASSIFIED_SIGNAL, classified_properties
from domain.segments.conditions import (
    Classified,
    ConditionInvalid,
    SegmentFacts,
    SignalFact,
    condition_document,
    decode_condition,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
COMPLAINED_TWICE = {
    "type": "classified",
    "intent": "refund",
    "sentiment": "negative",
    "within": "30d",
    "op": "gte",
    "value": 2,
}


def message(
    age: timedelta,
    intent: str = "refund",
    sentiment: str = "negative",
    urgency: str = "high",
    channel: str = "email",
) -> SignalFact:
    properties = classified_properties(
        {
            "intent": intent,
            "confidence": 0.9,
            "sentiment": sentiment,
            "score": -0.6,
            "urgency": urgency,
            "channel": channel,
        }
    )
    return SignalFact(NOW - age, properties)


def facts(*messages: SignalFact) -> SegmentFacts:
    return SegmentFacts(signals={CLASSIFIED_SIGNAL: list(messages)})


def condition(document: dict[str, Any]) -> Classified:
    found = decode_condition(document)
    assert isinstance(found, Classified)
    return found


class TestCounting:
    def test_two_negative_refund_requests_this_month_meet_it(self) -> None:
        twice = condition(COMPLAINED_TWICE)
        assert twice.holds(facts(message(timedelta(days=3)), message(timedelta(days=20))), NOW)

    def test_one_is_not_enough(self) -> None:
        assert not condition(COMPLAINED_TWICE).holds(facts(message(timedelta(days=3))), NOW)

    def test_messages_of_another_intent_or_sentiment_do_not_count(self) -> None:
        other = facts(
            message(timedelta(days=1)),
            message(timedelta(days=2), intent="delivery"),
            message(timedelta(days=3), sentiment="positive"),
        )
        assert not condition(COMPLAINED_TWICE).holds(other, NOW)

    def test_by_default_one_message_so_classified_is_enough(self) -> None:
        refund = condition({"type": "classified", "intent": "refund", "within": "7d"})
        assert refund.holds(facts(message(timedelta(days=1))), NOW)
        assert not refund.holds(facts(), NOW)

    def test_an_intent_is_compared_in_lower_case(self) -> None:
        refund = condition({"type": "classified", "intent": "Refund", "within": "7d"})
        assert refund.holds(facts(message(timedelta(days=1))), NOW)

    def test_min_urgency_counts_that_urgency_and_higher(self) -> None:
        urgent = condition({"type": "classified", "min_urgency": "high", "within": "7d"})
        assert urgent.holds(facts(message(timedelta(hours=1), urgency="critical")), NOW)
        assert urgent.holds(facts(message(timedelta(hours=1), urgency="high")), NOW)
        assert not urgent.holds(facts(message(timedelta(hours=1), urgency="normal")), NOW)

    def test_a_channel_narrows_the_count(self) -> None:
        on_whatsapp = condition({"type": "classified", "channel": "whatsapp", "within": "7d"})
        assert not on_whatsapp.holds(facts(message(timedelta(hours=1))), NOW)
        assert on_whatsapp.holds(facts(message(timedelta(hours=1), channel="whatsapp")), NOW)

    def test_no_classified_message_is_a_count_of_zero(self) -> None:
        quiet = condition({"type": "classified", "within": "30d", "op": "eq", "value": 0})
        assert quiet.holds(SegmentFacts(), NOW)


class TestWindow:
    def test_a_message_leaving_the_window_ends_it_when_it_leaves(self) -> None:
        twice = condition(COMPLAINED_TWICE)
        older = message(timedelta(days=25))
        known = facts(message(timedelta(days=1)), older)
        assert twice.holds(known, NOW)
        leaves = older.occurred_at + timedelta(days=30)
        assert twice.changes_at(known, NOW) == leaves
        assert twice.holds(known, leaves - timedelta(seconds=1))
        assert not twice.holds(known, leaves)

    def test_nothing_to_expire_is_no_change_due(self) -> None:
        assert condition(COMPLAINED_TWICE).changes_at(facts(), NOW) is None

    def test_it_reads_only_the_classified_messages_of_its_window(self) -> None:
        twice = condition(COMPLAINED_TWICE)
        assert twice.signal_types == frozenset({CLASSIFIED_SIGNAL})
        assert twice.lookback == timedelta(days=30)


def refusal(document: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ConditionInvalid) as caught:
        decode_condition(json.dumps({"type": "all", "conditions": [document]}))
    return caught.value.path, caught.value.reason


class TestDocuments:
    def test_a_document_reads_back_as_written(self) -> None:
        read = decode_condition(COMPLAINED_TWICE)
        assert decode_condition(condition_document(read)) == read

    def test_a_missing_window_is_named(self) -> None:
        path, reason = refusal({"type": "classified", "intent": "refund"})
        assert path == "$.conditions[0].within"
        assert "missing" in reason.lower() or "required" in reason.lower()

    @pytest.mark.parametrize(
        ("field", "value", "said"),
        [
            ("sentiment", "furious", "negative, neutral, positive"),
            ("min_urgency", "asap", "low, normal, high, critical"),
            ("channel", "pigeon", "email"),
            ("within", "0d", "longer than zero"),
            ("op", "contains", "cannot compare numbers"),
            ("value", -1, ""),
            ("intent", "refund please", ""),
            ("intent", "refnud", "not an intent a classifier knows"),
        ],
    )
    def test_a_bad_field_is_named_with_why(self, field: str, value: Any, said: str) -> None:
        document = {"type": "classified", "within": "30d", field: value}
        path, reason = refusal(document)
        assert path == f"$.conditions[0].{field}"
        assert said in reason
