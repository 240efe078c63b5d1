"""Closed-loop workers: for a fixed time, or until a shared list of work is done."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

__all__ = ["rate_for", "run_all"]

T = TypeVar("T")


async def rate_for(duration: float, workers: Sequence[Callable[[], Awaitable[None]]]) -> float:
    """Each worker repeats its operation until `duration` is over; returns operations per second."""
    deadline = time.perf_counter() + duration
    counts = [0] * len(workers)

    async def loop(index: int, operation: Callable[[], Awaitable[None]]) -> None:
        while time.perf_counter() < deadline:
            await operation()
            counts[index] += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(i, op) for i, op in enumerate(workers)))
    return sum(counts) / (time.perf_counter() - started)


async def run_all(
    items: Sequence[T], concurrency: int, handle: Callable[[T], Awaitable[int]]
) -> tuple[int, float]:
    """`concurrency` workers share `items` in order; returns (units handled, seconds taken)."""
    pending = list(reversed(items))
    total = 0

    async def worker() -> None:
        nonlocal total
        while pending:
            handled = await handle(pending.pop())
            total += handled  # not `total += await ...`: that reads `total` before awaiting

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total, time.perf_counter() - started
