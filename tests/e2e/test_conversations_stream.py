"""The inbox against a running service: a conversation written to the log shows on the live
stream, which resumes after `Last-Event-ID`; the list and the thread read it; an SLA breach
fires when the manual clock passes its deadline, with no new traffic, and streams; an open
stream follows its key's reach: an agent taken off a team gets no more of its conversations,
and a revoked key's stream ends."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from adapters.postgres.api_keys import CACHE_SECONDS, PostgresApiKeyStore
from adapters.postgres.manual_clock import PostgresClockStore
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from domain.conversation.aggregate import Conversation
from domain.conversation.routing_book import RoutingBook
from domain.conversation.routing_reader import decode_routing
from domain.customer.aggregate import Customer
from domain.customer.identities import IdentityClaim, IdentityNormalizer, Verification
from domain.policy.vocabulary import Channel
from entrypoints.http.controllers.conversations import HEARTBEAT_SECONDS
from entrypoints.http.principal import REACH_SECONDS
from ports.api_keys import NewApiKey, Role

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e
NOW = datetime(2030, 1, 7, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def chorus(shared_chorus: ChorusProcess) -> ChorusProcess:
    """The module's tests share one service, each with agents, teams and conversations of its
    own, unless they need one of their own (`alone`)."""
    return shared_chorus


def headers(chorus: ChorusProcess, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {chorus.admin_key}", **more}  # type: ignore[attr-defined]


async def write(database_url: str, *aggregates: Any) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        async with PostgresUnitsOfWork(pool)() as uow:
            for aggregate in aggregates:
                uow.repository(type(aggregate)).add(aggregate)
    finally:
        await pool.close()


def conversation(channel: Channel, team: str = "support") -> tuple[Customer, Conversation]:
    claim = IdentityClaim(
        IdentityNormalizer("GB").parse("email:ana@example.org"), Verification.UNVERIFIED
    )
    customer = Customer.register(uuid4(), NOW, (claim,))
    started = Conversation.start(customer.id, "customer", NOW)
    started.receive(uuid4(), channel, "where is my card?", NOW, NOW)
    started.transfer(team, None, "routed", "router", NOW)
    return customer, started


async def agent_key(database_url: str, agent: str) -> NewApiKey:
    """An agent key for `agent`, made as `chorus keys create --role agent` makes it."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        clock = ManualClock(await PostgresClockStore(pool).load())
        store = PostgresApiKeyStore(pool, clock, RandomIds())
        return await store.create(Role.AGENT, agent, agent=agent, by="e2e")
    finally:
        await pool.close()


async def inbox(client: httpx.AsyncClient, admin: dict[str, str]) -> set[str]:
    """The ids of the conversations the inbox lists."""
    answer = await client.get("/v1/conversations", headers=admin)
    return {item["id"] for item in answer.json()["items"]}


class Watching:
    """An open stream's conversation ids as they come, read in the background."""

    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self.client = client
        self.secret = secret
        self.seen: list[str] = []
        self.changed = asyncio.Condition()
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.secret}"}
        async with self.client.stream("GET", "/v1/conversations/stream", headers=headers) as sse:
            assert sse.status_code == 200
            async for line in sse.aiter_lines():
                if line.startswith("data:") and line[5:].strip():
                    async with self.changed:
                        self.seen.append(json.loads(line[5:])["id"])
                        self.changed.notify_all()

    async def until_seen(self, conversation_id: UUID, since: int) -> list[str]:
        """Every id seen after the first `since`, once `conversation_id` is among them."""
        async with asyncio.timeout(20), self.changed:
            await self.changed.wait_for(lambda: str(conversation_id) in self.seen[since:])
        return self.seen[since:]


