"""The event loop Chorus runs on: uvloop where it is installed, asyncio's own otherwise."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory: its loop spends less CPU on every socket read and write than
    asyncio's own, and a service's time goes mostly to HTTP, NATS and PostgreSQL I/O."""
    try:
        import uvloop
    except ImportError:  # e.g. on Windows, which uvloop does not support
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Runs `main` to completion on a new event loop, as `asyncio.run` does."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
