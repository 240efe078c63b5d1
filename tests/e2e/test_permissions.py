"""The permission table of docs/api.md is what the service does: every operation of the
OpenAPI document under /v1 driven with a key of each role, a key limited to another team, no
key and a revoked key, each answer compared with the table."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.test_campaigns_api import WELCOME
from tests.e2e.test_segments_api import wait_for

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
PUBLIC = ("/v1/unsubscribe/", "/v1/webhooks/")
AGENT = "ana.silva"

SEGMENT: dict[str, Any] = {
    "name": "Big spenders",
    "condition": {"type": "attribute", "name": "tier", "op": "eq", "value": "gold"},
}
TRIGGER: dict[str, Any] = {
    "name": "Big orders",
    "on": {
        "type": "signal",
        "signal": "order.placed",
        "where": [{"property": "total", "op": "gte", "value": 100}],
    },
}
_ROW = re.compile(r"^\| `(\w+)` \| `(GET|POST|PUT|DELETE|PATCH) (/v1/\S+)` \|(.*)\|$")


def permission_table() -> tuple[list[str], dict[tuple[str, str], dict[str, str]]]:
    """The columns (who asks) and, per (method, path), what each is answered."""
    text = API_DOC.read_text().split("## Keys, roles and teams", 1)[1].split("\n## ", 1)[0]
    header = next(line for line in text.splitlines() if line.startswith("| operation |"))
    columns = [cell.strip() for cell in header.strip("|").split("|")][2:]
    table = {}
    for line in text.splitlines():
        row = _ROW.match(line)
        if row:
            cells = [cell.strip() for cell in row.group(4).split("|")]
            table[(row.group(2), row.group(3))] = dict(zip(columns, cells, strict=True))
    return columns, table


def matches(expected: str, status: int) -> bool:
    if expected in ("yes", "filtered"):
        return status not in (401, 403)
    return status == int(expected)


def journey_of(team: str) -> dict[str, Any]:
    """A journey entered through the API whose one step, `w`, sends as `team`."""
    send = {
        "type": "send",
        "channels": ["sms"],
        "template": "welcome",
        "purpose": "marketing",
        "team": team,
    }
    return {"entry": {"type": "api"}, "start": "w", "steps": {"w": send}}


def staff(http: httpx.Client) -> None:
    """Teams billing, growth and support, the agent ana.silva on billing, and a routing
    document that gives every conversation to billing."""
    for team in ("billing", "growth", "support"):
        made = http.post("/v1/teams", json={"key": team, "name": team.title()})
        assert made.status_code == 201, made.text
    agent = {"key": AGENT, "name": "Ana Silva", "capacity": {"email": 5}}
    assert http.post("/v1/agents", json=agent).status_code == 201
    http.put(f"/v1/teams/billing/members/{AGENT}").raise_for_status()
    http.put("/v1/routing", json={"default_team": "billing"}).raise_for_status()


def conversation_of(http: httpx.Client, email: str, seconds: float = 60) -> str:
    """The conversation the customer of `email` starts by writing in, once billing holds it."""
    identity = {"type": "email", "value": email, "verification": "verified"}
    upserted = http.put("/v1/customers", json={"identities": [identity]})
    upserted.raise_for_status()
    customer_id = upserted.json()["customer"]["id"]
    signal = {
        "id": f"in-{email}",
        "type": "message.received",
        "occurred_at": "2026-11-30T12:00:00Z",
        "identities": [identity],
        "properties": {"channel": "email", "text": "Where is my invoice?"},
    }
    sent = http.post("/v1/events", json={"signals": [signal]})
    assert sent.status_code == 202, sent.text
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        listed = http.get("/v1/conversations", params={"customer_id": customer_id})
        items = [i for i in listed.json()["items"] if i["team"] == "billing"]
        if items:
            return str(items[0]["id"])
        time.sleep(0.2)
    raise AssertionError(f"{email}'s message was never threaded to billing")


class World:
    """What the requests name: one customer, a send of team `billing` and the customer's
    conversation, which billing holds (the other team's key is of team `growth`)."""

    def __init__(self, http: httpx.Client) -> None:
        staff(http)
        identity = {"type": "email", "value": "ana@example.org", "verification": "verified"}
        answer = http.put("/v1/customers", json={"identities": [identity]})
        answer.raise_for_status()
        self.customer_id = answer.json()["customer"]["id"]
        self.send_body = {
            "customer_id": self.customer_id,
            "team": "billing",
            "purpose": "service",
            "channels": ["email"],
        }
        sent = http.post("/v1/messages", json=self.send_body)
        sent.raise_for_status()
        self.message_id = sent.json()["message_id"]
        self.decision_id = sent.json()["decision_id"]
        self.conversation_id = conversation_of(http, "ana@example.org")
        self.billing: tuple[str, ...] = (self.message_id, self.decision_id)

    def path(self, template: str) -> str:
        fills = {
            "message_id": self.message_id,
            "decision_id": self.decision_id,
            "customer_id": self.customer_id,
            "agent": AGENT,
            "version": "1",
            "campaign": "welcome",
            "conversation_id": self.conversation_id,
        }
        # An agent's own key may change their presence: `{key}` under /v1/agents is theirs.
        # Team routes change support, so that ana.silva stays on billing throughout.
        key = "billing"
        if template.startswith("/v1/agents/"):
            key = AGENT
        elif template.startswith("/v1/teams/"):
            key = "support"

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "key":
                return key
            return fills.get(name, str(uuid.uuid4()))

        return re.sub(r"\{(\w+)\}", fill, template)

    def add_campaign(self, http: httpx.Client) -> None:
        """The campaign the paths name, `welcome`, sending as team `billing`: its id is one of
        billing's items."""
        http.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
        made = http.post(
            "/v1/campaigns",
            json={"key": "welcome", "name": "Welcome", "journey": journey_of("billing")},
        )
        made.raise_for_status()
        self.billing = (*self.billing, made.json()["id"])

    def body(self, method: str, template: str) -> Any:
        if template == "/v1/messages" and method == "POST":
            return self.send_body
        if template.startswith("/v1/conversations/{conversation_id}/"):
            # A valid command, so that a key that may act gets past validation to the team
            # check; the transfer keeps the conversation with billing (a 422 for those who may).
            return COMMANDS[template.rsplit("/", 1)[1]]
        # The same for the campaign commands that read a body: a marketer key limited to
        # growth gets past validation to the team check on billing's campaign (403).
        if template == "/v1/campaigns/{campaign}" and method == "PUT":
            return {"name": "Welcome", "journey": journey_of("billing")}
        if template == "/v1/campaigns/{campaign}/archive":
            return {"reason": "matrix"}
        if template == "/v1/campaigns/{campaign}/enrollments" and method == "POST":
            return {"customer_id": self.customer_id}
        return {} if method in ("POST", "PUT", "PATCH") else None


COMMANDS: dict[str, Any] = {
    "assign": {"agent": AGENT, "reason": "matrix"},
    "notes": {"text": "matrix"},
    "reopen": {"reason": "matrix"},
    "replies": {"text": "We are looking into it."},
    "resolve": {"reason": "matrix"},
    "snooze": {"until": "2026-12-30T12:00:00Z"},
    "tags": {"add": ["matrix"]},
    "priority": {"priority": "high", "reason": "matrix"},
    "transfer": {"team": "billing", "reason": "matrix"},
    "suggestions": None,
}


def keys_by_column(http: httpx.Client) -> dict[str, str | None]:
    def create(**body: Any) -> dict[str, Any]:
        answer = http.post("/v1/keys", json={"name": "matrix", **body})
        assert answer.status_code == 201, answer.text
        made: dict[str, Any] = answer.json()
        return made

    revoked = create(role="admin")
    http.post(f"/v1/keys/{revoked['key']['id']}/revoke").raise_for_status()
    return {
        "admin": http.headers["authorization"].removeprefix("Bearer "),
        "marketer": create(role="marketer")["secret"],
        "agent": create(role="agent", agent=AGENT)["secret"],
        "auditor": create(role="auditor")["secret"],
        "service": create(role="service")["secret"],
        "other team": create(role="service", teams=["growth"])["secret"],
        "team marketer": create(role="marketer", teams=["growth"])["secret"],
        "no key": None,
        "revoked": revoked["secret"],
    }


def status_of(http: httpx.Client, method: str, path: str, key: str | None, body: Any) -> int:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    with http.stream(method, path, headers=headers, json=body) as answer:
        # A stream (the inbox's server-sent events) answers its status and then stays open.
        return answer.status_code


def answer_of(http: httpx.Client, method: str, path: str, key: str | None) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return http.request(method, path, headers=headers)


def leaks(answer: httpx.Response, ids: tuple[str, ...]) -> list[str]:
    """The ids of another team's items that an answer names."""
    return [i for i in ids if i in answer.text]


def timeline_names(
    http: httpx.Client, customer_id: str, key: str, ids: tuple[str, ...]
) -> set[str]:
    """Which of `ids` the customer's whole timeline names, read one event a page."""
    named: set[str] = set()
    cursor = None
    while True:
        params = {"limit": "1"} if cursor is None else {"limit": "1", "cursor": cursor}
        answer = http.get(
            f"/v1/customers/{customer_id}/timeline",
            params=params,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert answer.status_code == 200, answer.text
        named.update(leaks(answer, ids))
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return named


# Each test but the first makes the same teams, agent, routing and campaigns, and reads
# listings and reports of the whole service: each has a service of its own (`chorus`). The
# first reads the OpenAPI document only, on the service the table's test drives
# (`shared_chorus`), whichever runs first.


class TestPermissionTable:
    def test_the_table_names_every_operation_that_takes_a_key(
        self, shared_chorus: ChorusProcess
    ) -> None:
        document = httpx.get(f"{shared_chorus.base_url}/schema/openapi.json").json()
        operations = {
            (method.upper(), path)
            for path, item in document["paths"].items()
            if path.startswith("/v1/") and not path.startswith(PUBLIC)
            for method in item
            if method in ("get", "post", "put", "delete", "patch")
        }
        assert operations == set(permission_table()[1])

    def test_every_operation_answers_every_key_as_the_table_says(
        self, shared_chorus: ChorusProcess
    ) -> None:
        chorus = shared_chorus
        columns, table = permission_table()
        admin_key = chorus.admin_key  # type: ignore[attr-defined]
        with httpx.Client(
            base_url=chorus.base_url,
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=30,
        ) as http:
            world = World(http)
            world.add_campaign(http)
            world.billing = (*world.billing, world.conversation_id)
            keys = keys_by_column(http)
            assert set(keys) == set(columns)
        wrong = []
        with httpx.Client(base_url=chorus.base_url, timeout=30) as bare:  # no key of its own
            for (method, template), expected in sorted(table.items()):
                path = world.path(template)
                body = world.body(method, template)
                for column in columns:
                    status = status_of(bare, method, path, keys[column], body)
                    if not matches(expected[column], status):
                        wrong.append(
                            f"{method} {template} as {column}: {status}, "
                            f"the table says {expected[column]}"
                        )
                    elif expected[column] == "filtered":
                        named = leaks(answer_of(bare, method, path, keys[column]), world.billing)
                        if named:
                            wrong.append(f"{method} {template} as {column} names {named}")
        assert wrong == []

    def test_a_key_of_one_team_reads_its_sends_to_a_customer_and_no_other_teams(
        self, chorus: ChorusProcess
    ) -> None:
        admin_key = chorus.admin_key  # type: ignore[attr-defined]
        with httpx.Client(
            base_url=chorus.base_url,
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=30,
        ) as http:
            world = World(http)
            content = {"subject": "Hello", "body": "Your order ships today."}
            sent = {
                team: http.post(
                    "/v1/messages", json={**world.send_body, "team": team, "content": content}
                ).json()
                for team in ("billing", "growth")
            }
            assert {s["outcome"] for s in sent.values()} == {"send"}, sent
            theirs = (*world.billing, sent["billing"]["message_id"], sent["billing"]["decision_id"])
            ours = (sent["growth"]["message_id"], sent["growth"]["decision_id"])
            keys = keys_by_column(http)
            customer = world.customer_id
            context = f"/v1/customers/{customer}/context"
            everything = answer_of(http, "GET", context, keys["admin"])
            assert leaks(everything, theirs + ours) == [*theirs, *ours]
            answer = answer_of(http, "GET", context, keys["other team"])
            assert answer.status_code == 200, answer.text
            assert leaks(answer, theirs + ours) == list(ours)
            # One event a page: a message's later events are told apart by its stream alone.
            assert timeline_names(http, customer, keys["admin"], theirs + ours) == {*theirs, *ours}
            assert timeline_names(http, customer, keys["other team"], theirs + ours) == set(ours)

    def test_a_key_of_one_team_reads_its_teams_costs_and_no_other_teams(
        self, chorus: ChorusProcess
    ) -> None:
        admin_key = chorus.admin_key  # type: ignore[attr-defined]
        with httpx.Client(
            base_url=chorus.base_url,
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=30,
        ) as http:
            world = World(http)
            content = {"subject": "Hello", "body": "Your order ships today."}
            for team in ("billing", "growth"):  # with the world's, the day's global cap of 3
                sent = http.post(
                    "/v1/messages", json={**world.send_body, "team": team, "content": content}
                )
                assert sent.json()["outcome"] == "send", sent.text
            made = http.post(
                "/v1/keys",
                json={"name": "growth marketer", "role": "marketer", "teams": ["growth"]},
            )
            assert made.status_code == 201, made.text
            growth = made.json()["secret"]
            keys = keys_by_column(http)

        with httpx.Client(base_url=chorus.base_url, timeout=30) as bare:

            def costs(key: str, **params: str) -> httpx.Response:
                return bare.get(
                    "/v1/reports/costs",
                    params={"group_by": "team", **params},
                    headers={"Authorization": f"Bearer {key}"},
                )

            for column in ("admin", "marketer", "auditor"):
                assert teams_in(costs(keys[column])) == {"billing": 1, "growth": 1}, column
            ours = costs(growth)
            assert teams_in(ours) == {"growth": 1}
            assert "billing" not in ours.text
            assert ours.json()["total_messages"] == 1
            assert teams_in(costs(growth, team="growth")) == {"growth": 1}
            theirs = costs(growth, team="billing")
            assert theirs.status_code == 403, theirs.text
            assert teams_in(costs(keys["admin"], team="billing")) == {"billing": 1}

    def test_a_key_of_one_team_acts_on_and_reads_only_campaigns_that_send_as_it(
        self, chorus: ChorusProcess
    ) -> None:
        admin_key = chorus.admin_key  # type: ignore[attr-defined]
        with httpx.Client(
            base_url=chorus.base_url,
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=30,
        ) as admin:
            world = World(admin)
            made = admin.post(
                "/v1/keys",
                json={"name": "growth marketer", "role": "marketer", "teams": ["growth"]},
            )
            assert made.status_code == 201, made.text
            growth_key = made.json()["secret"]
            admin.put("/v1/templates/welcome", json=WELCOME).raise_for_status()
            enter = {"customer_id": world.customer_id}
            # A dry run over a day, of the campaign's journey, or of one sending as billing.
            day = {
                "from": "2026-12-01T00:00:00Z",
                "to": "2026-12-02T00:00:00Z",
                "journey": journey_of("billing"),
            }

            with httpx.Client(
                base_url=chorus.base_url,
                headers={"Authorization": f"Bearer {growth_key}"},
                timeout=30,
            ) as growth:
                theirs = {"key": "theirs", "name": "Billing", "journey": journey_of("billing")}
                refused = growth.post("/v1/campaigns", json=theirs)
                assert refused.status_code == 403, refused.text
                assert [e["field"] for e in refused.json()["errors"]] == ["$.journey.steps.w.team"]
                assert admin.get("/v1/campaigns/theirs").status_code == 404

                assert admin.post("/v1/campaigns", json=theirs).status_code == 201
                assert growth.post("/v1/campaigns/theirs/activate").status_code == 403
                assert admin.get("/v1/campaigns/theirs").json()["status"] == "draft"
                admin.post("/v1/campaigns/theirs/activate").raise_for_status()
                assert (
                    growth.post("/v1/campaigns/theirs/enrollments", json=enter).status_code == 403
                )
                ours_too = {"name": "Billing", "journey": journey_of("growth")}
                for method, path, body in (
                    ("GET", "", None),
                    ("PUT", "", ours_too),
                    ("GET", "/history", None),
                    ("GET", "/stats", None),
                    ("GET", "/enrollments", None),
                    ("GET", f"/enrollments/{uuid.uuid4()}", None),
                    ("POST", "/dry-run", {key: day[key] for key in ("from", "to")}),
                    ("POST", "/pause", None),
                    ("POST", "/archive", {"reason": "not yours"}),
                ):
                    answer = growth.request(method, f"/v1/campaigns/theirs{path}", json=body)
                    assert answer.status_code == 403, (method, path, answer.text)
                    assert "cost" not in answer.text, (method, path)
                assert admin.get("/v1/campaigns/theirs").json()["status"] == "active"
                made_by_admin = admin.post("/v1/campaigns/theirs/enrollments", json=enter)
                assert made_by_admin.status_code == 201, made_by_admin.text

                def counted() -> dict[str, Any] | None:
                    stats: dict[str, Any] = admin.get("/v1/campaigns/theirs/stats").json()
                    return stats if stats["journey"] else None

                billing_stats = wait_for(counted)
                assert billing_stats, "the entry was never counted"
                assert "cost" in billing_stats["journey"][0]["figures"]
                hidden = growth.get("/v1/campaigns/theirs/stats")
                assert hidden.status_code == 403, hidden.text
                assert "cost" not in hidden.text

                ours = {"key": "ours", "name": "Growth", "journey": journey_of("growth")}
                assert growth.post("/v1/campaigns", json=ours).status_code == 201
                growth.post("/v1/campaigns/ours/activate").raise_for_status()
                entered = growth.post("/v1/campaigns/ours/enrollments", json=enter)
                assert entered.status_code == 201, entered.text
                assert growth.get("/v1/campaigns/ours/stats").status_code == 200
                listed = growth.get("/v1/campaigns").json()
                assert [c["key"] for c in listed["items"]] == ["ours"]
                everything = admin.get("/v1/campaigns").json()
                assert [c["key"] for c in everything["items"]] == ["ours", "theirs"]
                tried = growth.post("/v1/campaigns/ours/dry-run", json=day)
                assert tried.status_code == 403, tried.text
                edited = growth.put(
                    "/v1/campaigns/ours", json={"name": "Growth", "journey": journey_of("billing")}
                )
                assert edited.status_code == 403, edited.text
                assert [e["field"] for e in edited.json()["errors"]] == ["$.journey.steps.w.team"]
                assert admin.get("/v1/campaigns/ours").json()["version"] == 1

    def test_a_key_of_one_team_reads_and_acts_on_its_teams_conversations_only(
        self, chorus: ChorusProcess
    ) -> None:
        admin_key = chorus.admin_key  # type: ignore[attr-defined]
        with httpx.Client(
            base_url=chorus.base_url,
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=30,
        ) as admin:
            world = World(admin)
            theirs = world.conversation_id
            ours = conversation_of(admin, "rui@example.org")
            moved = admin.post(
                f"/v1/conversations/{ours}/transfer", json={"team": "growth", "reason": "growth's"}
            )
            assert moved.status_code == 200, moved.text
            keys = keys_by_column(admin)
        nobodys = str(uuid.uuid4())
        with httpx.Client(base_url=chorus.base_url, timeout=30) as bare:

            def ask(column: str, method: str, path: str, body: Any = None) -> int:
                return status_of(bare, method, path, keys[column], body)

            growth = "other team"  # a service key limited to growth
            assert ask(growth, "GET", f"/v1/conversations/{ours}") == 200
            assert ask(growth, "GET", f"/v1/conversations/{theirs}") == 403
            assert ask(growth, "GET", f"/v1/conversations/{nobodys}") == 404
            note = {"text": "ours"}
            assert ask(growth, "POST", f"/v1/conversations/{ours}/notes", note) == 200
            assert ask(growth, "POST", f"/v1/conversations/{theirs}/notes", note) == 403
            # The inbox lists what its projection has applied: the transfer, a moment after.
            listed: list[str] = []
            for _ in range(100):
                found = answer_of(bare, "GET", "/v1/conversations", keys[growth]).json()
                listed = [c["id"] for c in found["items"]]
                if listed:
                    break
                time.sleep(0.1)
            assert listed == [ours]
            # A marketer sees no conversation: one that exists is a 403, an id of none a 404.
            for conversation in (ours, theirs):
                assert ask("marketer", "GET", f"/v1/conversations/{conversation}") == 403
            assert ask("marketer", "GET", f"/v1/conversations/{nobodys}") == 404
            # ana.silva is on billing only.
            assert ask("agent", "GET", f"/v1/conversations/{theirs}") == 200
            assert ask("agent", "GET", f"/v1/conversations/{ours}") == 403
            assert ask("agent", "POST", f"/v1/conversations/{ours}/notes", note) == 403
            for column in ("admin", "service", "auditor"):
                assert ask(column, "GET", f"/v1/conversations/{ours}") == 200, column

    def test_only_a_key_of_every_team_publishes_rules_and_templates(
        self, chorus: ChorusProcess
    ) -> None:
        admin_key = chorus.admin_key  # type: ignore[attr-defined]
        with httpx.Client(
            base_url=chorus.base_url,
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=30,
        ) as admin:
            staff(admin)
            before = admin.get("/v1/rules").json()
            rules = before["rules"]
            made = admin.post(
                "/v1/keys",
                json={"name": "growth marketer", "role": "marketer", "teams": ["growth"]},
            )
            assert made.status_code == 201, made.text
            growth = {"Authorization": f"Bearer {made.json()['secret']}"}
            keys = keys_by_column(admin)
            every = {"Authorization": f"Bearer {keys['marketer']}"}

            refused = admin.put("/v1/rules", json=rules, headers=growth)
            assert refused.status_code == 403, refused.text
            assert "the rule set is every team's" in refused.json()["detail"]
            assert admin.get("/v1/rules").json()["version"] == before["version"]
            period = {"rules": rules, "since": "2026-11-01T00:00:00Z"}
            assert admin.post("/v1/rules/simulate", json=period, headers=growth).status_code == 200
            assert admin.put("/v1/rules", json=rules, headers=every).status_code == 200

            refused = admin.put("/v1/templates/welcome", json=WELCOME, headers=growth)
            assert refused.status_code == 403, refused.text
            assert "a template is every team's" in refused.json()["detail"]
            assert admin.get("/v1/templates/welcome").status_code == 404
            made_by_every = admin.put("/v1/templates/welcome", json=WELCOME, headers=every)
            assert made_by_every.status_code == 201, made_by_every.text
            refused = admin.put("/v1/templates/welcome", json=WELCOME, headers=growth)
            assert refused.status_code == 403, refused.text
            preview = {"channel": "email", "context": {"first_name": "Ana"}}
            previewed = admin.post("/v1/templates/welcome/preview", json=preview, headers=growth)
            assert previewed.status_code not in (401, 403), previewed.text

    def test_only_a_key_of_every_team_defines_changes_or_deletes_segments_and_triggers(
        self, chorus: ChorusProcess
    ) -> None:
        admin_key = chorus.admin_key  # type: ignore[attr-defined]
        with httpx.Client(
            base_url=chorus.base_url,
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=30,
        ) as admin:
            staff(admin)
            made = admin.post(
                "/v1/keys",
                json={"name": "growth marketer", "role": "marketer", "teams": ["growth"]},
            )
            assert made.status_code == 201, made.text
            growth = {"Authorization": f"Bearer {made.json()['secret']}"}
            every = {"Authorization": f"Bearer {keys_by_column(admin)['marketer']}"}
            for kind, what, document in (
                ("segments", "a segment", SEGMENT),
                ("triggers", "a trigger", TRIGGER),
            ):
                one = f"/v1/{kind}/shared"
                refused = admin.post(
                    f"/v1/{kind}", json={"key": "shared", **document}, headers=growth
                )
                assert refused.status_code == 403, refused.text
                assert f"{what} is every team's" in refused.json()["detail"]
                assert admin.put(one, json=document, headers=growth).status_code == 403
                assert admin.get(one).status_code == 404  # nothing was defined
                created = admin.post(
                    f"/v1/{kind}", json={"key": "shared", **document}, headers=every
                )
                assert created.status_code == 201, created.text
                changed = {**document, "name": "Changed"}
                assert admin.put(one, json=changed, headers=growth).status_code == 403
                assert admin.delete(one, headers=growth).status_code == 403
                kept = admin.get(one, headers=growth)  # reading stays every marketer's
                assert (kept.status_code, kept.json()["name"]) == (200, document["name"]), kept.text
                assert admin.get(f"/v1/{kind}", headers=growth).status_code == 200
                assert admin.put(one, json=changed, headers=every).status_code == 200
                assert admin.delete(one, headers=every).status_code in (200, 204)
            counted = admin.get("/v1/segments/vip/count", headers=growth)
            assert counted.status_code not in (401, 403), counted.text


def teams_in(answer: httpx.Response) -> dict[str | None, int]:
    """Messages by team in a cost report grouped by team."""
    assert answer.status_code == 200, answer.text
    return {line["team"]: line["messages"] for line in answer.json()["lines"]}
