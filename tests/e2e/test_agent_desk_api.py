"""Agents, teams, the routing document and the agent's commands, over HTTP and NATS."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import nats
import pytest

from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from application.customer.change_consent import ChangeConsent
from application.customer.change_suppression import ChangeSuppression
from application.customer.upsert_customer import UpsertCustomer
from domain.conversation.aggregate import Conversation, ConversationStatus
from domain.conversation.routing import RoutingDecision
from domain.conversation.vocabulary import Priority
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.policy.vocabulary import Channel, Purpose
from tests.unit.in_memory_chorus import claim

if TYPE_CHECKING:
    from uuid import UUID

    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
ROUTING = {
    "default_team": "support",
    "rules": [{"id": "refunds", "intents": ["refund"], "team": "billing", "skills": ["billing"]}],
}


def client(chorus: ChorusProcess, key: str | None = None) -> httpx.Client:
    secret = key or chorus.admin_key  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def staffed(chorus: ChorusProcess) -> dict[str, str]:
    """Ana on support, Bruno on billing, the clock at NOW; their agent keys by agent."""
    with client(chorus) as http:
        http.post("/v1/admin/clock", json={"set": NOW.isoformat()}).raise_for_status()
        for agent, team in (("ana.silva", "support"), ("bruno.costa", "billing")):
            body = {"key": agent, "name": agent, "skills": [team], "capacity": {"chat": 3}}
            assert http.post("/v1/agents", json=body).status_code == 201
            assert http.post("/v1/teams", json={"key": team, "name": team}).status_code == 201
            assert http.put(f"/v1/teams/{team}/members/{agent}").status_code == 200
    return {
        agent: chorus.chorus("keys", "create", "--role", "agent", "--agent", agent)
        for agent in ("ana.silva", "bruno.costa")
    }


async def customer_wrote(
    database_url: str, channel: Channel, at: datetime = NOW, *, suppressed: bool = False
) -> UUID:
    """Ana Pereira wrote on `channel` at `at`; her conversation is in support's queue."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        uows, clock, ids = PostgresUnitsOfWork(pool), ManualClock(NOW), RandomIds()
        records = PostgresCustomerRecords(pool)
        emails = (claim("email", "ana.pereira@example.org"), claim("phone", "+447700900123"))
        customer_id = (await UpsertCustomer(uows, clock, ids)(emails, {}, {})).customer_id
        opted_in = ConsentRecord(Channel.WHATSAPP, Purpose.SERVICE, True, "wrote to us")
        await ChangeConsent(uows, clock, records)(customer_id, [opted_in])
        if suppressed:
            await ChangeSuppression(uows, clock, records)(
                customer_id, channel, "carrier complaint", active=True
            )
        async with uows() as uow:
            customer = (await uow.repository(Customer).get([customer_id]))[customer_id]
            customer.note_inbound(channel, at, NOW)
            uow.repository(Customer).add(customer)
            conversation = Conversation.start(customer_id, "customer", NOW)
            conversation.receive(ids.new_id(), channel, "Where is my refund?", at, NOW)
            queued = RoutingDecision(
                1, "support", None, Priority.NORMAL, False, frozenset(), None, ()
            )
            conversation.apply_routing(queued, "router", NOW)
            uow.repository(Conversation).add(conversation)
        return conversation.id
    finally:
        await pool.close()


