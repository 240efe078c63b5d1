"""Commands lose optimistic races now and then; they reload and try again."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, TypeVar

from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["retry_on_conflict"]

T = TypeVar("T")


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]], attempts: int = 30) -> T:
    """Runs `attempt` until it commits without a conflict, backing off with jitter."""
    for tried in range(1, attempts + 1):
        try:
            return await attempt()
        except ConcurrencyConflict:
            if tried == attempts:
                raise
            await asyncio.sleep(random.uniform(0, 0.002 * min(tried, 10)))
    raise AssertionError("unreachable")
