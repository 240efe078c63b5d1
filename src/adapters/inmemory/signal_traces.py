"""Signals' trace contexts in a dict, for processes run on the in-memory ports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.system.trace_context import signal_work_span

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from contextlib import AbstractContextManager
    from uuid import UUID

__all__ = ["InMemorySignalTraces"]


class InMemorySignalTraces:
    """The contexts given, by signal id; the spans as the PostgreSQL adapter starts them."""

    def __init__(self, contexts: Mapping[UUID, str] | None = None) -> None:
        self.contexts = dict(contexts or {})
        self.asked: list[set[UUID]] = []

    async def received_in(self, signal_ids: Collection[UUID]) -> Mapping[UUID, str]:
        self.asked.append(set(signal_ids))
        return {i: self.contexts[i] for i in signal_ids if i in self.contexts}

    def continued(
        self, process: str, trace_context: str | None, signal_id: UUID, customer_id: UUID
    ) -> AbstractContextManager[object]:
        return signal_work_span(process, trace_context, signal_id, customer_id)
