from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from entrypoints.metrics_directory import MULTIPROCESS_DIRECTORY, share_metrics


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


class TestShareMetrics:
    def test_a_run_gets_a_directory_and_what_killed_runs_left_is_removed(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        monkeypatch.setenv(MULTIPROCESS_DIRECTORY, "")  # restored after the test
        orphan = tmp_path / f"chorus-metrics-{_dead_pid()}-abc"
        alive = tmp_path / f"chorus-metrics-{os.getppid()}-def"
        orphan.mkdir()
        alive.mkdir()
        share_metrics()
        made = Path(os.environ[MULTIPROCESS_DIRECTORY])
        assert made.is_dir()
        assert made.name.startswith(f"chorus-metrics-{os.getpid()}-")
        assert not orphan.exists()
        assert alive.exists()

    def test_a_directory_named_by_the_environment_is_used_as_it_is(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv(MULTIPROCESS_DIRECTORY, str(tmp_path))
        share_metrics()
        assert os.environ[MULTIPROCESS_DIRECTORY] == str(tmp_path)
