"""The default intent model trained on the whole of Banking77's train.csv, as `chorus assistant
train` does: about 55 s on one core, so it lives with the slower tests rather than `make unit`.
It is the one model every service of the suites uses (`TEST_MODEL_DIR`): trained once per
machine by whichever asks first, loaded by the others."""

from __future__ import annotations

from adapters.assistant.classifier import LinearClassifier, trained_or_loaded
from adapters.assistant.dataset import DEFAULT_DATASET_DIR, load_examples
from adapters.assistant.model import DEFAULT_SPEC
from tests.e2e.service import TEST_MODEL_DIR


class TestTheRealModel:
    def test_it_reaches_ninety_percent_on_a_sample_of_the_test_set(self) -> None:
        model = trained_or_loaded(TEST_MODEL_DIR, DEFAULT_DATASET_DIR, DEFAULT_SPEC)
        classifier = LinearClassifier(model)
        test = load_examples(DEFAULT_DATASET_DIR / "test.csv")
        sample = list(zip(test.texts, test.intents, strict=True))[::5]
        correct = sum(classifier.intent(text)[0] == intent for text, intent in sample)
        assert correct / len(sample) >= 0.90
