"""Parked statuses applied by the scheduler, each in a span of its message's story."""

from __future__ import annotations

from typing import TYPE_CHECKING

from entrypoints.tracing import status_span

if TYPE_CHECKING:
    from application.delivery.webhooks import ApplyParkedStatuses

__all__ = ["TracedParkedStatuses"]


class TracedParkedStatuses:
    """A status that overtook its message is applied once the message is recorded; its span
    says so (`chorus.parked`) with the message's correlation id, as a webhook's would."""

    def __init__(self, apply: ApplyParkedStatuses) -> None:
        self.apply = apply

    async def __call__(self, limit: int = 100) -> int:
        applied = await self.apply.apply(limit)
        for provider, item in applied:
            with status_span(
                item.status, item.correlation_id, item.message_id, provider, item.recorded
            ) as span:
                span.set_attribute("chorus.parked", True)
        return len(applied)
