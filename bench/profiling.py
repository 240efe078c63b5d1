"""Optional cProfile of a benchmark (`--profile`): `.prof` files beside the results."""

from __future__ import annotations

import cProfile
import io
import pstats
import runpy
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["profiled", "run_module_profiled", "top"]


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


def run_module_profiled(path: Path, module: str, args: list[str]) -> None:
    """Runs `module` as `python -m module args` would, profiled by the CPU time it uses (not
    the wall clock: a process stopped by SIGSTOP for a while is charged nothing for it), and
    dumps the stats to `path` as it exits."""
    profile = cProfile.Profile(time.process_time)
    sys.argv = [module, *args]
    profile.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        profile.disable()
        profile.dump_stats(path)


if __name__ == "__main__":
    run_module_profiled(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
