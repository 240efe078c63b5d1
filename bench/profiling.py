"""Optional cProfile of a benchmark (`--profile`): `.prof` files beside the results."""

from __future__ import annotations

import cProfile
import io
import pstats
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["profiled", "top"]


@contextmanager
def profiled(path: Path | None) -> Iterator[None]:
    """Profiles this process while inside, when `path` is given, and dumps the stats there."""
    if path is None:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)


def top(path: Path, count: int = 25, sort: str = "tottime") -> str:
    """The `count` costliest functions of a `.prof` file."""
    out = io.StringIO()
    pstats.Stats(str(path), stream=out).strip_dirs().sort_stats(sort).print_stats(count)
    return out.getvalue()
