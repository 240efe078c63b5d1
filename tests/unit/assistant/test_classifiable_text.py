from __future__ import annotations

import pytest

from domain.assistant.classification import (
    MAX_TEXT_CHARS,
    Sentiment,
    UnclassifiableText,
    UnknownReason,
    classifiable_text,
    sentiment_of,
)


class TestTheEdgeRefusesWhatItCannotRead:
    @pytest.mark.parametrize("value", [None, 42, b"my card", ["my card"]])
    def test_anything_but_text_is_refused_as_not_text(self, value: object) -> None:
        with pytest.raises(UnclassifiableText) as refused:
            classifiable_text(value)
        assert refused.value.reason is UnknownReason.NOT_TEXT

    @pytest.mark.parametrize("value", ["", "   \n\t "])
    def test_blank_text_is_refused_as_empty(self, value: str) -> None:
        with pytest.raises(UnclassifiableText) as refused:
            classifiable_text(value)
        assert refused.value.reason is UnknownReason.EMPTY

    def test_text_over_ten_thousand_characters_is_refused_naming_its_length(self) -> None:
        with pytest.raises(UnclassifiableText, match="10001 characters") as refused:
            classifiable_text("a" * (MAX_TEXT_CHARS + 1))
        assert refused.value.reason is UnknownReason.TOO_LONG

    def test_text_at_the_limit_is_read_stripped(self) -> None:
        assert classifiable_text(" " + "a" * (MAX_TEXT_CHARS - 1)) == "a" * (MAX_TEXT_CHARS - 1)


class TestSentimentOfAScore:
    @pytest.mark.parametrize(
        ("score", "sentiment"),
        [(-0.8, Sentiment.NEGATIVE), (-0.05, Sentiment.NEGATIVE), (0.0, Sentiment.NEUTRAL),
         (0.05, Sentiment.POSITIVE), (0.9, Sentiment.POSITIVE)],
    )  # fmt: skip
    def test_vaders_cut_offs(self, score: float, sentiment: Sentiment) -> None:
        assert sentiment_of(score) is sentiment
