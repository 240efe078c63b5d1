"""A manual clock's time kept across restarts of the same test."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["InMemoryClockStore"]


class InMemoryClockStore:
    def __init__(self, saved: datetime | None = None) -> None:
        self.saved = saved

    async def load(self) -> datetime | None:
        return self.saved

    async def save(self, now: datetime) -> None:
        self.saved = now

    async def start(self, now: datetime) -> datetime:
        if self.saved is None:
            self.saved = now
        return self.saved
