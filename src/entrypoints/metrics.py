"""Prometheus metrics, served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["SIGNALS", "SIGNAL_BATCH_SECONDS"]

SIGNALS = Counter(
    "chorus_signals_total",
    "Signals received, by transport and outcome (recorded, duplicate, invalid, dead_lettered)",
    ["transport", "outcome"],
)
SIGNAL_BATCH_SECONDS = Histogram(
    "chorus_signal_batch_seconds",
    "Time to validate and commit one batch of signals",
    ["transport"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
