"""In-process bells: a writer rings after a commit, and the workers listening look at once
instead of waiting for their next poll. Other processes' commits are found by polling."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Bell", "CommitBell", "OutboxBell", "Written"]

Written = frozenset[str] | None
"""The topics a commit wrote; None when the writer does not say, which concerns every reader."""


class Bell:
    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def listen(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def ring(self) -> None:
        for listener in self._listeners:
            listener()


class OutboxBell(Bell):
    """Rung by the customer store after a commit that queued messages: the dispatcher sends."""


class CommitBell:
    """Rung after each commit that appended events, with the topics it wrote: a projector
    reads only when one of them is among those it follows."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[Written], None]] = []

    def listen(self, listener: Callable[[Written], None]) -> None:
        self._listeners.append(listener)

    def ring(self, topics: Written = None) -> None:
        for listener in self._listeners:
            listener(topics)
