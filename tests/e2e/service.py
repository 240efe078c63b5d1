"""Runs `chorus serve` as a real process, as an operator would."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = [
    "TEST_MODEL_DIR",
    "UNREACHABLE_RATE_LIMITS",
    "ChorusProcess",
    "free_port",
    "prepared_model_dir",
    "uses_model",
]

ROOT = Path(__file__).resolve().parents[2]
# One intent model for every service the suites start, each on a data directory of its own:
# trained once per machine (about a minute), loaded in a second or two afterwards.
TEST_MODEL_DIR = ROOT / ".tools" / "test-model"
# The limits stay on, so every suite goes through them, but none reaches them; the rate limit
# suite sets its own.
UNREACHABLE_RATE_LIMITS = {
    f"CHORUS_RATE_LIMIT_{kind}{part}": "1000000000"
    for kind in ("INGEST", "SEND", "READ", "ADMIN")
    for part in ("", "_BURST")
}


@functools.cache
def prepared_model_dir() -> Path:
    """The shared model directory with a current model in it. The first worker to ask trains
    it; parallel workers wait on the model's lock (`trained_or_loaded`) and load what it wrote;
    each worker asks once."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "entrypoints.cli",
            "assistant",
            "prepare",
            "--model-dir",
            str(TEST_MODEL_DIR),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        check=True,
        timeout=900,
    )
    return TEST_MODEL_DIR


def uses_model(env: dict[str, str]) -> bool:
    """Whether a service with this environment classifies with the model (the default)."""
    return env.get("CHORUS_CLASSIFIER", "model") != "keywords"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChorusProcess:
    """A `chorus serve` subprocess on its own port, database and NATS stream."""

    def __init__(self, database_url: str, nats_url: str, stream: str, log_path: Path) -> None:
        self.nats_url = nats_url
        self.signal_stream = f"{stream}_SIGNALS"
        self.dead_letter_stream = f"{stream}_DEAD_LETTERS"
        self.outbound_stream = f"{stream}_OUT"
        self.subject_prefix = stream.lower()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "NATS_URL": nats_url,
            "CHORUS_PORT": str(self.port),
            "CHORUS_SIGNAL_STREAM": f"{stream}_SIGNALS",
            "CHORUS_NATS_PREFIX": stream.lower(),
            "CHORUS_OUTBOUND_STREAM": f"{stream}_OUT",
            "CHORUS_DEFAULT_REGION": "GB",
            "CHORUS_CLOCK": "manual",
            "PYTHONPATH": str(ROOT / "src"),
            "CHORUS_MODEL_DIR": str(TEST_MODEL_DIR),
            **UNREACHABLE_RATE_LIMITS,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def chorus(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", *args],
            env=self.env,
            capture_output=True,
            check=True,
            timeout=60,
        )
        return done.stdout.decode().strip()

    def key(self, role: str, *, agent: str | None = None, teams: tuple[str, ...] = ()) -> str:
        """A new key's secret, made through `POST /v1/keys` with the service's admin key:
        what `chorus keys create` makes, without a process of its own (a second or two each).
        The command line's own tests call `chorus` itself."""
        body: dict[str, object] = {"name": "e2e", "role": role, "teams": list(teams)}
        if agent is not None:
            body["agent"] = agent
        admin = getattr(self, "admin_key")  # noqa: B009 - set by whoever started the service
        answer = httpx.post(
            self.base_url + "/v1/keys",
            json=body,
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        )
        if answer.status_code != 201:
            raise RuntimeError(f"no {role} key: {answer.status_code} {answer.text}")
        return str(answer.json()["secret"])

    def start(self) -> None:
        if uses_model(self.env):
            prepared_model_dir()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own: kill() takes its worker process too
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chorus serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"chorus serve never got ready: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9 of the service and its projection worker: no clean-up of any kind."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            # What it was doing is in its log: said with the failure, the log is gone after.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
            tail = self.log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"chorus serve did not stop in 20 s after SIGINT: {tail}") from None
