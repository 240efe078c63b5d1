from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from adapters.assistant.classifier import (
    LazyClassifier,
    LinearClassifier,
    model_dir,
    trained_or_loaded,
)
from adapters.assistant.dataset import ATTRIBUTION, Examples
from adapters.assistant.model import ModelSpec, load_model, save_model, train
from domain.assistant.classification import (
    MAX_TEXT_CHARS,
    UNKNOWN_INTENT,
    CustomerContext,
    Sentiment,
    UnknownReason,
    Urgency,
)

if TYPE_CHECKING:
    from pathlib import Path

TINY = {
    "lost_or_stolen_card": [
        "I lost my card", "my card was stolen", "someone stole my card yesterday",
        "I can't find my card anywhere", "my wallet with my card was stolen",
        "I think I lost my bank card", "card stolen, please block it", "lost card",
    ],
    "card_arrival": [
        "when will my card arrive", "my new card has not arrived yet", "where is my card",
        "still waiting for my card to be delivered", "how long until the card arrives",
        "the card you sent never came", "card delivery is taking too long", "has my card shipped",
    ],
    "exchange_rate": [
        "what is the exchange rate", "how much is a dollar in euros", "what rate do you use",
        "exchange rate for pounds", "how do you calculate the exchange rate",
        "is the exchange rate fixed", "currency conversion rate", "rate for converting money",
    ],
}  # fmt: skip
SPEC = ModelSpec(name="tiny", c=10.0)


def tiny_examples() -> Examples:
    texts = [text for examples in TINY.values() for text in examples]
    intents = [intent for intent, examples in TINY.items() for _ in examples]
    return Examples(texts, intents, sha256="tiny")


