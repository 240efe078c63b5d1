"""The keyword classifier: the stand-in the conversations issue asks for until a model is chosen.

Intent is the first intent whose words the message holds (as whole words, any case); sentiment
counts negative and positive words, a negation flipping the word after it. Instant, and the
same answer every time, so tests and a fresh installation route without training anything.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from domain.assistant.classification import (
    UNKNOWN_INTENT,
    Classification,
    UnclassifiableText,
    UnknownReason,
    classifiable_text,
    sentiment_of,
)
from domain.assistant.urgency import urgency

if TYPE_CHECKING:
    from collections.abc import Mapping

    from domain.assistant.classification import CustomerContext

__all__ = ["INTENT_WORDS", "KeywordClassifier"]

INTENT_WORDS: Mapping[str, frozenset[str]] = {
    "refund": frozenset({"refund", "money back", "reimburse", "chargeback"}),
    "cancel": frozenset({"cancel", "cancellation", "unsubscribe me", "close my account"}),
    "billing": frozenset({"invoice", "bill", "billing", "charged", "charge", "payment", "price"}),
    "delivery": frozenset({"delivery", "shipping", "shipped", "parcel", "package", "tracking"}),
    "account": frozenset({"password", "login", "log in", "sign in", "account", "locked out"}),
    "complaint": frozenset({"complaint", "complain", "unacceptable", "disgrace"}),
}
"""Each intent and the words that say it, tried in this order."""

_NEGATIVE = frozenset(
    {
        "angry",
        "awful",
        "bad",
        "broken",
        "disappointed",
        "furious",
        "hate",
        "horrible",
        "never",
        "poor",
        "terrible",
        "unacceptable",
        "upset",
        "useless",
        "worst",
        "wrong",
    }
)
_POSITIVE = frozenset(
    {"amazing", "love", "great", "excellent", "good", "happy", "thanks", "thank", "perfect"}
)
_NEGATIONS = frozenset({"not", "no", "don't", "didn't", "isn't", "wasn't", "never"})
_WORD = re.compile(r"[a-z']+")
_PATTERNS = {
    intent: re.compile(r"\b(" + "|".join(sorted(map(re.escape, words))) + r")\b")
    for intent, words in INTENT_WORDS.items()
}


class KeywordClassifier:
    """Intent by keyword lists, sentiment by word counts; never raises on bad input."""

    def classify(self, text: object, context: CustomerContext | None = None) -> Classification:
        try:
            message = classifiable_text(text).lower()
        except UnclassifiableText as refused:
            return _classified(UNKNOWN_INTENT, 0.0, 0.0, context, refused.reason)
        score = _sentiment(message)
        for intent, pattern in _PATTERNS.items():
            if pattern.search(message):
                return _classified(intent, 1.0, score, context)
        return _classified(UNKNOWN_INTENT, 0.0, score, context, UnknownReason.LOW_CONFIDENCE)


def _sentiment(message: str) -> float:
    """From -1 (all negative words) to 1, as a compound score."""
    words = _WORD.findall(message)
    total = 0
    for before, word in zip(["", *words], words, strict=False):
        sign = 1 if word in _POSITIVE else -1 if word in _NEGATIVE else 0
        if sign and before in _NEGATIONS and word != "never":
            sign = -sign
        total += sign
    return max(-1.0, min(1.0, total / 2))


def _classified(
    intent: str,
    confidence: float,
    score: float,
    context: CustomerContext | None,
    unknown: UnknownReason | None = None,
) -> Classification:
    return Classification(
        intent=intent,
        confidence=confidence,
        sentiment=sentiment_of(score),
        sentiment_score=score,
        urgency=urgency(intent, score, context),
        unknown_reason=unknown,
    )
