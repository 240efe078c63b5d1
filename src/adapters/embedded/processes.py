"""Process management shared by the embedded servers: ports, startup, logs and leftovers.

POSIX only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Self

import psutil

from adapters.system.lifetime import ends_with_parent

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import TracebackType

__all__ = [
    "HOST",
    "PortTakenError",
    "ServerProcess",
    "free_port",
    "kill_and_wait",
    "read_log_from",
    "signal_child",
    "signal_processes",
    "tail_lines",
    "wait_gone",
]

HOST = "127.0.0.1"
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 40
_POLL_INTERVAL = 0.05


class PortTakenError(RuntimeError):
    """The port we picked was taken before the server could bind it."""


class ServerProcess(ABC):
    """A server run as our child process on HOST and a TCP port, its output appended to a log."""

    _server_name: ClassVar[str]
    """The server's name in messages, e.g. ``nats-server``."""
    _start_timeout: ClassVar[float]
    """Seconds the server may take from spawn to ready."""
    _shutdown_signal: ClassVar[signal.Signals] = signal.SIGTERM
    """What asks the server to shut down cleanly."""

    def __init__(self, *, port: int | None, with_parent: bool = False) -> None:
        """Remember the requested port (None: pick a free one); nothing runs yet.

        ``with_parent``: the server shuts down when our process dies, even by kill -9 (Linux;
        see adapters.system.lifetime; start it from the main thread).
        """
        self._requested_port = port
        self._with_parent = with_parent
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    @abstractmethod
    def log_path(self) -> Path:
        """Where the server writes its log (appended to across runs)."""

    @property
    def pid(self) -> int | None:
        """The server's process id while we run it, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    @property
    def port(self) -> int:
        """The TCP port of the last start; RuntimeError if never started."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} has not been started")
        return self._port

    @abstractmethod
    def start(self) -> str:
        """Start the server and wait until it is ready; return its address."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the server; idempotent, safe if never started."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @abstractmethod
    def _ready(self, pid: int, port: int) -> bool:
        """Whether the freshly spawned server (``pid``) serves on ``port``."""

    def _is_running(self) -> bool:
        """Whether the server we spawned is still running."""
        return self._process is not None and self._process.poll() is None

    def _start_with_port_retries(self, spawn_and_wait: Callable[[int], None]) -> None:
        """Call ``spawn_and_wait(port)`` on the requested port, or on free ports until one holds."""
        attempts = _PORT_ATTEMPTS if self._requested_port is None else 1
        for attempt in range(1, attempts + 1):
            port = self._requested_port if self._requested_port is not None else free_port()
            try:
                spawn_and_wait(port)
            except PortTakenError:
                if attempt == attempts:
                    raise
                logging.getLogger(type(self).__module__).info(
                    "port %d was taken before %s could bind it; retrying", port, self._server_name
                )
                continue
            break

    def _spawn_and_wait_ready(
        self,
        args: list[str],
        port: int,
        *,
        log_owner: tuple[int, int] | None = None,
        **popen_kwargs: Any,
    ) -> None:
        """Spawn ``args`` in a new session logging to :attr:`log_path`, wait until :meth:`_ready`."""
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            if log_owner is not None:
                os.chown(self.log_path, *log_owner)
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=ends_with_parent(self._shutdown_signal) if self._with_parent else None,
                **popen_kwargs,
            )
        self._process = process
        self._port = port

        deadline = time.monotonic() + self._start_timeout
        while True:
            returncode = process.poll()
            if returncode is not None:
                self._process = None
                output = read_log_from(self.log_path, log_offset)
                if "address already in use" in output.lower() and self._requested_port is None:
                    raise PortTakenError(f"port {port} is taken")
                raise RuntimeError(
                    f"{self._server_name} exited with code {returncode} during startup; "
                    f"end of {self.log_path}:\n{tail_lines(output)}"
                )
            if self._ready(process.pid, port):
                return
            if time.monotonic() > deadline:
                self.stop()
                output = read_log_from(self.log_path, log_offset)
                raise RuntimeError(
                    f"{self._server_name} did not become ready within "
                    f"{self._start_timeout:.0f}s; end of {self.log_path}:\n{tail_lines(output)}"
                )
            time.sleep(_POLL_INTERVAL)


def free_port() -> int:
    """A TCP port on HOST that is free right now (another process may take it before we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def signal_child(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    """Send ``signum`` to our child process, ignoring one that is already gone."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)


def signal_processes(processes: list[psutil.Process], signum: signal.Signals) -> None:
    """Send ``signum`` to each of the processes, ignoring those that are gone."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signum)


def _is_alive(process: psutil.Process) -> bool:
    """Whether the process still runs (a zombie does not)."""
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until the processes exit (zombies count as gone); return those still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if _is_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(_POLL_INTERVAL)
        alive = [p for p in alive if _is_alive(p)]
    return alive


def kill_and_wait(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """SIGKILL the processes and wait; return those still alive after ``timeout``."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return wait_gone(processes, timeout)


def read_log_from(path: Path, offset: int) -> str:
    """The text of ``path`` from byte ``offset`` on; empty if it cannot be read."""
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read().decode(errors="replace")
    except OSError:
        return ""


def tail_lines(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.splitlines()[-lines:])
