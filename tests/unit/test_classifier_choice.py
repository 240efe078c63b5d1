"""`CHORUS_CLASSIFIER` picks what classifies inbound messages for routing; the model is only
ever loaded on first use, never while the service starts."""

from __future__ import annotations

from pathlib import Path

from adapters.assistant.keywords import KeywordClassifier
from entrypoints.ioc import ConversationThreadsProvider
from entrypoints.settings import Settings


class TestClassifierChoice:
    def test_the_keywords_stand_in_by_default(self) -> None:
        assert Settings.from_env({}).classifier == "keywords"
        chosen = ConversationThreadsProvider().classifier(Settings())
        assert isinstance(chosen, KeywordClassifier)

    def test_the_model_is_chosen_by_name_and_loaded_on_first_use_only(self, tmp_path: Path) -> None:
        settings = Settings.from_env(
            {"CHORUS_CLASSIFIER": "model", "CHORUS_DATA_DIR": str(tmp_path)}
        )
        chosen = ConversationThreadsProvider().classifier(settings)
        from adapters.assistant.classifier import LazyClassifier  # scikit-learn: seconds

        assert isinstance(chosen, LazyClassifier)
        assert list(tmp_path.iterdir()) == []  # nothing trained nor read yet
