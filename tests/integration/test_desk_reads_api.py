"""What supervisors read over HTTP on PostgreSQL: an agent's load per channel kind beside their
capacity, and the conversations nobody holds (`assigned=false`), page by page."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest
from litestar.testing import AsyncTestClient

from adapters.postgres.api_keys import PostgresApiKeyStore
from adapters.system.ids import RandomIds
from domain.conversation.aggregate import ActingAgent, Conversation
from domain.conversation.vocabulary import ChannelKind
from domain.policy.vocabulary import Channel
from entrypoints.http.app import create_app
from entrypoints.ioc import make_container
from entrypoints.settings import Settings
from ports.api_keys import Role
from ports.inbox import InboxFilter
from tests.integration.test_inbox import Desk

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from uuid import UUID

    import asyncpg
    import httpx

pytestmark = pytest.mark.integration

ANA = ActingAgent("ana", frozenset({"support", "billing"}))


async def staffed_desk(pool: asyncpg.Pool) -> tuple[Desk, list[UUID]]:
    """Ana (3 chats, 2 emails) on support and billing, holding two chats and an email; three
    email conversations waiting in support's queue, one in no team yet, one resolved. The
    waiting ones, the latest change first."""
    desk = Desk(pool)
    await desk.routing()
    await desk.staff("ana", {ChannelKind.CHAT: 3, ChannelKind.EMAIL: 2})
    customer = await desk.customer("rui@example.org")
    for n, channel in enumerate((Channel.CHAT, Channel.WHATSAPP, Channel.EMAIL)):
        held = await desk.conversation(customer, channel, topic=f"held{n}")
        await desk.change(held, ("assign", (ANA, "support", "picked", "ana", desk.clock.now())))
    queued = [await desk.conversation(customer, Channel.EMAIL, topic=f"q{n}") for n in range(3)]
    done = await desk.conversation(customer, Channel.SMS, topic="done")
    await desk.change(done, ("resolve", ("answered", "admin", desk.clock.now())))
    now = desk.clock.now()
    unrouted = Conversation.start(customer, "customer", now, "new")
    unrouted.receive(uuid4(), Channel.SMS, "hello", now, now)
    async with desk.uows() as uow:
        uow.repository(Conversation).add(unrouted)
    await desk.settle()
    return desk, [unrouted.id, *reversed(queued)]


@contextlib.asynccontextmanager
async def supervising(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The service's own HTTP app on this database, read with an admin key."""
    settings = Settings.from_env({"DATABASE_URL": database_url, "CHORUS_CLOCK": "manual"})
    keys = PostgresApiKeyStore(pool, Desk(pool).clock, RandomIds())
    admin = await keys.create(Role.ADMIN, "supervisor")
    container = make_container(settings)
    try:
        app = create_app(container, settings)
        async with AsyncTestClient(app) as http:
            http.headers["Authorization"] = f"Bearer {admin.secret}"
            yield http
    finally:
        await container.close()


class TestAnAgentsLoad:
    async def test_an_agent_shows_what_they_hold_of_each_kind_beside_their_capacity(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        await staffed_desk(pool)
        async with supervising(pool, database_url) as http:
            one = await http.get("/v1/agents/ana")
            every = await http.get("/v1/agents")
        assert one.status_code == 200, one.text
        assert one.json()["load"] == {
            "chat": {"held": 2, "capacity": 3},
            "email": {"held": 1, "capacity": 2},
        }
        assert one.json()["capacity"] == {"chat": 3, "email": 2}
        assert [agent["load"] for agent in every.json()["items"]] == [one.json()["load"]]


class TestUnassignedConversations:
    async def test_assigned_false_lists_what_waits_for_an_agent_page_by_page(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        desk, waiting = await staffed_desk(pool)
        # The stream's read keeps to the filter too, oldest change first.
        changes = await desk.inbox.changed_since(0, InboxFilter(assigned=False), None)
        assert [row.conversation_id for row in changes] == list(reversed(waiting))
        seen: list[str] = []
        async with supervising(pool, database_url) as http:
            path = "/v1/conversations?assigned=false&limit=2"
            while True:
                page = await http.get(path)
                assert page.status_code == 200, page.text
                seen += [item["id"] for item in page.json()["items"]]
                assert all(item["agent"] is None for item in page.json()["items"])
                cursor = page.json()["next_cursor"]
                if cursor is None:
                    break
                path = f"/v1/conversations?assigned=false&limit=2&after={cursor}"
            queue = await http.get("/v1/conversations?assigned=false&team=support")
            held = await http.get("/v1/conversations?assigned=true")
            refused = await http.get("/v1/conversations?assigned=maybe")
        assert seen == [str(thread) for thread in waiting]
        assert [item["id"] for item in queue.json()["items"]] == seen[1:]
        assert {item["agent"] for item in held.json()["items"]} == {"ana"}
        assert len(held.json()["items"]) == 3
        assert refused.status_code == 400
        assert "assigned" in refused.text


class TestRepeatedFilters:
    async def test_a_filter_given_twice_is_a_400_naming_it_on_every_list(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        await staffed_desk(pool)
        async with supervising(pool, database_url) as http:
            refused = {
                path: await http.get(path)
                for path in (
                    "/v1/conversations?status=open&status=resolved",
                    "/v1/conversations?team=support&limit=2&limit=3",
                    "/v1/customers/search?segment=a&segment=b",
                    "/v1/campaigns?status=active&status=draft",
                )
            }
            # A parameter that takes a list may repeat.
            listed = await http.get(
                "/v1/customers/search?attribute=city:Lisbon&attribute=tier:gold"
            )
        fields = {
            path: (answer.status_code, answer.json()["type"].rpartition("/")[2], answer.json())
            for path, answer in refused.items()
        }
        expected = ["status", "limit", "segment", "status"]
        for (path, (status, slug, body)), field in zip(fields.items(), expected, strict=True):
            assert (status, slug) == (400, "invalid-request"), (path, body)
            assert body["errors"] == [
                {"field": f"query.{field}", "reason": "is given 2 times: it takes one value"}
            ]
        assert listed.status_code == 200, listed.text


class TestRefusedSpans:
    async def test_a_breach_within_that_is_no_span_is_a_400_naming_the_query_parameter(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        async with supervising(pool, database_url) as http:
            answers = {
                value: await http.get("/v1/conversations", params={"breach_within": value})
                for value in ("abc", "-5m", "367d", "", "1" * 41)
            }
            kept = await http.get("/v1/conversations", params={"breach_within": "366d"})
        assert kept.status_code == 200, kept.text
        for value, answer in answers.items():
            body = answer.json()
            assert (answer.status_code, body["type"].rpartition("/")[2]) == (
                400,
                "invalid-request",
            ), (value, body)
            assert [error["field"] for error in body["errors"]] == ["query.breach_within"]
        assert answers["abc"].json()["errors"][0]["reason"].startswith("'abc' is not a duration")
        assert answers["367d"].json()["errors"][0]["reason"] == "at most 366d"
