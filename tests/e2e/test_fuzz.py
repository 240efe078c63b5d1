"""schemathesis over every operation of a running Chorus's own OpenAPI document, as an admin.

The coverage phase (boundary and malformed values of every parameter and body) and random
examples, both deterministic; half of the time an id or key is one of the things seeded first,
and now and then a string is a hostile value. `make test` runs 20 random examples an operation,
`make fuzz` CHORUS_FUZZ_EXAMPLES of them, random with CHORUS_FUZZ_SEED (docs/operations.md).
No operation is left out but the inbox's live stream (`streamConversations`), which never
ends: a fuzzer waits for a whole body (tests/e2e/test_conversations_stream.py checks it, bad
input included). The manual clock that the fuzzer sets at will is its own service's.

schemathesis runs as its command line: its pytest loader for a schema that exists only once a
fixture has started the service (`schemathesis.pytest.from_fixture`) fails on pytest 9.2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.conftest import running_chorus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping
    from pathlib import Path

    from tests.e2e.service import ChorusProcess
    from tests.servers import TestDatabases

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("CHORUS_FUZZ_EXAMPLES", "20"))
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
    database_url = await databases.create()
    async with running_chorus(database_url, nats_url, log) as service:
        yield service
    await databases.drop(database_url)


HOSTILE = (
    "a\u0000b",
    "\u0007\u001b[2J",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-14:00",
    "99999999999999999999999999",
    "{{ 7 * 7 }}",
)
"""What any string of a body or parameter now and then is: what storage or rendering chokes on."""


def seed(chorus: ChorusProcess) -> dict[str, list[str]]:
    """One of each thing the API addresses by id or key, for the fuzzer to find some of the time:
    it reaches the code behind a 404 that way."""
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    with httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30) as http:
        email = {"type": "email", "value": "fuzz@example.org", "verification": "verified"}
        upserted = http.put("/v1/customers", json={"identities": [email]})
        customer_id = upserted.raise_for_status().json()["customer"]["id"]
        signal = {
            "id": "fuzz-1",
            "type": "order.placed",
            "occurred_at": "2026-11-02T10:00:00Z",
            "identities": [email],
            "properties": {"total": 120},
        }
        http.post("/v1/events?wait=attributed", json={"signals": [signal]}).raise_for_status()
        condition = {"type": "signal_count", "signal": "order.placed", "within": "24h"}
        segment = {"name": "Fuzz", "condition": {**condition, "op": "gte", "value": 1}}
        http.put("/v1/segments/fuzz", json=segment).raise_for_status()
        trigger = {"name": "Fuzz", "on": {"type": "signal", "signal": "order.placed"}}
        http.put("/v1/triggers/fuzz", json=trigger).raise_for_status()
        variant = {"channel": "email", "locale": "en", "subject": "Hi", "body": "{{ vars.x }}"}
        template = {"default_locale": "en", "variants": [variant]}
        http.put("/v1/templates/fuzz", json=template).raise_for_status()
        message = {
            "customer_id": customer_id,
            "team": "care",
            "purpose": "transactional",
            "channels": ["email"],
        }
        decided = http.post("/v1/messages", json=message).raise_for_status().json()
    return {
        "customers": [customer_id],
        "keys": ["fuzz"],
        "messages": [decided["message_id"]],
        "decisions": [decided["decision_id"]],
        # The hostile ones first: deterministic generation draws early entries more often.
        "identities": ["external_id:a\u0000b", "email:fuzz@example.org", "phone:+447700900123"],
        "times": ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00"],
        # Positions over a bigint: a timeline's, a trigger's firings'.
        "cursors": ["OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk=", "__________8"],
        "hostile": list(HOSTILE),
    }


def config(dictionaries: Mapping[str, list[str]]) -> str:
    """schemathesis.toml: where the fuzzer draws from the seeded things and the hostile values."""
    lines = []
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    bindings = {
        "path.customer_id": "customers",
        "path.key": "keys",
        "path.message_id": "messages",
        "path.decision_id": "decisions",
        "query.identity": "identities",
        "query.since": "times",
        "query.until": "times",
        "query.cursor": "cursors",
        "query.after": "cursors",
    }
    lines.append("[parameters]")
    for parameter, name in bindings.items():
        lines.append(f'"{parameter}" = {{ dictionary = "{name}", probability = 0.5 }}')
    lines += [
        "",
        "[generation.dictionaries.string]",
        'dictionary = "hostile"',
        "probability = 0.05",
    ]
    return "\n".join(lines) + "\n"


def schemathesis_run(chorus: ChorusProcess, workdir: Path) -> subprocess.CompletedProcess[str]:
    randomness = ("--seed", SEED) if SEED else ("--generation-deterministic",)
    (workdir / "schemathesis.toml").write_text(config(seed(chorus)))
    return subprocess.run(
        [
            *(sys.executable, "-m", "schemathesis.cli"),
            *("--config-file", str(workdir / "schemathesis.toml"), "run"),
            f"{chorus.base_url}/schema/openapi.json",
            *("--header", f"Authorization: Bearer {chorus.admin_key}"),  # type: ignore[attr-defined]
            *("--checks", ",".join(CHECKS)),
            *("--exclude-operation-id", "streamConversations"),
            *("--phases", "examples,coverage,fuzzing"),
            *("--max-examples", str(EXAMPLES)),
            *randomness,
            *("--workers", "1"),
            # On a loaded CI machine Hypothesis would call generation too slow: not our failure.
            *("--suppress-health-check", "all"),
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
    operations = report["operations"]
    assert operations["tested"] == operations["selected"] == operations["total"] - 1, operations


def test_every_operation_documents_its_problems_and_whether_it_needs_a_key(
    fuzzed: ChorusProcess,
) -> None:
    document = httpx.get(fuzzed.base_url + "/schema/openapi.json", timeout=10).json()
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            answers = operation["responses"]
            if path.startswith("/v1/") and not path.startswith(("/v1/unsubscribe", "/v1/webhooks")):
                assert operation.get("security") is None, where  # the document's: a key
                assert answers["401"]["content"] == problem, where
                assert answers["403"]["content"] == problem, where
            else:
                assert operation["security"] == [], where
            if "{" in path and operation["operationId"] != "unsubscribePage":
                assert answers["404"]["content"] == problem, where
            if "requestBody" in operation:
                for status in ("400", "413", "415", "422"):
                    assert answers[status]["content"] == problem, (where, status)
    for path in ("/v1/segments/{key}", "/v1/triggers/{key}", "/v1/templates/{key}"):
        created, changed = (document["paths"][path]["put"]["responses"][s] for s in ("201", "200"))
        assert created["content"] == changed["content"], path
