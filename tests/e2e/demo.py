"""Runs `chorus demo` as a real process, on its own embedded servers, as a new user would."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from tests.e2e.service import ROOT, TEST_MODEL_DIR, free_port, prepared_model_dir, uses_model
from tests.servers import scratch_dir

__all__ = ["DemoProcess"]

# The demo starts its own PostgreSQL and NATS unless these point elsewhere.
_SERVER_VARIABLES = ("DATABASE_URL", "NATS_URL", "CHORUS_PROVIDERS", "CHORUS_ADMIN_KEY")
START_TIMEOUT = 180


class DemoProcess:
    """`chorus demo` on a free port with a data directory of its own, its output in a log."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        # Under /tmp or /dev/shm: when we are root, PostgreSQL's user must traverse every
        # parent directory.
        self.data_dir = Path(tempfile.mkdtemp(prefix="chorus-demo-", dir=scratch_dir())) / ".chorus"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in _SERVER_VARIABLES},
            "PYTHONPATH": str(ROOT / "src"),
            # The suites' one model, as every service of theirs uses; the demo trains its own
            # on a fresh clone (`ready_intent_model`).
            "CHORUS_MODEL_DIR": str(TEST_MODEL_DIR),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if uses_model(self.env):
            prepared_model_dir()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "entrypoints.cli",
                    "demo",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chorus demo exited: {self.log()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + "/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"chorus demo never got ready: {self.log()[-3000:]}")

    @property
    def admin_key(self) -> str:
        return (self.data_dir / "admin_key").read_text().strip()

    def environment(self) -> dict[str, str]:
        """What the demo wrote to its env file (values are shell-quoted only when they must)."""
        lines = (self.data_dir / "env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        """Every process the demo started, and theirs (PostgreSQL's backends, say)."""
        assert self.process is not None
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self) -> None:
        """Ctrl-C, as a user stops it; whatever is left is killed, and the data removed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)