async def events(
    client: httpx.AsyncClient, chorus: ChorusProcess, wanted: int, **more: str
) -> list[tuple[int, dict[str, Any]]]:
    """The first `wanted` conversation events of a stream opened now."""
    found: list[tuple[int, dict[str, Any]]] = []
    event_id = None
    async with client.stream(
        "GET", "/v1/conversations/stream", headers=headers(chorus, **more)
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        async for line in answer.aiter_lines():
            if line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("data:") and event_id is not None:
                found.append((event_id, json.loads(line[5:])))
                if len(found) == wanted:
                    return found
    return found


class TestTheLiveInbox:
    async def test_a_conversation_streams_resumes_and_breaches_on_the_manual_clock(
        self, alone: ChorusProcess
    ) -> None:
        chorus, database_url = alone, alone.env["DATABASE_URL"]
        async with httpx.AsyncClient(base_url=chorus.base_url, timeout=30) as client:
            clock = await client.post(
                "/v1/admin/clock", json={"set": NOW.isoformat()}, headers=headers(chorus)
            )
            clock.raise_for_status()
            book = RoutingBook.open(NOW)
            routing = {"default_team": "support", "sla": {"first_response": {"chat": "2m"}}}
            book.publish(decode_routing(routing, teams={"support"}, segments=set()), "a", NOW)
            await write(database_url, book)

            # From the start of this installation's inbox: a stream opened after the write
            # (a slow machine) still gives it.
            listening = asyncio.ensure_future(events(client, chorus, 1, **{"Last-Event-ID": "0"}))
            await asyncio.sleep(0.5)
            customer, started = conversation(Channel.WHATSAPP)
            await write(database_url, customer, started)
            ((first_id, first),) = await asyncio.wait_for(listening, 20)
            assert UUID(first["id"]) == started.id
            assert (first["status"], first["team"], first["channel"]) == (
                "waiting_on_us",
                "support",
                "whatsapp",
            )

            listed = await client.get("/v1/conversations?team=support", headers=headers(chorus))
            assert [item["id"] for item in listed.json()["items"]] == [str(started.id)]
            thread = await client.get(f"/v1/conversations/{started.id}", headers=headers(chorus))
            assert thread.status_code == 200
            assert thread.json()["customer"]["unverified_identity"] is True

            # Resumed from the start, the stream gives what it had given, then waits; the
            # breach (no traffic, the clock moved past the deadline) comes as the next change.
            resumed = asyncio.ensure_future(
                events(client, chorus, 2, **{"Last-Event-ID": str(first_id - 1)})
            )
            await asyncio.sleep(0.5)
            moved = await client.post(
                "/v1/admin/clock", json={"advance_seconds": 180}, headers=headers(chorus)
            )
            moved.raise_for_status()
            (again_id, again), (_, breached) = await asyncio.wait_for(resumed, 30)
            assert (again_id, UUID(again["id"])) == (first_id, started.id)
            assert breached["breaches"] == 1
            assert breached["priority"] == "normal"
            assert breached["sla"]["breached"] is True

    async def test_a_stream_answers_at_once_before_any_change_or_keep_alive(
        self, chorus: ChorusProcess
    ) -> None:
        # A read timeout well under the keep-alive: the status, the headers and the first
        # bytes come as the stream opens, though nothing changes (a browser's EventSource
        # opens then, and a proxy with a first-byte timeout keeps the connection).
        timeout = httpx.Timeout(30, read=3)
        quiet = "/v1/conversations/stream?team=nobody-" + uuid4().hex[:8]
        async with httpx.AsyncClient(base_url=chorus.base_url, timeout=timeout) as client:
            for path, resumed in (
                (quiet, {}),
                (quiet, {"Last-Event-ID": "0"}),
                (quiet + "&after=0", {}),
            ):
                opened = time.monotonic()
                async with client.stream("GET", path, headers=headers(chorus, **resumed)) as sse:
                    assert sse.status_code == 200
                    assert sse.headers["content-type"].startswith("text/event-stream")
                    assert sse.headers["cache-control"] == "no-store"
                    first = await anext(sse.aiter_raw())
                    assert time.monotonic() - opened < 2
                # Only fields that make no event: the reconnection delay and a comment.
                lines = first.decode().split("\r\n")
                assert lines[0].startswith("retry: "), first
                assert lines[-2:] == ["", ""], first
                assert all(line.startswith((":", "retry: ")) for line in lines[:-2]), first

    async def test_a_change_made_once_the_stream_answered_comes_on_it(
        self, chorus: ChorusProcess
    ) -> None:
        customer, started = conversation(Channel.CHAT)
        path = f"/v1/conversations/stream?customer_id={customer.id}"
        async with (
            httpx.AsyncClient(base_url=chorus.base_url, timeout=30) as client,
            client.stream("GET", path, headers=headers(chorus)) as sse,
        ):
            lines = sse.aiter_lines()
            async with asyncio.timeout(3):
                assert (await anext(lines)).startswith("retry: ")
            await write(chorus.env["DATABASE_URL"], customer, started)  # no wait: it is open
            async with asyncio.timeout(20):
                async for line in lines:
                    if line.startswith("data:"):
                        assert json.loads(line[5:])["id"] == str(started.id)
                        break

    async def test_a_quiet_stream_keeps_alive_with_a_comment_that_fires_no_event(
        self, chorus: ChorusProcess
    ) -> None:
        received = b""
        path = "/v1/conversations/stream?team=nobody-" + uuid4().hex[:8]
        async with (
            httpx.AsyncClient(base_url=chorus.base_url, timeout=30) as client,
            client.stream("GET", path, headers=headers(chorus)) as sse,
        ):
            assert sse.status_code == 200
            async with asyncio.timeout(HEARTBEAT_SECONDS + 10):
                async for chunk in sse.aiter_raw():
                    received += chunk
                    if b"keep-alive" in received and received.endswith((b"\n\n", b"\r\n\r\n")):
                        break
        # Blocks of fields, each ended by a blank line: none holds data (a browser's
        # EventSource would fire an empty message), an event type or an id.
        blocks = [block.splitlines() for block in re.split(r"\r?\n\r?\n", received.decode())]
        assert blocks[-1] == [], received
        assert [": keep-alive"] in blocks, received
        for block in blocks:
            assert all(line.startswith((":", "retry:")) for line in block), received

    async def test_a_bad_last_event_id_or_parameter_is_a_400_naming_it(
        self, chorus: ChorusProcess
    ) -> None:
        # The Last-Event-ID header as sent (a byte of Latin-1 among them), or a query string.
        refused: list[tuple[bytes | None, str, str]] = [
            (b"x", "", "header.Last-Event-ID"),
            (b"-1", "", "header.Last-Event-ID"),
            (b"1" * 19, "", "header.Last-Event-ID"),
            (b"\xb2", "", "header.Last-Event-ID"),  # a digit, but not 0-9
            (None, "?after=x", "query.after"),
            (None, "?after=-1", "query.after"),
            (None, f"?after={2**62 + 1}", "query.after"),
            (None, "?breach_within=abc", "query.breach_within"),
            (None, "?breach_within=-5m", "query.breach_within"),
            (None, "?breach_within=367d", "query.breach_within"),
        ]
        admin = {name.encode(): value.encode() for name, value in headers(chorus).items()}
        async with httpx.AsyncClient(base_url=chorus.base_url, timeout=30) as client:
            for last_event_id, query, field in refused:
                sent = (
                    admin if last_event_id is None else {**admin, b"Last-Event-ID": last_event_id}
                )
                answer = await client.get("/v1/conversations/stream" + query, headers=sent)
                assert answer.status_code == 400, (last_event_id, query, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                problem = answer.json()
                assert problem["type"].endswith("/invalid-request"), problem
                assert [error["field"] for error in problem["errors"]] == [field], problem


class TestAStreamFollowsItsKeysReach:
    async def test_an_agent_taken_off_a_team_gets_no_more_of_it_and_a_revoked_key_s_stream_ends(
        self, chorus: ChorusProcess
    ) -> None:
        database_url = chorus.env["DATABASE_URL"]
        suffix = uuid4().hex[:8]  # agents and teams are the whole service's
        qa2, qa_team, ops_team = f"qa2-{suffix}", f"qa-{suffix}", f"ops-{suffix}"
        async with httpx.AsyncClient(base_url=chorus.base_url, timeout=30) as client:
            admin = headers(chorus)
            agent = {"key": qa2, "name": "QA 2", "skills": [], "capacity": {"chat": 3}}
            assert (await client.post("/v1/agents", json=agent, headers=admin)).status_code == 201
            for team in (qa_team, ops_team):
                made = await client.post(
                    "/v1/teams", json={"key": team, "name": team}, headers=admin
                )
                assert made.status_code == 201
                put = await client.put(f"/v1/teams/{team}/members/{qa2}", headers=admin)
                assert put.status_code == 200
            qa_customer, qa = conversation(Channel.CHAT, qa_team)
            ops_customer, ops = conversation(Channel.CHAT, ops_team)
            await write(database_url, qa_customer, qa, ops_customer, ops)
            ours = {str(qa.id), str(ops.id)}
            async with asyncio.timeout(20):  # both in the inbox before the stream opens
                while not ours <= await inbox(client, admin):
                    await asyncio.sleep(0.1)
            key = await agent_key(database_url, qa2)
            as_qa2 = {"Authorization": f"Bearer {key.secret}"}

            async def note(conversation_id: UUID, text: str) -> None:
                path = f"/v1/conversations/{conversation_id}/notes"
                added = await client.post(path, json={"text": text}, headers=admin)
                assert added.status_code == 200, added.text

            stream = Watching(client, key.secret)
            await asyncio.sleep(0.5)
            await note(qa.id, "seen by qa2")
            assert await stream.until_seen(qa.id, 0) == [str(qa.id)]

            removed = await client.delete(f"/v1/teams/{qa_team}/members/{qa2}", headers=admin)
            assert removed.status_code in (200, 204), removed.text
            await asyncio.sleep(REACH_SECONDS + 0.5)
            await note(qa.id, "after qa2 left")
            await note(qa.id, "still after")
            await note(ops.id, "ops is still theirs")
            assert await stream.until_seen(ops.id, 1) == [str(ops.id)]
            hidden = await client.get(f"/v1/conversations/{qa.id}", headers=as_qa2)
            assert hidden.status_code == 403

            revoked = await client.post(f"/v1/keys/{key.key.id}/revoke", headers=admin)
            assert revoked.status_code == 200, revoked.text
            await asyncio.sleep(REACH_SECONDS + CACHE_SECONDS + 0.5)  # whichever process serves it
            await note(ops.id, "after the key was revoked")
            await asyncio.wait_for(stream.task, 20)  # the stream ended
            assert stream.seen == [str(qa.id), str(ops.id)]

    async def test_a_quiet_stream_of_a_revoked_key_ends_before_its_first_keep_alive(
        self, chorus: ChorusProcess
    ) -> None:
        suffix = uuid4().hex[:8]
        agent = {"key": f"quiet-{suffix}", "name": "Quiet", "skills": [], "capacity": {"chat": 1}}
        async with httpx.AsyncClient(base_url=chorus.base_url, timeout=30) as client:
            admin = headers(chorus)
            assert (await client.post("/v1/agents", json=agent, headers=admin)).status_code == 201
            key = await agent_key(chorus.env["DATABASE_URL"], agent["key"])
            stream = Watching(client, key.secret)
            await asyncio.sleep(0.5)
            opened = time.monotonic()
            revoked = await client.post(f"/v1/keys/{key.key.id}/revoke", headers=admin)
            assert revoked.status_code == 200, revoked.text
            # Nothing changes meanwhile; the keep-alive would come 15 s after the stream opened.
            await asyncio.wait_for(stream.task, 10)
            assert time.monotonic() - opened < REACH_SECONDS + CACHE_SECONDS + 5
            assert stream.seen == []
