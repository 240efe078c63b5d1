"""The demo makes the intent model ready before its messages arrive: it says it trains on the
first run and how long that took, and that it loads the model on the runs after."""

from __future__ import annotations

from typing import TYPE_CHECKING

from entrypoints.intent_model import ready_intent_model
from tests.unit.assistant.test_linear_classifier import SPEC, tiny_dataset

if TYPE_CHECKING:
    from pathlib import Path


class TestTheIntentModelMadeReady:
    def test_the_first_run_says_it_trains_and_how_long_it_took(self, tmp_path: Path) -> None:
        said: list[str] = []
        model = ready_intent_model(tmp_path / "model", said.append, tiny_dataset(tmp_path), SPEC)
        assert said[0].startswith("training the intent model on first run")
        assert said[1].startswith("trained the intent model in ")
        assert said[1].endswith(" s")
        assert model.metadata["intents"] == ["card_arrival", "exchange_rate", "lost_or_stolen_card"]
        assert (tmp_path / "model" / "intent-model.joblib").exists()

    def test_a_later_run_loads_what_the_first_trained(self, tmp_path: Path) -> None:
        dataset = tiny_dataset(tmp_path)
        ready_intent_model(tmp_path / "model", [].append, dataset, SPEC)
        (tmp_path / "again").mkdir()
        (tmp_path / "model").rename(tmp_path / "again" / "model")  # another process's view
        said: list[str] = []
        ready_intent_model(tmp_path / "again" / "model", said.append, dataset, SPEC)
        assert len(said) == 1
        assert said[0].startswith(f"loaded the intent model from {tmp_path / 'again' / 'model'}")
