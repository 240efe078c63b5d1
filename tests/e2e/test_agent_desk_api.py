"""Agents, teams, the routing document and the agent's commands, over HTTP and NATS."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
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
from tests.e2e.conftest import module_chorus
from tests.unit.in_memory_chorus import claim

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from uuid import UUID

    from tests.e2e.service import ChorusProcess
    from tests.servers import TestDatabases

pytestmark = pytest.mark.e2e


UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing answers there
PROVIDERS = json.dumps(
    [
        {"name": "email", "type": "email_api", "base_url": UNREACHABLE, "api_key": "k",
         "webhook_secret": "s", "sender": "help@shop.example"},
        {"name": "sms", "type": "twilio", "base_url": UNREACHABLE, "account_sid": "AC1",
         "auth_token": "t", "from_number": "+15005550006"},
        {"name": "whatsapp", "type": "whatsapp_cloud", "base_url": UNREACHABLE,
         "phone_number_id": "1", "access_token": "t", "app_secret": "s"},
    ]
)  # fmt: skip
"""Providers for the channels the replies here go on (none for chat or voice): a reply is
decided and queued for them; none of them is ever reached."""


@pytest.fixture(scope="module")
async def chorus(
    databases: TestDatabases, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ChorusProcess]:
    """The module's tests share one service, its clock at NOW, with providers for email, SMS
    and WhatsApp: each names its own agents, teams and customers."""
    async with module_chorus(
        databases, nats_url, tmp_path_factory, {"CHORUS_PROVIDERS": PROVIDERS}
    ) as service:
        yield service


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
            # A field refused is named by its whole path: a channel kind, a time zone.
            refusals = [
                ("put", "/v1/agents/ana.silva/capacity", {"capacity": {"fax": 1}}, "fax"),
                ("put", "/v1/agents/ana.silva/capacity", {"capacity": {"chat": "x"}}, "chat"),
                ("post", "/v1/agents", {"key": "x", "name": "X", "capacity": {"fax": 1}}, "fax"),
                ("post", "/v1/agents", {"key": "x", "name": "X", "capacity": {"chat": -1}}, "chat"),
            ]
            for method, path, body, kind in refusals:
                bad = http.request(method, path, json=body)
                assert bad.status_code == 400, bad.text
                assert [e["field"] for e in bad.json()["errors"]] == [f"$.capacity.{kind}"]
            mars = {"time_zone": "Mars/Base", "windows": hours["working_hours"]["windows"]}
            bad = http.post("/v1/teams", json={"key": "x", "name": "X", "working_hours": mars})
            assert bad.status_code == 400, bad.text
            assert bad.json()["errors"] == [
                {
                    "field": "$.working_hours.time_zone",
                    "reason": "'Mars/Base' is not an IANA time zone, e.g. Europe/Lisbon or UTC",
                }
            ]
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
            sla = {"first_response": {"chat": "2m", "email": 4}, "next_response": ["chat"]}
            refused = http.put("/v1/routing", json={"default_team": "support", "sla": sla})
            assert refused.status_code == 422
            assert [e["field"] for e in refused.json()["errors"]] == ["$.sla.first_response.email"]
            nope = {"id": "x", "team": "support", "when": {"type": "nope"}}
            refused = http.put("/v1/routing", json={"default_team": "support", "rules": [nope]})
            assert refused.status_code == 422
            [error] = refused.json()["errors"]
            assert error["field"] == "$.rules[0].when.type"
            assert error["reason"].startswith("'nope' is not a condition type: use all, any, not,")
            huge = {"op": "gte", "value": 99999999999999999999}  # past 64 bits
            repeat = {"id": "x", "team": "support", "open_conversations": huge}
            refused = http.put("/v1/routing", json={"default_team": "support", "rules": [repeat]})
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"] == [
                {"field": "$.rules[0].open_conversations.value", "reason": "at most 2,147,483,647"}
            ]
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


def eventually(read: Any, holds: Any, seconds: float = 15.0) -> Any:
    """What `read()` answers once `holds` says yes of it (the inbox projection catching up)."""
    deadline = time.monotonic() + seconds
    while True:
        found = read()
        if holds(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


async def nats_command(chorus: ChorusProcess, command: str, body: dict[str, Any]) -> Any:
    nc = await nats.connect(chorus.nats_url)
    try:
        subject = f"{chorus.subject_prefix}.cmd.conversations.{command}"
        reply = await nc.request(subject, json.dumps(body).encode(), timeout=10)
        return int((reply.headers or {})["Chorus-Status"]), json.loads(reply.data)
    finally:
        await nc.close()


class TestRepliesOnChannelsNoProviderServes:
    @pytest.mark.parametrize("channel", ["voice", "chat"])
    async def test_a_reply_is_refused_up_front_over_http_and_nats(
        self, chorus: ChorusProcess, channel: str
    ) -> None:
        staff = own_staff(chorus)
        conversation = await customer_wrote(chorus, Channel.EMAIL, team=staff.support)
        body = {"text": "hi", "channel": channel}
        with client(chorus, staff.ana_key) as http:
            refused = http.post(f"/v1/conversations/{conversation}/replies", json=body)
            thread = http.get(f"/v1/conversations/{conversation}").json()
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["type"].endswith("/channel-unavailable")
        assert problem["errors"][0]["field"] == "$.channel"
        assert f"no provider serves {channel}" in problem["errors"][0]["reason"]
        assert (problem["channel"], problem["channels"]) == (channel, ["email", "sms", "whatsapp"])
        assert thread["status"] == "waiting_on_us"
        assert [m["direction"] for m in thread["thread"]] == ["inbound"]
        status, over_nats = await nats_command(
            chorus, "reply", {**body, "conversation_id": str(conversation)}
        )
        assert status == 422
        assert {k: over_nats[k] for k in ("type", "errors", "channel", "channels")} == {
            k: problem[k] for k in ("type", "errors", "channel", "channels")
        }


class TestTagsAndPriority:
    async def test_an_agent_tags_and_prioritises_and_the_inbox_shows_and_filters_it(
        self, chorus: ChorusProcess
    ) -> None:
        staff = own_staff(chorus)
        conversation = await customer_wrote(chorus, Channel.EMAIL, team=staff.support)
        tags = f"/v1/conversations/{conversation}/tags"
        priority = f"/v1/conversations/{conversation}/priority"
        tag = f"vip-{staff.support[-8:]}"
        with client(chorus, staff.ana_key) as http:
            tagged = http.post(tags, json={"tags": [tag, "refund"]})
            again = http.post(tags, json={"add": [tag]})
            urgent = http.post(priority, json={"priority": "urgent", "reason": "VIP"})
            same = http.post(priority, json={"priority": "urgent"})
            assert tagged.status_code == 200, tagged.text
            assert tagged.json() == {
                "conversation_id": str(conversation),
                "tags": sorted([tag, "refund"]),
                "priority": "normal",
                "changed": True,
            }
            assert again.json()["changed"] is False
            assert (urgent.json()["priority"], urgent.json()["changed"]) == ("urgent", True)
            assert same.json()["changed"] is False
            detail = http.get(f"/v1/conversations/{conversation}").json()
            assert (sorted(detail["tags"]), detail["priority"]) == (
                sorted([tag, "refund"]),
                "urgent",
            )
            listed = eventually(
                lambda: http.get("/v1/conversations", params={"tag": tag}).json()["items"],
                lambda items: len(items) == 1 and items[0]["priority"] == "urgent",
            )
            assert [(i["id"], sorted(i["tags"])) for i in listed] == [
                (str(conversation), sorted([tag, "refund"]))
            ]
            unresolved = http.get(
                "/v1/conversations", params={"status": "unresolved", "team": staff.support}
            ).json()["items"]
            assert [i["id"] for i in unresolved] == [str(conversation)]
            opened = http.get(
                "/v1/conversations", params={"status": "open", "team": staff.support}
            ).json()["items"]
            assert opened == []
        with client(chorus, staff.bruno_key) as http:
            refused = http.post(tags, json={"add": ["mine"]})
            assert (refused.status_code, refused.json()["type"].rpartition("/")[2]) == (
                403,
                "not-on-team",
            )
            assert http.post(priority, json={"priority": "low"}).status_code == 403
        status, over_nats = await nats_command(
            chorus,
            "tags",
            {"conversation_id": str(conversation), "agent": staff.ana, "remove": ["refund"]},
        )
        assert (status, over_nats["tags"], over_nats["changed"]) == (200, [tag], True)

    async def test_tags_are_refused_naming_the_field(self, chorus: ChorusProcess) -> None:
        staff = own_staff(chorus)
        conversation = await customer_wrote(chorus, Channel.EMAIL, team=staff.support)
        tags = f"/v1/conversations/{conversation}/tags"
        with client(chorus, staff.ana_key) as http:
            charset = http.post(tags, json={"tags": ["ok", "Not A Key"]})
            count = http.post(tags, json={"add": [f"t{n}" for n in range(21)]})
            both = http.post(tags, json={"tags": ["a"], "add": ["b"]})
        assert (charset.status_code, charset.json()["errors"][0]["field"]) == (400, "$.tags[1]")
        assert (count.status_code, count.json()["errors"][0]["field"]) == (400, "$.add")
        assert (both.status_code, both.json()["errors"][0]["field"]) == (422, "$.tags")


class TestOneAnswerForOneFault:
    async def test_resolve_and_reopen_take_no_body(self, chorus: ChorusProcess) -> None:
        staff = own_staff(chorus)
        conversation = await customer_wrote(chorus, Channel.EMAIL, team=staff.support)
        with client(chorus, staff.ana_key) as http:
            resolved = http.post(f"/v1/conversations/{conversation}/resolve")
            reopened = http.post(f"/v1/conversations/{conversation}/reopen", content=b"")
        assert (resolved.status_code, resolved.json()["status"]) == (200, "resolved"), resolved.text
        assert (reopened.status_code, reopened.json()["status"]) == (200, "waiting_on_us")

    async def test_a_snooze_is_refused_alike_over_http_and_nats(
        self, chorus: ChorusProcess
    ) -> None:
        staff = own_staff(chorus)
        conversation = await customer_wrote(chorus, Channel.EMAIL, team=staff.support)
        snooze = f"/v1/conversations/{conversation}/snooze"
        for until, reason in ((7, "a time to come"), ("9999-12-31T23:59:59Z", "at most 365 days")):
            with client(chorus, staff.ana_key) as http:
                refused = http.post(snooze, json={"until": until})
            status, over_nats = await nats_command(
                chorus, "snooze", {"conversation_id": str(conversation), "until": until}
            )
            assert (refused.status_code, status) == (422, 422), refused.text
            assert refused.json()["errors"] == over_nats["errors"]
            assert over_nats["errors"][0]["field"] == "$.until"
            assert reason in over_nats["errors"][0]["reason"]

    async def test_a_conversation_held_by_another_is_a_409_naming_agent_as_a_path(
        self, chorus: ChorusProcess
    ) -> None:
        staff = own_staff(chorus)
        conversation = await customer_wrote(chorus, Channel.WHATSAPP, team=staff.support)
        with client(chorus) as http:
            body = {"agent": staff.ana, "reason": "first", "team": staff.support}
            assert http.post(f"/v1/conversations/{conversation}/assign", json=body).is_success
            http.put(f"/v1/teams/{staff.support}/members/{staff.bruno}").raise_for_status()
            taken = http.post(
                f"/v1/conversations/{conversation}/assign",
                json={"agent": staff.bruno, "reason": "mine"},
            )
        assert taken.status_code == 409, taken.text
        assert taken.json()["errors"][0]["field"] == "$.agent"
