"""Child processes that end with the process that started them, even when it is killed -9.

On Linux the kernel sends the child a signal when its parent dies (``PR_SET_PDEATHSIG``; the
parent is the *thread* that forked, so start such children from a thread that lives as long as
the process, e.g. the main thread). Elsewhere a Python child watches its parent's pid instead;
a server we only exec (PostgreSQL, NATS) has no such fallback there, and the next start on its
data directory stops it instead.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ParentGoneError", "end_with_parent", "ends_with_parent"]

_PR_SET_PDEATHSIG = 1
_WATCH_INTERVAL = 0.5


class ParentGoneError(ChildProcessError):
    """The parent died before the child could ask to follow it."""


def _parent_death_signal() -> Callable[[int], None] | None:
    """Asks the kernel to send this process a signal when its parent dies; None if it cannot."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def set_signal(signum: int) -> None:
        if prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")

    return set_signal


def ends_with_parent(signum: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets ``signum`` when we die (Linux;
    None elsewhere). It runs in the forked child, so it only calls what was looked up here."""
    set_signal = _parent_death_signal()
    if set_signal is None:
        return None
    parent = os.getpid()

    def in_child() -> None:
        set_signal(signum)
        if os.getppid() != parent:  # we died between the fork and the prctl
            raise ParentGoneError

    return in_child


def end_with_parent(parent_pid: int, signum: signal.Signals = signal.SIGTERM) -> None:
    """Called in a Python child: ``signum`` comes to this process once ``parent_pid`` is gone,
    so its own handler for that signal shuts it down as usual."""
    set_signal = _parent_death_signal()
    if set_signal is not None:
        try:
            set_signal(signum)
        except OSError:
            pass
        else:
            if os.getppid() != parent_pid:  # the parent died before we asked
                os.kill(os.getpid(), signum)
            return
    threading.Thread(
        target=_watch, args=(parent_pid, signum), name="parent-watch", daemon=True
    ).start()


def _watch(parent_pid: int, signum: signal.Signals) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_WATCH_INTERVAL)
    os.kill(os.getpid(), signum)
