from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.assistant.keywords import INTENT_WORDS
from domain.assistant.intents import BANKING77_INTENTS, INTENTS, KEYWORD_INTENTS, check_intents
from domain.shared.errors import InvalidValue

CATEGORIES = Path(__file__).parents[3] / "data" / "banking77" / "categories.json"


class TestTheIntentsTemplatesMayBeTaggedWith:
    def test_the_models_are_the_77_of_the_shipped_data(self) -> None:
        assert frozenset(json.loads(CATEGORIES.read_text())) == BANKING77_INTENTS
        assert len(BANKING77_INTENTS) == 77

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
