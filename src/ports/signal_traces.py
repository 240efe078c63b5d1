"""The trace each signal was received in, for the work it causes later to continue it.

Opaque to the application (ADR 0020): a process asks for the stored contexts of the signals of
its page that may cause work, and does each one's work inside `continued`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from contextlib import AbstractContextManager
    from uuid import UUID

__all__ = ["SignalTraces"]


class SignalTraces(Protocol):
    """Where a signal's trace context is kept between its intake and the processes after it."""

    async def received_in(self, signal_ids: Collection[UUID]) -> Mapping[UUID, str]:
        """The stored trace context of each of these signals that has one."""
        ...

    def continued(
        self, process: str, trace_context: str | None, signal_id: UUID, customer_id: UUID
    ) -> AbstractContextManager[object]:
        """The block in which `process` does one signal's work, in that signal's trace (as
        is, without a context)."""
        ...
