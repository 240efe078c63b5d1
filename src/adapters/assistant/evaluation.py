"""Held-out figures of a classifier: accuracy, macro-F1, latency per message, memory."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import psutil
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from domain.assistant.intents import canonical_intent

if TYPE_CHECKING:
    from adapters.assistant.classifier import LinearClassifier
    from adapters.assistant.dataset import Examples

__all__ = ["Figures", "evaluate", "one_core"]


@dataclass(frozen=True, slots=True)
class Figures:
    """What `chorus assistant evaluate` prints and the benchmark records."""

    messages: int
    accuracy: float
    macro_f1: float
    unknown_share: float
    accuracy_when_known: float
    p50_ms: float
    p99_ms: float
    messages_per_s: float
    rss_mb: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def one_core() -> None:
    """Pins this process to the CPU it runs on and one BLAS thread, so latency is per core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {psutil.Process().cpu_num()})
    threadpool_limits(1)


def evaluate(classifier: LinearClassifier, test: Examples) -> Figures:
    """Accuracy and macro-F1 of the raw intents; latency of the whole classify() per message.
    The test set's labels are compared as the classifier names intents, by their keys."""
    truths = [canonical_intent(intent) for intent in test.intents]
    predicted = [classifier.intent(text)[0] for text in test.texts]
    latencies: list[float] = []
    known = correct_known = 0
    for text, truth in zip(test.texts, truths, strict=True):
        started = time.perf_counter()
        result = classifier.classify(text)
        latencies.append((time.perf_counter() - started) * 1000)
        if result.known:
            known += 1
            correct_known += result.intent == truth
    spent = np.asarray(latencies)
    return Figures(
        messages=len(test),
        accuracy=round(float(accuracy_score(truths, predicted)), 4),
        macro_f1=round(float(f1_score(truths, predicted, average="macro")), 4),
        unknown_share=round(1 - known / len(test), 4),
        accuracy_when_known=round(correct_known / known, 4) if known else 0.0,
        p50_ms=round(float(np.percentile(spent, 50)), 3),
        p99_ms=round(float(np.percentile(spent, 99)), 3),
        messages_per_s=round(1000 / float(spent.mean()), 1),
        rss_mb=round(psutil.Process().memory_info().rss / 2**20, 1),
    )
