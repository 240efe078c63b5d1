"""The light classifier: the trained intent pipeline, VADER sentiment, the language check."""

from __future__ import annotations

import contextlib
import fcntl
import threading
from typing import TYPE_CHECKING

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from adapters.assistant.dataset import DEFAULT_DATASET_DIR, load_examples
from adapters.assistant.language import looks_english
from adapters.assistant.model_spec import DEFAULT_SPEC
from domain.assistant.classification import (
    UNKNOWN_INTENT,
    Classification,
    UnclassifiableText,
    UnknownReason,
    classifiable_text,
    sentiment_of,
)
from domain.assistant.intents import canonical_intent
from domain.assistant.urgency import urgency

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from adapters.assistant.model import StoredModel
    from adapters.assistant.model_spec import ModelSpec
    from domain.assistant.classification import CustomerContext

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "LazyClassifier",
    "LinearClassifier",
    "model_dir",
    "shared_classifier",
    "trained_or_loaded",
]

# Under this the best intent is a guess: 0.9% of Banking77's test messages fall under it (ADR 13).
DEFAULT_MIN_CONFIDENCE = 0.25


LOCK_FILE = "intent-model.lock"


def model_dir(data_dir: Path) -> Path:
    """Where the model is kept when `CHORUS_MODEL_DIR` does not say: beside the data."""
    return data_dir / "assistant"


class LinearClassifier:
    """Classifies with a trained pipeline; bad input comes back unknown with its reason, and an
    intent comes back as its key (`canonical_intent`), however the dataset spells its label."""

    def __init__(
        self, model: StoredModel, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE
    ) -> None:
        self._pipeline = model.pipeline
        self._intents: list[str] = [canonical_intent(str(c)) for c in model.pipeline.classes_]
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
    """Loads the model from its directory on first use, training it there if absent; every
    classification waits for it (nothing else stands in while it loads)."""

    def __init__(
        self,
        directory: Path,
        dataset_dir: Path = DEFAULT_DATASET_DIR,
        spec: ModelSpec = DEFAULT_SPEC,
    ) -> None:
        self._directory = directory
        self._dataset_dir = dataset_dir
        self._spec = spec

    def classify(self, text: object, context: CustomerContext | None = None) -> Classification:
        return self.loaded().classify(text, context)

    def loaded(self) -> LinearClassifier:
        return shared_classifier(self._directory, self._dataset_dir, self._spec)


_loaded: dict[tuple[Path, Path, ModelSpec], LinearClassifier] = {}
_loading = threading.Lock()


def shared_classifier(
    directory: Path,
    dataset_dir: Path = DEFAULT_DATASET_DIR,
    spec: ModelSpec = DEFAULT_SPEC,
    on_training: Callable[[], None] | None = None,
) -> LinearClassifier:
    """The classifier of the model in `directory`, loaded (or trained) once per process: the
    demo loads it before it serves, and the service's containers find it loaded."""
    key = (directory.resolve(), dataset_dir.resolve(), spec)
    with _loading:
        if key not in _loaded:
            _loaded[key] = LinearClassifier(
                trained_or_loaded(directory, dataset_dir, spec, on_training)
            )
        return _loaded[key]


def trained_or_loaded(
    directory: Path,
    dataset_dir: Path,
    spec: ModelSpec,
    on_training: Callable[[], None] | None = None,
) -> StoredModel:
    """The model stored in the directory, trained from the dataset's train.csv if missing
    (`on_training` is called first). Processes sharing the directory take turns: one trains,
    the others wait and load what it wrote."""
    # Here, not at the top: scikit-learn is imported when a model is first loaded, not when
    # a service that may classify starts.
    from adapters.assistant.model import load_model, save_model, train

    examples = load_examples(dataset_dir / "train.csv")
    with _locked(directory):
        stored = load_model(directory, spec=spec, train_sha256=examples.sha256)
        if stored is not None:
            return stored
        if on_training is not None:
            on_training()
        model = train(examples, spec)
        save_model(model, directory)
        return model


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
