"""Keys over HTTP and the CLI: create (the secret once), list, read with its change log,
rotate, revoke, expire; and keys limited to teams sending and reading as those teams only."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chorus(shared_chorus: ChorusProcess) -> ChorusProcess:
    """The module's tests share one service: each makes its own keys, teams, agents and
    customers, and looks for its own keys in the listings."""
    return shared_chorus


def unique(key: str) -> str:
    """A team's or agent's key no other test of the shared service uses."""
    return f"{key}-{uuid.uuid4().hex[:8]}"


def key_ids(http: httpx.Client) -> set[str]:
    answer = http.get("/v1/keys")
    assert answer.status_code == 200, answer.text
    return {k["id"] for k in answer.json()["items"]}


def client(chorus: ChorusProcess, key: str | None = None) -> httpx.Client:
    secret = key or chorus.admin_key  # type: ignore[attr-defined]
    return httpx.Client(
        base_url=chorus.base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )


def create_key(http: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = http.post("/v1/keys", json={"name": "k", **body})
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


def teams(http: httpx.Client, *keys: str) -> None:
    """Teams a key may be limited to: they must exist first."""
    for key in keys:
        answer = http.post("/v1/teams", json={"key": key, "name": key.title()})
        assert answer.status_code == 201, answer.text


def customer(http: httpx.Client) -> str:
    email = f"ana-{uuid.uuid4().hex[:8]}@example.org"
    identity = {"type": "email", "value": email, "verification": "verified"}
    answer = http.put("/v1/customers", json={"identities": [identity]})
    answer.raise_for_status()
    return str(answer.json()["customer"]["id"])


def send(http: httpx.Client, customer_id: str, team: str) -> httpx.Response:
    body = {"customer_id": customer_id, "team": team, "purpose": "service", "channels": ["email"]}
    return http.post("/v1/messages", json=body)


def audit_lines(http: httpx.Client, stream: str, at_least: int) -> list[dict[str, Any]]:
    """A stream's lines of the log once at least that many are readable: the log's horizon
    waits for every transaction of the server to end, and the server may be shared."""
    deadline = time.monotonic() + 20
    while True:
        answer = http.get("/v1/audit/events", params={"stream": stream})
        assert answer.status_code == 200, answer.text
        found = [json.loads(line) for line in answer.text.splitlines() if line]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


class TestKeyAudit:
    def test_an_auditor_sees_who_created_rotated_and_revoked_a_key(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as admin:
            watcher = create_key(admin, name="watcher", role="auditor")
            billing = unique("billing")
            teams(admin, billing)
            made = create_key(admin, name="billing backend", role="service", teams=[billing])
            key_id = made["key"]["id"]
            rotated = admin.post(f"/v1/keys/{key_id}/rotate").json()
            admin.post(f"/v1/keys/{key_id}/revoke").raise_for_status()
        with client(chorus, watcher["secret"]) as auditor:
            lines = audit_lines(auditor, key_id, 3)
            listed = auditor.get("/v1/keys")
            story = auditor.get(f"/v1/keys/{key_id}")
            assert auditor.post(f"/v1/keys/{key_id}/rotate").status_code == 403
            assert auditor.post("/v1/keys", json={"name": "x", "role": "admin"}).status_code == 403
        assert [line["type"] for line in lines] == [
            "ApiKey.Created",
            "ApiKey.Rotated",
            "ApiKey.Revoked",
        ]
        assert all("admin key" in line["payload"]["by"] for line in lines)
        assert lines[0]["payload"]["teams"] == [billing]
        assert listed.status_code == 200
        assert key_id in [k["id"] for k in listed.json()["items"]]
        assert story.status_code == 200
        assert [c["change"] for c in story.json()["changes"]] == ["created", "rotated", "revoked"]
        for secret in (made["secret"], rotated["secret"]):
            assert secret not in str(lines) + listed.text + story.text


class TestKeyLife:
    def test_a_key_is_created_listed_read_rotated_and_revoked_by_an_admin(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as admin:
            growth = unique("growth")
            teams(admin, growth)
            made = create_key(admin, name="growth backend", role="service", teams=[growth])
            key_id, secret = made["key"]["id"], made["secret"]
            assert made["key"]["teams"] == [growth]
            assert made["key"]["state"] == "active"
            listed = admin.get("/v1/keys").json()
            assert secret not in str(listed)
            assert key_id in [k["id"] for k in listed["items"]]
            with client(chorus, secret) as service:
                assert service.get("/v1/rules").status_code == 200
                assert service.get("/v1/keys").status_code == 403  # admins and auditors only
            rotated = admin.post(f"/v1/keys/{key_id}/rotate").json()
            with client(chorus, secret) as old:
                answer = old.get("/v1/rules")
                assert answer.status_code == 401
            with client(chorus, rotated["secret"]) as new:
                assert new.get("/v1/rules").status_code == 200
            revoked = admin.post(f"/v1/keys/{key_id}/revoke").json()
            assert revoked["state"] == "revoked"
            with client(chorus, rotated["secret"]) as gone:
                answer = gone.get("/v1/rules")
            assert answer.status_code == 401
            assert "revoked" in answer.json()["detail"]
            assert admin.post(f"/v1/keys/{key_id}/rotate").status_code == 409
            story = admin.get(f"/v1/keys/{key_id}").json()
        assert [c["change"] for c in story["changes"]] == ["created", "rotated", "revoked"]
        assert all("admin key" in c["by"] for c in story["changes"])
        assert secret not in str(story)

    def test_an_expired_key_is_refused_saying_it_expired(self, alone: ChorusProcess) -> None:
        chorus = alone  # it moves the clock
        with client(chorus) as admin:
            admin.post("/v1/admin/clock", json={"set": "2026-12-01T12:00:00Z"}).raise_for_status()
            made = create_key(admin, role="auditor", expires_at="2026-12-01T13:00:00Z")
            with client(chorus, made["secret"]) as auditor:
                assert auditor.get("/v1/rules").status_code == 200
                admin.post("/v1/admin/clock", json={"advance_seconds": 3600}).raise_for_status()
                answer = auditor.get("/v1/rules")
        assert answer.status_code == 401
        assert "expired" in answer.json()["detail"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"role": "admin", "teams": ["growth"]}, "$.teams"),
            ({"role": "marketer", "agent": "ana.silva"}, "$.agent"),
            ({"role": "owner"}, "$.role"),
            ({"role": "service", "teams": ["Growth Team"]}, "$.teams[0]"),
            ({"role": "service", "expires_at": "2020-01-01T00:00:00Z"}, "$.expires_at"),
        ],
    )
    def test_a_key_that_cannot_be_is_refused_naming_the_field(
        self, chorus: ChorusProcess, body: dict[str, Any], field: str
    ) -> None:
        with client(chorus) as admin:
            answer = admin.post("/v1/keys", json={"name": "k", **body})
        assert answer.status_code in (400, 422), answer.text
        assert field in answer.text

    def test_a_key_names_an_agent_and_teams_that_exist(self, chorus: ChorusProcess) -> None:
        with client(chorus) as admin:
            growth, agent = unique("growth"), unique("ana.silva")
            teams(admin, growth)
            ana = {"key": agent, "name": "Ana Silva"}
            assert admin.post("/v1/agents", json=ana).status_code == 201
            before = key_ids(admin)
            for body, field, says in (
                ({"role": "agent"}, "$.agent", "an agent key names the agent it acts as"),
                ({"role": "agent", "agent": "rui.sousa"}, "$.agent", "no agent 'rui.sousa'"),
                ({"role": "service", "teams": [growth, "grwth"]}, "$.teams[1]", "no team"),
                ({"role": "agent", "agent": agent, "teams": ["x"]}, "$.teams[0]", "no team"),
            ):
                answer = admin.post("/v1/keys", json={"name": "k", **body})
                assert answer.status_code == 422, (body, answer.text)
                [error] = answer.json()["errors"]
                assert error["field"] == field, (body, answer.text)
                assert says in error["reason"], (body, answer.text)
            assert key_ids(admin) == before  # none of the refused was made
            made = create_key(admin, role="agent", agent=agent, teams=[growth])
            assert (made["key"]["agent"], made["key"]["teams"]) == (agent, [growth])
        for args, says in (
            (("--role", "agent"), "an agent key names the agent"),
            (("--role", "service", "--team", "grwth"), "no team 'grwth'"),
        ):
            with pytest.raises(subprocess.CalledProcessError) as refused:
                chorus.chorus("keys", "create", *args)
            assert refused.value.stdout == b""
            assert says in refused.value.stderr.decode()
        with client(chorus) as admin:
            assert key_ids(admin) == {*before, made["key"]["id"]}

    def test_a_key_without_a_name_is_refused_naming_the_name(self, chorus: ChorusProcess) -> None:
        with client(chorus) as admin:
            answer = admin.post("/v1/keys", json={"role": "service"})
        assert answer.status_code == 400, answer.text
        assert [e["field"] for e in answer.json()["errors"]] == ["$.name"]

    def test_an_unscoped_role_limited_to_teams_is_refused_in_good_english(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as admin:
            answer = admin.post("/v1/keys", json={"name": "k", "role": "auditor", "teams": ["x"]})
        assert "an auditor key sees every team" in answer.text, answer.text

    def test_the_cli_lists_rotates_and_revokes_as_the_api(self, chorus: ChorusProcess) -> None:
        growth = unique("growth")
        with client(chorus) as admin:
            teams(admin, growth)
        secret = chorus.chorus("keys", "create", "--role", "service", "--team", growth)
        with client(chorus) as admin:
            [made] = [k for k in admin.get("/v1/keys").json()["items"] if k["teams"] == [growth]]
            listed = chorus.chorus("keys", "list")
            assert made["id"] in listed
            assert secret not in listed
            rotated = chorus.chorus("keys", "rotate", made["id"])
            chorus.chorus("keys", "revoke", made["id"])
            story = admin.get(f"/v1/keys/{made['id']}").json()
        assert rotated.startswith("chorus_")
        assert [c["change"] for c in story["changes"]] == ["created", "rotated", "revoked"]
        assert all(c["by"].startswith("cli (") for c in story["changes"])


class TestTeamKeys:
    def test_a_team_key_sends_and_reads_as_its_team_only(self, chorus: ChorusProcess) -> None:
        with client(chorus) as admin:
            who = customer(admin)
            theirs = send(admin, who, "billing").json()
            team = unique("growth")
            teams(admin, team)
            growth = create_key(admin, role="service", teams=[team])["secret"]
        with client(chorus, growth) as http:
            ours = send(http, who, team)
            assert ours.status_code == 200, ours.text
            refused = send(http, who, "billing")
            assert refused.status_code == 403
            assert "billing" in refused.json()["detail"]
            mine = ours.json()
            assert http.get(f"/v1/decisions/{mine['decision_id']}").status_code == 200
            assert http.get(f"/v1/messages/{mine['message_id']}").status_code == 200
            assert http.get(f"/v1/decisions/{theirs['decision_id']}").status_code == 403
            assert http.get(f"/v1/messages/{theirs['message_id']}").status_code == 403

    def test_admins_and_auditors_read_every_team(self, chorus: ChorusProcess) -> None:
        with client(chorus) as admin:
            theirs = send(admin, customer(admin), "billing").json()
            auditor = create_key(admin, role="auditor")["secret"]
        with client(chorus, auditor) as http:
            assert http.get(f"/v1/decisions/{theirs['decision_id']}").status_code == 200
            assert http.get(f"/v1/messages/{theirs['message_id']}").status_code == 200
