"""Console spans go to stderr with the logs (docs/operations.md), never to stdout, where the
commands print their answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
_SCRIPT = """
from entrypoints.tracing import configure_tracing, tracer
provider = configure_tracing("chorus")
with tracer().start_as_current_span("a console span"):
    pass
provider.force_flush()
"""


def test_console_spans_are_written_to_stderr() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        check=True,
        env={"CHORUS_OTEL_EXPORTER": "console", "PYTHONPATH": str(SRC)},
        timeout=60,
    )
    assert b"a console span" in done.stderr
    assert b"a console span" not in done.stdout
