"""The intent model's hyperparameters, apart from the model: naming a spec imports no
scikit-learn, which costs a process seconds (a service imports it when it first classifies)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_SPEC", "ModelSpec"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The model's hyperparameters; the same spec on the same data gives the same model."""

    name: str = "tfidf-word13-char25-logreg-svm"
    word_ngrams: tuple[int, int] = (1, 3)
    char_ngrams: tuple[int, int] = (2, 5)
    char_min_df: int = 2
    c: float = 100.0
    svm_c: float = 1.0
    # The logistic regression's share of the soft vote; the calibrated SVM has the rest.
    logreg_weight: float = 0.8
    calibration_folds: int = 3
    max_iter: int = 3000
    seed: int = 0


DEFAULT_SPEC = ModelSpec()
