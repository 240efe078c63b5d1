from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from adapters.assistant.keywords import INTENT_WORDS
from domain.assistant.intents import (
    BANKING77_INTENTS,
    INTENTS,
    KEYWORD_INTENTS,
    canonical_intent,
    check_intents,
)
from domain.shared.errors import InvalidValue
from domain.shared.keys import KEY_PATTERN

CATEGORIES = Path(__file__).parents[3] / "data" / "banking77" / "categories.json"


class TestTheIntentsTemplatesMayBeTaggedWith:
    def test_the_models_are_the_77_of_the_shipped_data_by_their_keys(self) -> None:
        labels = json.loads(CATEGORIES.read_text())
        assert frozenset(map(canonical_intent, labels)) == BANKING77_INTENTS
        assert len(BANKING77_INTENTS) == 77

    def test_every_intent_is_a_key_routing_and_conversations_take(self) -> None:
        assert [i for i in INTENTS if not re.match(KEY_PATTERN, i)] == []


class TestOneKeyPerIntent:
    @pytest.mark.parametrize(
        ("label", "key"),
        [
            ("Refund_not_showing_up", "refund_not_showing_up"),
            ("reverted_card_payment?", "reverted_card_payment"),
            ("request_refund", "request_refund"),
        ],
    )
    def test_the_datasets_spelling_is_read_as_the_key(self, label: str, key: str) -> None:
        assert canonical_intent(label) == key
        assert key in BANKING77_INTENTS

    def test_tags_given_in_the_datasets_spelling_are_kept_as_keys(self) -> None:
        assert check_intents(["Refund_not_showing_up", "refund_not_showing_up"]) == (
            "refund_not_showing_up",
        )

    def test_the_keyword_classifiers_are_its_intents(self) -> None:
        assert frozenset(INTENT_WORDS) == KEYWORD_INTENTS
        assert INTENTS == BANKING77_INTENTS | KEYWORD_INTENTS

    def test_each_is_kept_once_in_the_order_given(self) -> None:
        assert check_intents(["request_refund", "card_arrival", "request_refund"]) == (
            "request_refund",
            "card_arrival",
        )

    def test_unknown_is_not_a_tag(self) -> None:
        with pytest.raises(InvalidValue) as refusal:
            check_intents(["unknown"])
        assert refusal.value.field == "intents[0]"
