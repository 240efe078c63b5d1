"""The default intent model trained on the whole of Banking77's train.csv, as `chorus assistant
train` does: about 55 s on one core, so it lives with the slower tests rather than `make unit`."""

from __future__ import annotations

from adapters.assistant.classifier import LinearClassifier
from adapters.assistant.dataset import DEFAULT_DATASET_DIR, load_examples
from adapters.assistant.model import train


class TestTheRealModel:
    def test_it_reaches_ninety_percent_on_a_sample_of_the_test_set(self) -> None:
        classifier = LinearClassifier(train(load_examples(DEFAULT_DATASET_DIR / "train.csv")))
        test = load_examples(DEFAULT_DATASET_DIR / "test.csv")
        sample = list(zip(test.texts, test.intents, strict=True))[::5]
        correct = sum(classifier.intent(text)[0] == intent for text, intent in sample)
        assert correct / len(sample) >= 0.90
