"""The light classifier: the trained intent pipeline, VADER sentiment, the language check."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from adapters.assistant.dataset import DEFAULT_DATASET_DIR, load_examples
from adapters.assistant.language import looks_english
from adapters.assistant.model import DEFAULT_SPEC, load_model, save_model, train
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
    from pathlib import Path

    from adapters.assistant.model import ModelSpec, StoredModel
    from domain.assistant.classification import CustomerContext

__all__ = ["DEFAULT_MIN_CONFIDENCE", "LazyClassifier", "LinearClassifier", "model_dir"]

# Under this the best intent is a guess: 0.9% of Banking77's test messages fall under it (ADR 13).
DEFAULT_MIN_CONFIDENCE = 0.25


def model_dir(data_dir: Path) -> Path:
    return data_dir / "assistant"


class LinearClassifier:
    """Classifies with a trained pipeline; bad input comes back unknown with its reason."""

    def __init__(
        self, model: StoredModel, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE
    ) -> None:
        self._pipeline = model.pipeline
        self._intents: list[str] = [str(c) for c in model.pipeline.classes_]
        self._min_confidence = min_confidence
        self._sentiment = SentimentIntensityAnalyzer()
        self.metadata = model.metadata

    def intent(self, text: str) -> tuple[str, float]:
        """The most likely intent and its probability, with no threshold or language check."""
        probabilities = self._pipeline.predict_proba([text])[0]
        best = int(np.argmax(probabilities))
        return self._intents[best], float(probabilities[best])

    def classify(self, text: object, context: CustomerContext | None = None) -> Classification:
        try:
            message = classifiable_text(text)
        except UnclassifiableText as refused:
            return _unknown(refused.reason, 0.0, 0.0, context)
        score = float(self._sentiment.polarity_scores(message)["compound"])
        if not looks_english(message):
            return _unknown(UnknownReason.NOT_ENGLISH, 0.0, score, context)
        intent, confidence = self.intent(message)
        if confidence < self._min_confidence:
            return _unknown(UnknownReason.LOW_CONFIDENCE, confidence, score, context)
        return Classification(
            intent=intent,
            confidence=confidence,
            sentiment=sentiment_of(score),
            sentiment_score=score,
            urgency=urgency(intent, score, context),
        )


def _unknown(
    reason: UnknownReason, confidence: float, score: float, context: CustomerContext | None
) -> Classification:
    return Classification(
        intent=UNKNOWN_INTENT,
        confidence=confidence,
        sentiment=sentiment_of(score),
        sentiment_score=score,
        urgency=urgency(UNKNOWN_INTENT, score, context),
        unknown_reason=reason,
    )


class LazyClassifier:
    """Loads the model from the data directory on first use, training it there if absent."""

    def __init__(
        self,
        data_dir: Path,
        dataset_dir: Path = DEFAULT_DATASET_DIR,
        spec: ModelSpec = DEFAULT_SPEC,
    ) -> None:
        self._data_dir = data_dir
        self._dataset_dir = dataset_dir
        self._spec = spec
        self._loaded: LinearClassifier | None = None
        self._lock = threading.Lock()

    def classify(self, text: object, context: CustomerContext | None = None) -> Classification:
        return self.loaded().classify(text, context)

    def loaded(self) -> LinearClassifier:
        with self._lock:
            if self._loaded is None:
                self._loaded = LinearClassifier(
                    trained_or_loaded(model_dir(self._data_dir), self._dataset_dir, self._spec)
                )
            return self._loaded


def trained_or_loaded(directory: Path, dataset_dir: Path, spec: ModelSpec) -> StoredModel:
    """The model stored in the directory, trained from the dataset's train.csv if missing."""
    examples = load_examples(dataset_dir / "train.csv")
    stored = load_model(directory, spec=spec, train_sha256=examples.sha256)
    if stored is not None:
        return stored
    model = train(examples, spec)
    save_model(model, directory)
    return model