async def woken(database_url: str, conversation_id: UUID, seconds: float = 10) -> bool:
    """Whether the snooze timer woke the conversation within `seconds`."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        uows = PostgresUnitsOfWork(pool)
        for _ in range(int(seconds / 0.2)):
            async with uows() as uow:
                found = await uow.repository(Conversation).get([conversation_id])
            if found[conversation_id].status is ConversationStatus.WAITING_ON_US:
                return True
            await asyncio.sleep(0.2)
        return False
    finally:
        await pool.close()


class TestStaffOverHttp:
    def test_agents_and_teams_are_data_and_a_bad_body_names_its_field(
        self, chorus: ChorusProcess
    ) -> None:
        staffed(chorus)
        with client(chorus) as http:
            ana = http.get("/v1/agents/ana.silva").json()
            assert (ana["teams"], ana["capacity"], ana["presence"]) == (
                ["support"],
                {"chat": 3},
                "offline",
            )
            hours = {
                "working_hours": {
                    "time_zone": "Europe/Lisbon",
                    "windows": [{"days": ["mon"], "start": "09:00", "end": "18:00"}],
                }
            }
            assert http.put("/v1/teams/support/working_hours", json=hours).status_code == 200
            assert http.get("/v1/teams/support").json()["working_hours"] == hours["working_hours"]
            bad = http.put("/v1/agents/ana.silva/capacity", json={"capacity": {"fax": 1}})
            assert bad.status_code == 400
            assert bad.json()["errors"][0]["field"].startswith("$.capacity")
            taken = http.post("/v1/teams", json={"key": "support", "name": "Other"})
            assert taken.status_code == 409
            assert [a["key"] for a in http.get("/v1/agents").json()["items"]] == [
                "ana.silva",
                "bruno.costa",
            ]

    def test_an_agent_key_changes_its_own_presence_only(self, chorus: ChorusProcess) -> None:
        keys = staffed(chorus)
        with client(chorus, keys["ana.silva"]) as http:
            mine = http.put("/v1/agents/ana.silva/presence", json={"presence": "available"})
            assert mine.status_code == 200
            assert mine.json()["presence"] == "available"
            theirs = http.put("/v1/agents/bruno.costa/presence", json={"presence": "away"})
            assert theirs.status_code == 403


class TestRoutingOverHttp:
    def test_a_bad_document_names_each_path_and_nothing_is_published(
        self, chorus: ChorusProcess
    ) -> None:
        staffed(chorus)
        bad = {
            "default_team": "nowhere",
            "rules": [
                {"id": "a", "team": "billing", "overflow": {"team": "billing"}},
                {"id": "a", "team": "sales"},
            ],
        }
        with client(chorus) as http:
            assert http.get("/v1/routing").status_code == 404
            refused = http.put("/v1/routing", json=bad)
            assert refused.status_code == 422
            fields = {e["field"] for e in refused.json()["errors"]}
            assert fields == {
                "$.default_team",
                "$.rules[0].overflow.team",
                "$.rules[1].id",
                "$.rules[1].team",
            }
            assert http.get("/v1/routing").status_code == 404
            published = http.put("/v1/routing", json=ROUTING)
            assert published.status_code == 200
            assert published.json()["version"] == 1
            current = http.get("/v1/routing").json()
            assert current["routing"]["rules"][0]["team"] == "billing"
            assert http.get("/v1/routing/versions/1").json()["version"] == 1


class TestRepliesOverHttp:
    async def test_an_agent_of_another_team_gets_403_and_one_of_the_team_replies(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        keys = staffed(chorus)
        conversation = await customer_wrote(database_url, Channel.WHATSAPP)
        replies = f"/v1/conversations/{conversation}/replies"
        with client(chorus, keys["bruno.costa"]) as http:
            refused = http.post(replies, json={"text": "Hello"})
            assert refused.status_code == 403
            assert refused.json()["type"].endswith("/not-on-team")
        with client(chorus, keys["ana.silva"]) as http:
            headers = {"Idempotency-Key": "reply-1"}
            sent = http.post(replies, json={"text": "On its way"}, headers=headers)
            assert sent.status_code == 200, sent.text
            again = http.post(replies, json={"text": "On its way"}, headers=headers)
        answer = sent.json()
        assert (answer["sent"], answer["outcome"], answer["channel"]) == (True, "send", "whatsapp")
        assert answer["status"] == "waiting_on_customer"
        assert (again.json()["repeated"], again.json()["message_id"]) == (
            True,
            answer["message_id"],
        )

    async def test_a_suppressed_reply_answers_with_the_decision_and_nothing_goes(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        keys = staffed(chorus)
        conversation = await customer_wrote(database_url, Channel.SMS, suppressed=True)
        with client(chorus, keys["ana.silva"]) as http:
            answer = http.post(f"/v1/conversations/{conversation}/replies", json={"text": "Hi"})
            assert answer.status_code == 200
            body = answer.json()
            assert (body["sent"], body["outcome"]) == (False, "suppress")
            assert body["decision"]["fired"]
            trace = http.get(f"/v1/messages/{body['message_id']}").json()
            assert (trace["status"], trace["queued_at"], trace["provider"]) == (
                "suppressed",
                None,
                None,
            )

    async def test_outside_the_whatsapp_window_the_answer_asks_for_a_template(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        keys = staffed(chorus)
        yesterday = NOW - timedelta(hours=25)
        conversation = await customer_wrote(database_url, Channel.WHATSAPP, yesterday)
        with client(chorus, keys["ana.silva"]) as http:
            answer = http.post(f"/v1/conversations/{conversation}/replies", json={"text": "Hi"})
        assert answer.status_code == 422
        body = answer.json()
        assert body["type"].endswith("/template-needed")
        assert (body["channel"], body["templates"]) == ("whatsapp", [])
        assert body["errors"][0]["field"] == "$.template"


class TestCommandsOverNats:
    async def test_commands_are_answered_with_the_http_answer_or_the_reason(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        staffed(chorus)
        conversation = await customer_wrote(database_url, Channel.EMAIL)
        nc = await nats.connect(chorus.nats_url)
        try:

            async def ask(command: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
                subject = f"{chorus.subject_prefix}.cmd.conversations.{command}"
                reply = await nc.request(subject, json.dumps(body).encode(), timeout=10)
                return int((reply.headers or {})["Chorus-Status"]), json.loads(reply.data)

            status, note = await ask(
                "note", {"conversation_id": str(conversation), "agent": "ana.silva", "text": "VIP"}
            )
            assert (status, note["author"]) == (200, "ana.silva")
            status, refused = await ask(
                "resolve", {"conversation_id": str(conversation), "agent": "bruno.costa"}
            )
            assert (status, refused["type"].rpartition("/")[2]) == (403, "not-on-team")
            status, bad = await ask("snooze", {"conversation_id": str(conversation)})
            assert status == 400
            assert bad["errors"][0]["field"] == "$.until"
            status, missing = await ask("reopen", {"reason": "x"})
            assert (status, missing["errors"][0]["field"]) == (400, "$.conversation_id")
            until = (NOW + timedelta(hours=2)).isoformat()
            status, snoozed = await ask(
                "snooze", {"conversation_id": str(conversation), "until": until}
            )
            assert (status, snoozed["status"]) == (200, "snoozed")
            with client(chorus) as http:
                later = (NOW + timedelta(hours=3)).isoformat()
                http.post("/v1/admin/clock", json={"set": later}).raise_for_status()
            assert await woken(database_url, conversation)
            status, resolved = await ask(
                "resolve", {"conversation_id": str(conversation), "agent": "ana.silva"}
            )
            assert (status, resolved["status"]) == (200, "resolved")
        finally:
            await nc.close()

    async def test_a_key_carried_acts_as_it_does_over_http(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        keys = staffed(chorus)
        conversation = str(await customer_wrote(database_url, Channel.EMAIL))  # support's
        billing_key = chorus.chorus("keys", "create", "--role", "service", "--team", "billing")
        nc = await nats.connect(chorus.nats_url)
        try:

            async def ask(body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
                subject = f"{chorus.subject_prefix}.cmd.conversations.note"
                reply = await nc.request(
                    subject, json.dumps(body).encode(), timeout=10, headers={"Chorus-Key": key}
                )
                return int((reply.headers or {})["Chorus-Status"]), json.loads(reply.data)

            note = {"conversation_id": conversation, "text": "VIP"}
            # Bruno's key may not act as Ana, whom the body names
            status, refused = await ask({**note, "agent": "ana.silva"}, keys["bruno.costa"])
            assert (status, refused["errors"][0]["field"]) == (403, "$.agent")
            # As Bruno it is support's conversation, not his team's: as over HTTP
            status, refused = await ask(note, keys["bruno.costa"])
            with client(chorus, keys["bruno.costa"]) as http:
                over_http = http.post(
                    f"/v1/conversations/{conversation}/notes", json={"text": "VIP"}
                )
            assert (status, over_http.status_code) == (403, 403)
            assert refused["type"] == over_http.json()["type"]
            # A service key of billing reaches no support conversation, naming Ana or not
            for body in (note, {**note, "agent": "ana.silva"}):
                status, refused = await ask(body, billing_key)
                assert (status, refused["type"].rpartition("/")[2]) == (403, "not-on-team")
            status, noted = await ask(note, keys["ana.silva"])
            assert (status, noted["author"]) == (200, "ana.silva")
        finally:
            await nc.close()
