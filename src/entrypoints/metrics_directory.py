"""Where the service and its projection worker keep their metrics, so one /metrics shows both.

prometheus_client's multiprocess mode: each process writes its samples to files in a shared
directory, and `/metrics` reads them all. It must be chosen before prometheus_client is first
imported (`entrypoints.metrics` imports it), so the `chorus` command calls `share_metrics()`
first thing.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["MULTIPROCESS_DIRECTORY", "forget_process", "share_metrics"]

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "chorus-metrics-"  # then the pid of the process that made it


def share_metrics() -> None:
    """Gives this process and its children a metrics directory of their own (removed at exit),
    unless the environment names one (which its owner then empties before each start)."""
    if os.environ.get(MULTIPROCESS_DIRECTORY):
        return
    _remove_orphans()
    directory = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
    os.environ[MULTIPROCESS_DIRECTORY] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)


def _remove_orphans() -> None:
    """Removes the directories of earlier runs that were killed before they could."""
    for path in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*-*"):
        pid = path.name.removeprefix(_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


def forget_process(pid: int) -> None:
    """Drops the live gauges of a process that is gone (its counters stay counted)."""
    if os.environ.get(MULTIPROCESS_DIRECTORY):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
