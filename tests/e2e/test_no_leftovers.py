"""A killed demo or bench leaves no server or fake provider running behind it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import psutil
import pytest

from tests.e2e.demo import DemoProcess
from tests.e2e.service import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

GONE_WITHIN = 30.0


def command_lines(processes: list[psutil.Process]) -> str:
    return " ".join(" ".join(p.cmdline()) for p in processes)


@contextlib.contextmanager
def leaving_none(processes: list[psutil.Process]) -> Iterator[list[psutil.Process]]:
    """Yields the list to fill; whatever in it still runs afterwards is killed, pass or fail."""
    try:
        yield processes
    finally:
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.kill()


def still_running(processes: list[psutil.Process]) -> list[str]:
    """Those of the processes not gone within GONE_WITHIN."""
    _, alive = psutil.wait_procs(processes, timeout=GONE_WITHIN)
    found = []
    for process in alive:
        with contextlib.suppress(psutil.Error):
            found.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
    return found


class TestAKilledDemo:
    def test_a_demo_killed_with_sigkill_takes_its_servers_and_fakes_along(
        self, tmp_path: Path
    ) -> None:
        demo = DemoProcess(tmp_path / "demo.log")
        with leaving_none([]) as started:
            try:
                demo.start()
                started += demo.descendants()
                assert "postgres" in command_lines(started)
                assert "nats-server" in command_lines(started)
                assert "adapters.providers.fakes" in command_lines(started)
                assert demo.process is not None
                demo.process.kill()
                demo.process.wait(10)
                assert still_running(started) == []
            finally:
                demo.stop()


class TestABenchStoppedByATimeout:
    def test_a_bench_stopped_by_sigterm_stops_its_embedded_servers(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        env.pop("DATABASE_URL", None)
        env.pop("NATS_URL", None)
        bench = subprocess.Popen(
            [sys.executable, "-m", "bench", "append", "--quick"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        with leaving_none([]) as started:
            try:
                assert bench.stderr is not None
                deadline = time.monotonic() + 120
                line = ""
                while "running append" not in line:  # the servers are up, the benchmark begins
                    assert time.monotonic() < deadline, "the bench never started"
                    line = bench.stderr.readline()
                    assert line, "the bench exited before it ran"
                started += psutil.Process(bench.pid).children(recursive=True)
                assert "postgres" in command_lines(started)
                assert "nats-server" in command_lines(started)
                bench.send_signal(signal.SIGTERM)
                bench.wait(60)
                assert still_running(started) == []
                assert bench.returncode == 128 + signal.SIGTERM
            finally:
                if bench.poll() is None:
                    bench.kill()
                    bench.wait(10)