def tiny_dataset(folder: Path) -> Path:
    """The tiny examples as a dataset directory's train.csv."""
    dataset = folder / "dataset"
    dataset.mkdir()
    with (dataset / "train.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "category"])
        writer.writerows(zip(tiny_examples().texts, tiny_examples().intents, strict=True))
    return dataset


@pytest.fixture(scope="module")
def classifier() -> LinearClassifier:
    return LinearClassifier(train(tiny_examples(), SPEC), min_confidence=0.6)


class TestTheModelLearns:
    @pytest.mark.parametrize(
        ("text", "intent"),
        [("Help, my card got stolen!", "lost_or_stolen_card"),
         ("My card still hasn't arrived", "card_arrival"),
         ("What exchange rate will I get?", "exchange_rate")],
    )  # fmt: skip
    def test_an_unseen_message_gets_its_intent_with_a_confidence(
        self, classifier: LinearClassifier, text: str, intent: str
    ) -> None:
        result = classifier.classify(text)
        assert result.known
        assert result.intent == intent
        assert 0.6 <= result.confidence <= 1.0

    def test_sentiment_comes_with_its_score(self, classifier: LinearClassifier) -> None:
        angry = classifier.classify("This is terrible, my card was stolen and you are useless")
        assert angry.sentiment is Sentiment.NEGATIVE
        assert angry.sentiment_score <= -0.5

    def test_urgency_reads_the_intent_the_tone_and_the_customer(
        self, classifier: LinearClassifier
    ) -> None:
        calm = classifier.classify("what is the exchange rate")
        vip = classifier.classify("what is the exchange rate", CustomerContext(tier="vip"))
        assert (calm.urgency, vip.urgency) == (Urgency.LOW, Urgency.NORMAL)

    def test_the_metadata_carries_the_datas_attribution(self) -> None:
        assert train(tiny_examples(), SPEC).metadata["attribution"] == ATTRIBUTION
        assert "CC BY 4.0" in ATTRIBUTION


class TestBadInputIsUnknownWithItsReason:
    @pytest.mark.parametrize(
        ("value", "reason"),
        [("", UnknownReason.EMPTY), ("  ", UnknownReason.EMPTY), (None, UnknownReason.NOT_TEXT),
         (b"lost card", UnknownReason.NOT_TEXT), (12, UnknownReason.NOT_TEXT),
         ("lost card " * MAX_TEXT_CHARS, UnknownReason.TOO_LONG)],
    )  # fmt: skip
    def test_it_never_raises(
        self, classifier: LinearClassifier, value: object, reason: UnknownReason
    ) -> None:
        result = classifier.classify(value)
        assert (result.intent, result.unknown_reason) == (UNKNOWN_INTENT, reason)
        assert result.urgency is Urgency.NORMAL

    @pytest.mark.parametrize(
        "text",
        ["¿Dónde está mi tarjeta? La pedí hace dos semanas.",
         "Wo ist meine Karte? Ich habe sie vor zwei Wochen bestellt.",
         "Ma carte a été volée hier soir", "我的卡丢了", "Моя карта не работает"],
    )  # fmt: skip
    def test_another_language_is_never_forced_into_an_intent(
        self, classifier: LinearClassifier, text: str
    ) -> None:
        result = classifier.classify(text)
        assert (result.intent, result.unknown_reason) == (UNKNOWN_INTENT, UnknownReason.NOT_ENGLISH)

    def test_a_message_like_no_example_is_unknown_for_low_confidence(
        self, classifier: LinearClassifier
    ) -> None:
        result = classifier.classify("hello")
        assert (result.intent, result.unknown_reason) == (
            UNKNOWN_INTENT,
            UnknownReason.LOW_CONFIDENCE,
        )
        assert result.confidence < 0.6


class TestTheArtefact:
    def test_a_saved_model_loads_back_and_predicts_the_same(self, tmp_path: Path) -> None:
        model = train(tiny_examples(), SPEC)
        save_model(model, tmp_path)
        loaded = load_model(tmp_path, spec=SPEC, train_sha256="tiny")
        assert loaded is not None
        text = ["my card has not come"]
        assert loaded.pipeline.predict_proba(text).tolist() == (
            model.pipeline.predict_proba(text).tolist()
        )

    def test_a_model_from_other_data_or_another_spec_is_not_loaded(self, tmp_path: Path) -> None:
        save_model(train(tiny_examples(), SPEC), tmp_path)
        assert load_model(tmp_path, spec=SPEC, train_sha256="other") is None
        assert load_model(tmp_path, spec=ModelSpec(name="other"), train_sha256="tiny") is None
        assert load_model(tmp_path / "absent", spec=SPEC, train_sha256="tiny") is None

    def test_the_service_trains_on_first_use_then_loads(self, tmp_path: Path) -> None:
        dataset = tiny_dataset(tmp_path)
        directory = model_dir(tmp_path / "data")
        first = LazyClassifier(directory, dataset, SPEC)
        assert not directory.exists()
        assert first.classify("my card was stolen").intent == "lost_or_stolen_card"
        written = (directory / "intent-model.joblib").stat().st_mtime_ns
        again = LazyClassifier(directory, dataset, SPEC)
        assert again.classify("when does my card arrive").intent == "card_arrival"
        assert (directory / "intent-model.joblib").stat().st_mtime_ns == written

    def test_services_sharing_a_directory_train_it_once(self, tmp_path: Path) -> None:
        dataset = tiny_dataset(tmp_path)
        trainings: list[int] = []
        with ThreadPoolExecutor(4) as pool:
            models = list(
                pool.map(
                    lambda n: trained_or_loaded(
                        tmp_path / "shared", dataset, SPEC, lambda: trainings.append(n)
                    ),
                    range(4),
                )
            )
        assert len(trainings) == 1
        assert {tuple(m.metadata["intents"]) for m in models} == {tuple(sorted(TINY))}


class TestIntentsComeBackByTheirKeys:
    def test_the_datasets_other_spellings_are_read_as_keys(self) -> None:
        # Labelled as Banking77 spells two of its intents: a capital, a question mark.
        examples = Examples(
            [*TINY["lost_or_stolen_card"], *TINY["card_arrival"]],
            ["reverted_card_payment?"] * 8 + ["Refund_not_showing_up"] * 8,
            sha256="spelled",
        )
        classifier = LinearClassifier(train(examples, SPEC), min_confidence=0.3)
        assert classifier.classify("my card was stolen").intent == "reverted_card_payment"
        assert classifier.classify("the card you sent never came").intent == (
            "refund_not_showing_up"
        )


ANGRY = [
    "This is ridiculous, I have been waiting two weeks for my card!",
    "Your app is useless and I am furious", "Worst bank ever, you charged me twice",
    "I am really angry that my transfer failed again", "Terrible service, nobody answers me",
    "I hate this, my card got declined in front of everyone",
    "Why the hell is my money not there yet?", "This is unacceptable, fix it now",
    "I'm so frustrated, the top up keeps failing", "Awful experience, I want to close my account",
]  # fmt: skip
PLEASED = [
    "Thanks a lot, the card arrived and works great!", "Great app, I love the exchange feature",
    "Thank you for the quick refund, much appreciated", "Everything works perfectly now, thanks",
    "You guys are awesome, problem solved", "Happy with the service, just wanted to say thanks",
    "The new card is lovely, thank you", "Brilliant, the transfer went through",
    "Excellent support, thank you so much", "Good job on the new update",
]  # fmt: skip


class TestSentimentTellsAnAngryCustomerFromAPleasedOne:
    @pytest.mark.parametrize("text", ANGRY)
    def test_an_angry_message_is_negative(self, classifier: LinearClassifier, text: str) -> None:
        assert classifier.classify(text).sentiment is Sentiment.NEGATIVE

    @pytest.mark.parametrize("text", PLEASED)
    def test_a_pleased_message_is_positive(self, classifier: LinearClassifier, text: str) -> None:
        assert classifier.classify(text).sentiment is Sentiment.POSITIVE
