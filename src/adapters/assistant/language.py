"""A cheap check that a message is English, with py3langid (a Naive Bayes over byte n-grams)."""

from __future__ import annotations

import re
from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

__all__ = ["NOT_ENGLISH_PROBABILITY", "looks_english"]

# Below this the identifier is guessing: short English messages ("top up failed") score ~0.5.
NOT_ENGLISH_PROBABILITY = 0.3
_LATIN_LETTER = re.compile("[A-Za-z]")


@cache
def _identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def looks_english(text: str) -> bool:
    """False when the text has no Latin letter, or another language is its likely one."""
    if _LATIN_LETTER.search(text) is None:
        return False
    language, probability = _identifier().classify(text)
    return bool(language == "en" or probability < NOT_ENGLISH_PROBABILITY)
