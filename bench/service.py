"""`chorus serve` as a subprocess on a free port, with its own database and NATS streams."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["ChorusService", "ProjectionWorker", "tail"]

ROOT = Path(__file__).resolve().parents[1]
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# The limits stay on, so that their cost is measured, but no benchmark reaches them.
UNREACHABLE_RATE_LIMITS = {
    f"CHORUS_RATE_LIMIT_{kind}{part}": "1000000000"
    for kind in ("INGEST", "SEND", "READ", "ADMIN")
    for part in ("", "_BURST")
}


class ChorusService:
    """Runs `python -m entrypoints.cli serve`; its log goes to `log_path`.

    `settings` are more `CHORUS_*` environment variables, e.g. the signal stream's name.
    """

    def __init__(
        self,
        database_url: str,
        nats_url: str,
        log_path: Path,
        settings: dict[str, str] | None = None,
        *,
        profile_path: Path | None = None,
    ) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        python_path = [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "NATS_URL": nats_url,
            "CHORUS_PORT": str(self.port),
            "PYTHONPATH": os.pathsep.join(p for p in python_path if p),
            **UNREACHABLE_RATE_LIMITS,
            **(settings or {}),
        }
        self.profile_path = profile_path
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", *args],
            env=self.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"chorus {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
        return done.stdout.decode().strip()

    def create_admin_key(self) -> str:
        return self.cli("keys", "create", "--role", "admin", "--name", "bench")

    def log_tail(self, chars: int = 3000) -> str:
        return tail(self.log_path, chars)

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            profiler = ["-m", "cProfile", "-o", str(self.profile_path)] if self.profile_path else []
            return subprocess.Popen(
                [sys.executable, *profiler, "-m", "entrypoints.cli", "serve"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def start(self) -> None:
        """Starts the service and waits until `/ready` answers 200."""
        self.process = self._spawn()
        deadline = time.monotonic() + _START_TIMEOUT
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"chorus serve exited:\n{self.log_tail()}")
                try:
                    if (await client.get("/ready")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"chorus serve was not ready in {_START_TIMEOUT:.0f}s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        _stop(process, signal.SIGINT)

    async def __aenter__(self) -> ChorusService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ProjectionWorker:
    """`chorus projections run` beside a service started with CHORUS_PROJECTIONS=false: the
    projection worker as deployed apart from the API. `paused()` stops it (SIGSTOP) while the
    ingest tier is measured alone, standing in for the other cores it would have."""

    def __init__(
        self, service: ChorusService, log_path: Path, *, profile_path: Path | None = None
    ) -> None:
        self.service = service
        self.log_path = log_path
        self.profile_path = profile_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            # By CPU time: the worker is stopped while signals go in (`pause`).
            command = ["-m", "entrypoints.cli", "projections", "run"]
            if self.profile_path is not None:
                command = ["-m", "bench.profiling", str(self.profile_path), *command[1:]]
            self.process = subprocess.Popen(
                [sys.executable, *command],
                env=self.service.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def pause(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.send_signal(signal.SIGCONT)
        _stop(process, signal.SIGTERM)

    def cpu_seconds(self) -> float | None:
        """The CPU time the worker has used (user and system), where /proc tells it."""
        if self.process is None:
            return None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        # utime and stime, the 14th and 15th fields, counted from the one after the name
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log file, or nothing if it is not there."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _stop(process: subprocess.Popen[bytes] | None, signum: signal.Signals) -> None:
    """Asks the process to stop, and kills it if it has not after _STOP_TIMEOUT."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
