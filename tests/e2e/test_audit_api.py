"""The audit API over HTTP: who may read it, what it refuses, the log paged and exported."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

CONSENT_CHANGED = "domain.customer.aggregate:Customer.ConsentChanged"
ROUTES = ("/v1/audit/customers/{id}", "/v1/audit/events", "/v1/audit/decisions")


def client(chorus: ChorusProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=chorus.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def consent(http: httpx.Client, customer_id: str, granted: bool, source: str) -> None:
    change = {"channel": "email", "purpose": "marketing", "granted": granted, "source": source}
    answer = http.post(f"/v1/customers/{customer_id}/consents", json={"changes": [change]})
    answer.raise_for_status()


def history(chorus: ChorusProcess) -> str:
    """Ana: registered at 10:00 with marketing email granted, withdrawn at 11:00, then a
    marketing send suppressed at 11:30."""
    with client(chorus, chorus.admin_key) as http:  # type: ignore[attr-defined]
        http.post("/v1/admin/clock", json={"set": "2026-11-27T10:00:00Z"}).raise_for_status()
        body = {"identities": [{"type": "email", "value": "ana@example.org"}]}
        answer = http.put("/v1/customers", json=body)
        answer.raise_for_status()
        ana = str(answer.json()["customer"]["id"])
        consent(http, ana, True, "signup form")
        http.post("/v1/admin/clock", json={"set": "2026-11-27T11:00:00Z"}).raise_for_status()
        consent(http, ana, False, "unsubscribe link")
        http.post("/v1/admin/clock", json={"set": "2026-11-27T11:30:00Z"}).raise_for_status()
        send = {"customer_id": ana, "team": "growth", "purpose": "marketing", "channels": ["email"]}
        http.post("/v1/messages", json=send).raise_for_status()
    return ana


def lines(answer: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in answer.text.splitlines()]


def visible(http: httpx.Client, params: dict[str, Any], at_least: int) -> list[dict[str, Any]]:
    """The lines once at least that many are readable: the log's horizon waits for every
    transaction of the server to end, and the server may be shared."""
    deadline = time.monotonic() + 20
    while True:
        found = lines(http.get("/v1/audit/events", params={**params, "limit": 10_000}))
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


class TestWhoMayReadTheAudit:
    def test_auditors_and_admins_read_it_and_other_roles_are_refused(
        self, chorus: ChorusProcess
    ) -> None:
        ana = history(chorus)
        paths = [route.replace("{id}", ana) for route in ROUTES]
        allowed = [chorus.admin_key, chorus.key("auditor")]  # type: ignore[attr-defined]
        for key in allowed:
            with client(chorus, key) as http:
                assert [http.get(path).status_code for path in paths] == [200, 200, 200]
        with client(chorus, chorus.admin_key) as admin:  # type: ignore[attr-defined]
            ana = {"key": "ana.silva", "name": "Ana Silva"}
            assert admin.post("/v1/agents", json=ana).status_code == 201
        for role in ("marketer", "agent", "service"):
            agent = "ana.silva" if role == "agent" else None
            with client(chorus, chorus.key(role, agent=agent)) as http:
                refused = [http.get(path) for path in paths]
            assert [answer.status_code for answer in refused] == [403, 403, 403], role
            assert refused[0].headers["content-type"].startswith("application/problem+json")
        for path in paths:
            assert httpx.get(chorus.base_url + path).status_code == 401


class TestACustomerAsOfAnInstant:
    def test_the_consent_before_and_after_its_withdrawal_and_before_the_customer_existed(
        self, chorus: ChorusProcess
    ) -> None:
        ana = history(chorus)
        with client(chorus, chorus.key("auditor")) as http:
            path = f"/v1/audit/customers/{ana}"
            granted = http.get(path, params={"as_of": "2026-11-27T10:30:00Z"}).json()
            withdrawn = http.get(path, params={"as_of": "2026-11-27T11:00:00+00:00"}).json()
            now = http.get(path).json()
            before = http.get(path, params={"as_of": "2026-11-27T09:00:00Z"})
            unknown = http.get("/v1/audit/customers/00000000-0000-0000-0000-000000000001")
        assert [(c["granted"], c["source"]) for c in granted["consents"]] == [(True, "signup form")]
        assert [(c["granted"], c["source"], c["at"]) for c in withdrawn["consents"]] == [
            (False, "unsubscribe link", "2026-11-27T11:00:00Z")
        ]
        assert now["as_of"] == "2026-11-27T11:30:00Z"
        assert now["version"] == withdrawn["version"] + 1  # the suppressed send's decision
        assert [i["value"] for i in now["identities"]] == ["ana@example.org"]
        assert before.status_code == 404
        assert "did not exist yet" in before.json()["detail"]
        assert unknown.status_code == 404


HOSTILE = [
    ("customer", {"as_of": "yesterday"}, "query.as_of"),
    ("customer", {"as_of": "2026-11-27T12:00:00Z"}, "query.as_of"),  # the future
    ("customer", {"as_of": "2026-11-27T10:00:00"}, "query.as_of"),  # no offset
    ("customer", {"as_of": "0001-01-01T00:00:00Z"}, "query.as_of"),
    ("events", {"limit": "0"}, "query.limit"),
    ("events", {"limit": "10001"}, "query.limit"),
    ("events", {"limit": "\uff11\uff10"}, "query.limit"),  # full-width digits
    ("events", {"after": "'; DROP TABLE events; --"}, "query.after"),
    ("events", {"after": "99999999999999999999.1"}, "query.after"),
    ("events", {"type": "Customer.Nothing"}, "query.type"),
    ("events", {"stream": "not-a-uuid"}, "query.stream"),
    ("events", {"since": "2026-13-01T00:00:00Z"}, "query.since"),
    ("events", {"since": "2026-11-27T11:00:00Z", "until": "2026-11-27T10:00:00Z"}, "query.until"),
    ("decisions", {"outcome": "maybe"}, "query.outcome"),
    ("decisions", {"customer": "ana"}, "query.customer"),
    ("decisions", {"limit": "1001"}, "query.limit"),
]
PATHS = {
    "customer": "/v1/audit/customers/00000000-0000-0000-0000-000000000001",
    "events": "/v1/audit/events",
    "decisions": "/v1/audit/decisions",
}


class TestHostileParameters:
    def test_each_is_a_400_naming_the_parameter(self, chorus: ChorusProcess) -> None:
        with client(chorus, chorus.admin_key) as http:  # type: ignore[attr-defined]
            http.post("/v1/admin/clock", json={"set": "2026-11-27T11:30:00Z"}).raise_for_status()
            for route, params, field in HOSTILE:
                answer = http.get(PATHS[route], params=params)
                assert answer.status_code == 400, (params, answer.text)
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert [e["field"] for e in answer.json()["errors"]] == [field], params


class TestTheRawLog:
    def test_paging_by_link_reads_what_one_read_does_and_the_export_writes_the_same(
        self, chorus: ChorusProcess, tmp_path: Path
    ) -> None:
        ana = history(chorus)
        with client(chorus, chorus.key("auditor")) as http:
            consents = visible(http, {"type": CONSENT_CHANGED}, 2)
            assert [c["payload"]["source"] for c in consents] == [
                "signup form",
                "unsubscribe link",
            ]
            assert {c["stream"] for c in consents} == {ana}
            paged: list[dict[str, Any]] = []
            url: str | None = "/v1/audit/events?limit=2"
            while url is not None:
                answer = http.get(url)
                assert answer.headers["content-type"].startswith("application/x-ndjson")
                page = lines(answer)
                assert len(page) <= 2
                paged += page
                link = answer.headers.get("link")
                url = link.partition("<")[2].partition(">")[0] if link else None
            whole = lines(http.get("/v1/audit/events", params={"limit": 10_000}))
            decisions = http.get("/v1/audit/decisions", params={"customer": ana}).json()["items"]
        assert paged == whole[: len(paged)]
        assert len(paged) >= 4
        assert set(paged[0]) == {
            "position", "cursor", "stream", "version", "type", "recorded_at", "payload",
        }  # fmt: skip
        assert [d["outcome"] for d in decisions] == ["suppress"]
        assert decisions[0]["fired"]

        out = tmp_path / "log.jsonl"
        chorus.chorus("audit", "export", "--out", str(out), "--page", "3")
        exported = [json.loads(line) for line in out.read_text().splitlines()]
        assert exported[: len(paged)] == paged
        only_ana = tmp_path / "ana.jsonl"
        chorus.chorus("audit", "export", "--out", str(only_ana), "--stream", ana)
        assert {json.loads(line)["stream"] for line in only_ana.read_text().splitlines()} == {ana}
