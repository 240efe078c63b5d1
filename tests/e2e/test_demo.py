"""`chorus demo` as a new user runs it: on its own embedded servers, with its fake providers."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest

from tests.e2e.demo import DemoProcess

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

IDLE_SECONDS = 10


def errors_in(log: str) -> list[str]:
    """Log lines at error level or above, and any traceback printed outside the JSON logs."""
    found = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if "Traceback" in line:
                found.append(line)
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "critical", "exception"):
            found.append(line[:2000])
    return found


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoProcess]:
    started = DemoProcess(tmp_path / "demo.log")
    try:
        started.start()
        yield started
    finally:
        started.stop()


class TestAnIdleDemo:
    def test_an_idle_demo_logs_nothing_at_error_level(self, demo: DemoProcess) -> None:
        time.sleep(IDLE_SECONDS)
        assert errors_in(demo.log()) == []
