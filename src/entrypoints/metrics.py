"""Prometheus metrics, served at /metrics (see metrics_directory: the service and its worker
process share them)."""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from entrypoints.metrics_directory import MULTIPROCESS_DIRECTORY

__all__ = [
    "DISPATCH_ATTEMPTS",
    "DISPATCH_IN_FLIGHT",
    "DISPATCH_ROUNDS",
    "PROJECTION_EVENTS",
    "PROJECTION_FAILING",
    "PROJECTION_PARKED",
    "PROVIDER_BREAKER_STATE",
    "PROVIDER_SECONDS",
    "RATE_LIMITED",
    "SIGNALS",
    "SIGNAL_BATCH_SECONDS",
    "WEBHOOK_STATUSES",
    "exposition",
]

SIGNALS = Counter(
    "chorus_signals_total",
    "Signals by transport (http, nats, attribution) and outcome (accepted, duplicate, invalid, dead_lettered, refused)",
    ["transport", "outcome"],
)
SIGNAL_BATCH_SECONDS = Histogram(
    "chorus_signal_batch_seconds",
    "Time to validate and commit one batch of signals",
    ["transport"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

DISPATCH_ROUNDS = Counter(
    "chorus_dispatch_rounds_total",
    "Dispatch rounds by channel and outcome (accepted, retry, failed)",
    ["channel", "outcome"],
)
DISPATCH_ATTEMPTS = Counter(
    "chorus_provider_calls_total",
    "Calls to providers by provider and answer (accepted, refused, retryable)",
    ["provider", "answer"],
)
PROVIDER_SECONDS = Histogram(
    "chorus_provider_call_seconds",
    "How long one call to a provider took",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DISPATCH_IN_FLIGHT = Gauge(
    "chorus_dispatch_in_flight",
    "Messages being sent right now, by channel",
    ["channel"],
    multiprocess_mode="livesum",
)
PROVIDER_BREAKER_STATE = Gauge(
    "chorus_provider_breaker_state",
    "Each provider's circuit breaker: 0 closed, 1 half-open (a trial is due or out), 2 open",
    ["provider"],
    multiprocess_mode="livemax",
)
WEBHOOK_STATUSES = Counter(
    "chorus_webhook_statuses_total",
    "Statuses received from providers' webhooks, by provider and status",
    ["provider", "status"],
)

PROJECTION_EVENTS = Counter(
    "chorus_projection_events_total",
    "Events applied by each projection (signal_attribution: signals attributed)",
    ["projection"],
)
PROJECTION_FAILING = Gauge(
    "chorus_projection_failing",
    "1 while a projection's last page failed: it retries, but its read model stands still",
    ["projection"],
    multiprocess_mode="livemax",
)
PROJECTION_PARKED = Gauge(
    "chorus_projection_parked_events",
    "Events a projection could not apply and set aside, not yet retried or skipped",
    ["projection"],
    multiprocess_mode="livemax",
)

RATE_LIMITED = Counter(
    "chorus_rate_limited_total",
    "Requests refused with 429 because their key (or webhook sender) was over its limit, by route class (ingest, send, read, admin)",
    ["route_class"],
)


def exposition() -> bytes:
    """Every metric of this process and, in multiprocess mode, of the processes beside it."""
    if not os.environ.get(MULTIPROCESS_DIRECTORY):
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
