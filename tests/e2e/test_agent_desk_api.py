"""Agents, teams, the routing document and the agent's commands, over HTTP and NATS."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from dataclasses import dataclass
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


@pytest.fixture(scope="module")
def chorus(shared_chorus: ChorusProcess) -> ChorusProcess:
    """The module's tests share one service, its clock at NOW: each names its own agents, teams
    and customers."""
    return shared_chorus


NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
ROUTING = {
    "default_team": "support",
    "rules": [{"id": "refunds", "intents": ["refund"], "team": "billing", "skills": ["billing"]}],
}


def client(chorus: ChorusProcess, key: str | None = None) -> httpx.Client:
    secret = key or chorus.admin_key  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


@dataclass(frozen=True)
class Staff:
    """Ana on support and Bruno on billing, as this test names them, with their agent keys."""

    ana: str
    bruno: str
    support: str
    billing: str
    ana_key: str
    bruno_key: str


def staffed(chorus: ChorusProcess, suffix: str = "") -> Staff:
    """Ana on support, Bruno on billing, the clock at NOW; agents and teams are the whole
    service's, so a test sharing it names them with a suffix of its own."""
    ana, bruno, support, billing = (
        name + suffix for name in ("ana.silva", "bruno.costa", "support", "billing")
    )
    with client(chorus) as http:
        http.post("/v1/admin/clock", json={"set": NOW.isoformat()}).raise_for_status()
        for agent, team in ((ana, support), (bruno, billing)):
            body = {"key": agent, "name": agent, "skills": [team], "capacity": {"chat": 3}}
            assert http.post("/v1/agents", json=body).status_code == 201
            assert http.post("/v1/teams", json={"key": team, "name": team}).status_code == 201
            assert http.put(f"/v1/teams/{team}/members/{agent}").status_code == 200
    return Staff(
        ana,
        bruno,
        support,
        billing,
        chorus.key("agent", agent=ana),
        chorus.key("agent", agent=bruno),
    )


def own_staff(chorus: ChorusProcess) -> Staff:
    return staffed(chorus, f"-{uuid.uuid4().hex[:8]}")


def database(chorus: ChorusProcess) -> str:
    return chorus.env["DATABASE_URL"]


_PHONES = itertools.count(100)  # one service per module at most: unique within it


async def customer_wrote(
    chorus: ChorusProcess,
    channel: Channel,
    at: datetime = NOW,
    *,
    team: str = "support",
    suppressed: bool = False,
) -> UUID:
    """A customer of the test's own wrote on `channel` at `at`; her conversation is in
    `team`'s queue."""
    pool = await asyncpg.create_pool(database(chorus), min_size=1, max_size=2)
    try:
        uows, clock, ids = PostgresUnitsOfWork(pool), ManualClock(NOW), RandomIds()
        records = PostgresCustomerRecords(pool)
        email = f"ana.pereira.{uuid.uuid4().hex[:8]}@example.org"
        emails = (claim("email", email), claim("phone", f"+447700900{next(_PHONES):03d}"))
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
            queued = RoutingDecision(1, team, None, Priority.NORMAL, False, frozenset(), None, ())
            conversation.apply_routing(queued, "router", NOW)
            uow.repository(Conversation).add(conversation)
        return conversation.id
    finally:
        await pool.close()


async def woken(chorus: ChorusProcess, conversation_id: UUID, seconds: float = 10) -> bool:
    """Whether the snooze timer woke the conversation within `seconds`."""
    pool = await asyncpg.create_pool(database(chorus), min_size=1, max_size=1)
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
        self, alone: ChorusProcess
    ) -> None:
        staffed(alone)  # it lists every agent: a service of its own
        with client(alone) as http:
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
        staff = own_staff(chorus)
        with client(chorus, staff.ana_key) as http:
            mine = http.put(f"/v1/agents/{staff.ana}/presence", json={"presence": "available"})
            assert mine.status_code == 200
            assert mine.json()["presence"] == "available"
            theirs = http.put(f"/v1/agents/{staff.bruno}/presence", json={"presence": "away"})
            assert theirs.status_code == 403


