"""schemathesis over every operation of a running Chorus's own OpenAPI document, as an admin.

`make test` runs the coverage phase (boundary and malformed values of every parameter and body,
deterministic) and a few random examples an operation; `make fuzz` runs many more
(CHORUS_FUZZ_EXAMPLES), with CHORUS_FUZZ_SEED for a random run that a seed reproduces.

schemathesis runs as its command line: its pytest loader for a schema that exists only once a
fixture has started the service (`schemathesis.pytest.from_fixture`) fails on pytest 9.2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import running_chorus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.e2e.service import ChorusProcess
    from tests.servers import TestDatabases

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("CHORUS_FUZZ_EXAMPLES", "10"))
SEED = os.environ.get("CHORUS_FUZZ_SEED")
SECONDS = int(os.environ.get("CHORUS_FUZZ_SECONDS", "240"))
"""A run longer than this has hung: it is killed and fails."""
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "ignored_auth",  # a /v1 operation without a key answers 401
)


@pytest.fixture(scope="module")
async def fuzzed(
    databases: TestDatabases, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ChorusProcess]:
    """A service of its own: what the fuzzer creates and the clock it sets touch no other test."""
    log: Path = tmp_path_factory.mktemp("fuzz") / "chorus.log"
    async with running_chorus(await databases.create(), nats_url, log) as service:
        yield service


def schemathesis_run(chorus: ChorusProcess, workdir: Path) -> subprocess.CompletedProcess[str]:
    randomness = ("--seed", SEED) if SEED else ("--generation-deterministic",)
    return subprocess.run(
        [
            *(sys.executable, "-m", "schemathesis.cli", "run"),
            f"{chorus.base_url}/schema/openapi.json",
            *("--header", f"Authorization: Bearer {chorus.admin_key}"),  # type: ignore[attr-defined]
            *("--checks", ",".join(CHECKS)),
            *("--phases", "examples,coverage,fuzzing"),
            *("--max-examples", str(EXAMPLES)),
            *randomness,
            *("--workers", "1"),
            # `?wait=attributed` waits up to 10 s for attribution; a request slower than that hangs.
            *("--request-timeout", "20"),
            "--continue-on-failure",
            *("--report", "json", "--report-json-path", str(workdir / "report.json")),
            "--no-color",
        ],
        cwd=workdir,  # it keeps its own state in ./.hypothesis and ./.schemathesis
        capture_output=True,
        text=True,
        timeout=SECONDS,
        check=False,
    )


def summary(run: subprocess.CompletedProcess[str], report_path: Path) -> str:
    """What failed on which operations, then schemathesis's own account with a curl for each
    failure (long lines cut: a generated body can be megabytes)."""
    lines = [line[:400] for line in run.stdout.splitlines()]
    account = "\n".join(lines)[-30_000:]
    if not report_path.exists():
        return account + run.stderr[-5_000:]
    report = json.loads(report_path.read_text())
    failures = [
        f"{failure['code']} {failure['title']}: {', '.join(failure['operations'])}"
        for failure in report["failures"]
    ]
    errors = [json.dumps(error)[:400] for error in report["errors"]]
    return "\n".join([*failures, *errors, "", account])


def test_every_operation_answers_as_documented_and_never_with_a_5xx(
    fuzzed: ChorusProcess, tmp_path: Path
) -> None:
    run = schemathesis_run(fuzzed, tmp_path)
    assert run.returncode == 0, summary(run, tmp_path / "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["operations"]["tested"] == report["operations"]["total"], report["operations"]
