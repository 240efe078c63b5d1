"""Time comes from here, so tests and replays are deterministic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import datetime, timedelta

__all__ = ["Clock", "ClockStore", "SettableClock"]


class Clock(Protocol):
    """Tells the current time, timezone-aware."""

    def now(self) -> datetime: ...


class SettableClock(Clock, Protocol):
    """A clock that an operator moves by hand; only for tests and demos."""

    def set(self, when: datetime) -> None: ...

    def advance(self, by: timedelta) -> None: ...


class ClockStore(Protocol):
    """Keeps a manual clock's time across restarts."""

    async def load(self) -> datetime | None:
        """The time last saved, None if none was."""
        ...

    async def save(self, now: datetime) -> None: ...

    async def start(self, now: datetime) -> datetime:
        """The time last saved; `now`, saved, if none was, so every process starts alike."""
        ...