class TestRoutingOverHttp:
    def test_a_bad_document_names_each_path_and_nothing_is_published(
        self, alone: ChorusProcess
    ) -> None:
        staffed(alone)  # the routing document is the whole service's: a service of its own
        bad = {
            "default_team": "nowhere",
            "rules": [
                {"id": "a", "team": "billing", "overflow": {"team": "billing"}},
                {"id": "a", "team": "sales"},
            ],
        }
        with client(alone) as http:
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
        self, chorus: ChorusProcess
    ) -> None:
        staff = own_staff(chorus)
        conversation = await customer_wrote(chorus, Channel.WHATSAPP, team=staff.support)
        replies = f"/v1/conversations/{conversation}/replies"
        with client(chorus, staff.bruno_key) as http:
            refused = http.post(replies, json={"text": "Hello"})
            assert refused.status_code == 403
            assert refused.json()["type"].endswith("/not-on-team")
        with client(chorus, staff.ana_key) as http:
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
        self, chorus: ChorusProcess
    ) -> None:
        staff = own_staff(chorus)
        conversation = await customer_wrote(
            chorus, Channel.SMS, team=staff.support, suppressed=True
        )
        with client(chorus, staff.ana_key) as http:
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
        self, chorus: ChorusProcess
    ) -> None:
        staff = own_staff(chorus)
        yesterday = NOW - timedelta(hours=25)
        conversation = await customer_wrote(chorus, Channel.WHATSAPP, yesterday, team=staff.support)
        with client(chorus, staff.ana_key) as http:
            answer = http.post(f"/v1/conversations/{conversation}/replies", json={"text": "Hi"})
        assert answer.status_code == 422
        body = answer.json()
        assert body["type"].endswith("/template-needed")
        assert (body["channel"], body["templates"]) == ("whatsapp", [])
        assert body["errors"][0]["field"] == "$.template"


class TestCommandsOverNats:
    async def test_commands_are_answered_with_the_http_answer_or_the_reason(
        self, alone: ChorusProcess
    ) -> None:
        chorus = alone  # it moves the clock: a service of its own
        staffed(chorus)
        conversation = await customer_wrote(chorus, Channel.EMAIL)
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
            assert await woken(chorus, conversation)
            status, resolved = await ask(
                "resolve", {"conversation_id": str(conversation), "agent": "ana.silva"}
            )
            assert (status, resolved["status"]) == (200, "resolved")
        finally:
            await nc.close()

    async def test_a_key_carried_acts_as_it_does_over_http(self, chorus: ChorusProcess) -> None:
        staff = own_staff(chorus)
        conversation = str(await customer_wrote(chorus, Channel.EMAIL, team=staff.support))
        billing_key = chorus.key("service", teams=(staff.billing,))
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
            status, refused = await ask({**note, "agent": staff.ana}, staff.bruno_key)
            assert (status, refused["errors"][0]["field"]) == (403, "$.agent")
            # As Bruno it is support's conversation, not his team's: as over HTTP
            status, refused = await ask(note, staff.bruno_key)
            with client(chorus, staff.bruno_key) as http:
                over_http = http.post(
                    f"/v1/conversations/{conversation}/notes", json={"text": "VIP"}
                )
            assert (status, over_http.status_code) == (403, 403)
            assert refused["type"] == over_http.json()["type"]
            # A service key of billing reaches no support conversation, naming Ana or not
            for body in (note, {**note, "agent": staff.ana}):
                status, refused = await ask(body, billing_key)
                assert (status, refused["type"].rpartition("/")[2]) == (403, "not-on-team")
            status, noted = await ask(note, staff.ana_key)
            assert (status, noted["author"]) == (200, staff.ana)
        finally:
            await nc.close()
