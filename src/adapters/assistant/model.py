"""The intent model: word and character TF-IDF n-grams into a soft vote of a logistic regression
and a calibrated linear SVM."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import joblib
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import VotingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_union
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from adapters.assistant.dataset import ATTRIBUTION
from adapters.assistant.model_spec import DEFAULT_SPEC, ModelSpec

if TYPE_CHECKING:
    from pathlib import Path

    from adapters.assistant.dataset import Examples

__all__ = ["DEFAULT_SPEC", "ModelSpec", "StoredModel", "load_model", "save_model", "train"]

MODEL_FILE = "intent-model.joblib"
METADATA_FILE = "intent-model.json"
_WORDS = r"(?u)\b\w+\b|[?!]"


@dataclass(frozen=True, slots=True)
class StoredModel:
    """A trained pipeline and what it was trained from."""

    pipeline: Pipeline
    metadata: dict[str, Any]


def train(examples: Examples, spec: ModelSpec = DEFAULT_SPEC) -> StoredModel:
    """Fits the pipeline on the examples; deterministic for a given spec and data (one BLAS
    thread: the solver's sums, and so the model, would otherwise depend on the core count)."""
    features = make_union(
        # "?" and "!" are words: "card?" asks, "card!" complains.
        TfidfVectorizer(ngram_range=spec.word_ngrams, sublinear_tf=True, token_pattern=_WORDS),
        TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=spec.char_ngrams,
            min_df=spec.char_min_df,
            sublinear_tf=True,
        ),
    )
    # Probabilities, and so confidences, come from both: the logistic regression's are native,
    # the SVM's are Platt-scaled on out-of-fold decisions (sigmoid; isotonic did worse, ADR 0013).
    classifier = VotingClassifier(
        [
            (
                "logreg",
                LogisticRegression(C=spec.c, max_iter=spec.max_iter, random_state=spec.seed),
            ),
            (
                "svm",
                CalibratedClassifierCV(
                    LinearSVC(C=spec.svm_c, random_state=spec.seed),
                    method="sigmoid",
                    cv=spec.calibration_folds,
                    # One SVM on all the data and one set of calibrators: three of each (the
                    # default) doubled the p99 and did no better in cross-validation.
                    ensemble=False,
                ),
            ),
        ],
        voting="soft",
        weights=[spec.logreg_weight, 1 - spec.logreg_weight],
    )
    pipeline = Pipeline([("features", features), ("classifier", classifier)])
    with threadpool_limits(1):
        pipeline.fit(examples.texts, examples.intents)
    for _, vectorizer in features.transformer_list:
        # The n-grams min_df dropped: kept by scikit-learn only for introspection.
        vectorizer.stop_words_ = None
    metadata = {
        "spec": asdict(spec),
        "train_sha256": examples.sha256,
        "train_examples": len(examples),
        "intents": sorted(set(examples.intents)),
        "scikit_learn": sklearn.__version__,
        "attribution": ATTRIBUTION,
    }
    return StoredModel(pipeline, metadata)


def save_model(model: StoredModel, directory: Path) -> Path:
    """Writes the pipeline and its metadata (with the data's attribution) into the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model.pipeline, directory / MODEL_FILE, compress=3)
    (directory / METADATA_FILE).write_text(json.dumps(model.metadata, indent=2) + "\n")
    return directory / MODEL_FILE


def load_model(directory: Path, *, spec: ModelSpec, train_sha256: str) -> StoredModel | None:
    """The model stored there, or None if absent or built from another spec, data or
    scikit-learn (a pickle is only read back by the version that wrote it)."""
    try:
        metadata = json.loads((directory / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
    if (
        metadata.get("spec") != json.loads(json.dumps(asdict(spec)))
        or metadata.get("train_sha256") != train_sha256
        or metadata.get("scikit_learn") != sklearn.__version__
    ):
        return None
    try:
        pipeline = joblib.load(directory / MODEL_FILE)
    except (OSError, EOFError, ValueError):
        return None
    return StoredModel(pipeline, metadata)
