"""`CHORUS_CLASSIFIER` picks what classifies inbound messages for routing: the intent model by
default, loaded on first use only (never while the service starts), from `CHORUS_MODEL_DIR`;
the keywords only when chosen, for a light installation."""

from __future__ import annotations

from pathlib import Path

from adapters.assistant.keywords import KeywordClassifier
from entrypoints.ioc import ConversationThreadsProvider
from entrypoints.settings import Settings


class TestClassifierChoice:
    def test_the_model_classifies_by_default_and_is_loaded_on_first_use_only(
        self, tmp_path: Path
    ) -> None:
        settings = Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path)})
        assert settings.classifier == "model"
        chosen = ConversationThreadsProvider().classifier(settings)
        from adapters.assistant.classifier import LazyClassifier  # scikit-learn: seconds

        assert isinstance(chosen, LazyClassifier)
        assert list(tmp_path.iterdir()) == []  # nothing trained nor read yet

    def test_the_keywords_classify_only_when_chosen(self) -> None:
        settings = Settings.from_env({"CHORUS_CLASSIFIER": "keywords"})
        assert isinstance(ConversationThreadsProvider().classifier(settings), KeywordClassifier)


class TestWhereTheModelIsKept:
    def test_beside_the_data_unless_told(self, tmp_path: Path) -> None:
        settings = Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path)})
        assert settings.intent_model_dir == tmp_path / "assistant"

    def test_a_model_directory_of_its_own_is_shared_by_services_on_other_data(
        self, tmp_path: Path
    ) -> None:
        shared = tmp_path / "model"
        one, other = (
            Settings.from_env(
                {"CHORUS_DATA_DIR": str(tmp_path / d), "CHORUS_MODEL_DIR": str(shared)}
            )
            for d in ("one", "other")
        )
        assert one.intent_model_dir == other.intent_model_dir == shared
