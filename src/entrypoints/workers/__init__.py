"""Background workers: consumers that feed the application from NATS JetStream."""

from __future__ import annotations

from entrypoints.workers.signal_consumer import SignalConsumer, ensure_signal_stream

__all__ = ["SignalConsumer", "ensure_signal_stream"]
