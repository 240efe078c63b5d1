"""The intent model made ready before anything is classified: trained on the first run (about a
minute on one core), found in its directory afterwards, saying which and how long it took.

The model is read and let go: the process that classifies (the projection worker) loads it
from the directory on its first message, in a second or two."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from adapters.assistant.model import ModelSpec, StoredModel

__all__ = ["ready_intent_model"]


def ready_intent_model(
    directory: Path,
    say: Callable[[str], None],
    dataset_dir: Path | None = None,
    spec: ModelSpec | None = None,
) -> StoredModel:
    """The model in `directory`, trained there first if missing (from the shipped Banking77
    and the default spec unless told)."""
    # Imported here: scikit-learn costs a process seconds to import.
    from adapters.assistant.classifier import trained_or_loaded
    from adapters.assistant.dataset import DEFAULT_DATASET_DIR
    from adapters.assistant.model import DEFAULT_SPEC

    started = time.monotonic()
    trained = False

    def training() -> None:
        nonlocal trained
        trained = True
        say(
            "training the intent model on first run (about a minute on one core; "
            f"later starts load it from {directory}) ..."
        )

    model = trained_or_loaded(
        directory, dataset_dir or DEFAULT_DATASET_DIR, spec or DEFAULT_SPEC, training
    )
    spent = time.monotonic() - started
    if trained:
        say(f"trained the intent model in {spent:.0f} s")
    else:
        say(f"loaded the intent model from {directory} in {spent:.1f} s")
    return model
