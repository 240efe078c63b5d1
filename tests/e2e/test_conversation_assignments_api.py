"""An inbound message through the running service into a routed thread; assigning and
transferring it over HTTP: two agents racing, exactly one wins and the other gets a 409."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest

from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from domain.conversation.agents import Agent, Team
from domain.conversation.routing_book import RoutingBook
from domain.conversation.routing_reader import decode_routing
from domain.conversation.vocabulary import ChannelKind, Presence

if TYPE_CHECKING:
    from uuid import UUID

    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e
NOON = datetime(2026, 11, 30, 12, tzinfo=UTC)


async def desk(database_url: str) -> None:
    """Two agents, away, on the support team, and a routing document sending it all there."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        uows = PostgresUnitsOfWork(pool)
        async with uows() as uow:
            team = Team.create("support", "Support", "test", NOON)
            for key in ("ana", "rui"):
                agent = Agent.register(key, key, frozenset(), {ChannelKind.EMAIL: 5}, "test", NOON)
                agent.change_presence(Presence.AWAY, "test", NOON)
                uow.repository(Agent).add(agent)
                team.add_member(key, "test", NOON)
            uow.repository(Team).add(team)
            bo = Agent.register("bo", "bo", frozenset(), {ChannelKind.EMAIL: 5}, "test", NOON)
            uow.repository(Agent).add(bo)
            billing = Team.create("billing", "Billing", "test", NOON)
            billing.add_member("bo", "test", NOON)
            uow.repository(Team).add(billing)
            book = RoutingBook.open(NOON)
            book.publish(
                decode_routing(
                    {"default_team": "support"}, teams={"support", "billing"}, segments=set()
                ),
                "test",
                NOON,
            )
            uow.repository(RoutingBook).add(book)
    finally:
        await pool.close()


async def queued(database_url: str, seconds: float = 120) -> UUID:
    """The conversation the service's worker queued to support (the worker's readable end waits
    for every open transaction on the server, so this allows for a busy one)."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found: UUID | None = await conn.fetchval(
                "SELECT conversation_id FROM conversation_holds WHERE team = 'support'"
            )
            if found is not None:
                return found
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError("the inbound message was never threaded")


def inbound(event_id: str, email: str, text: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "message.received",
        "occurred_at": "2026-11-30T12:00:00Z",
        "identities": [{"type": "email", "value": email}],
        "properties": {"channel": "email", "text": text},
    }


class TestAssignOverHttp:
    async def test_two_agents_racing_exactly_one_wins_and_a_transfer_says_why(
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        await desk(database_url)
        headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
        async with httpx.AsyncClient(base_url=chorus.base_url, headers=headers, timeout=30) as http:
            sent = await http.post(
                "/v1/events", json={"signals": [inbound("m1", "pat@example.org", "my invoice")]}
            )
            assert sent.status_code == 202, sent.text
            thread = await queued(database_url)

            answers = await asyncio.gather(
                *(
                    http.post(
                        f"/v1/conversations/{thread}/assign",
                        json={"agent": agent, "reason": f"{agent} knows invoices"},
                    )
                    for agent in ("ana", "rui")
                )
            )
            statuses = sorted(a.status_code for a in answers)
            assert statuses == [200, 409], [a.text for a in answers]
            won = next(a for a in answers if a.status_code == 200).json()
            lost = next(a for a in answers if a.status_code == 409)
            assert lost.headers["content-type"].startswith("application/problem+json")
            assert lost.json()["type"].endswith("already-assigned")
            assert won["changed"] is True

            # An agent of another team may not take it, nor give it away.
            bo_key = chorus.chorus("keys", "create", "--role", "agent", "--agent", "bo")
            refused = await http.post(
                f"/v1/conversations/{thread}/transfer",
                json={"team": "billing", "agent": "bo", "reason": "mine now"},
                headers={"Authorization": f"Bearer {bo_key}"},
            )
            assert refused.status_code == 403, refused.text
            assert refused.json()["type"].endswith("not-on-team")
            assert refused.json()["errors"] == [
                {
                    "field": "$.agent",
                    "reason": "agent 'bo' is not on team 'support', which holds the conversation",
                }
            ]
            nowhere = await http.post(
                f"/v1/conversations/{thread}/transfer", json={"team": "nowhere", "reason": "x"}
            )
            assert nowhere.status_code == 404, nowhere.text
            assert nowhere.json()["errors"] == [{"field": "$.team", "reason": "no team 'nowhere'"}]

            moved = await http.post(
                f"/v1/conversations/{thread}/transfer",
                json={"team": "support", "reason": "back to the queue"},
                headers={"Idempotency-Key": "t-1"},
            )
            assert moved.status_code == 200, moved.text
            assert (moved.json()["team"], moved.json()["agent"]) == ("support", None)
            again = await http.post(
                f"/v1/conversations/{thread}/transfer",
                json={"team": "support", "reason": "back to the queue"},
                headers={"Idempotency-Key": "t-1"},
            )
            assert (again.status_code, again.json()["changed"]) == (200, False)
            other = await http.post(
                f"/v1/conversations/{thread}/transfer",
                json={"team": "support", "reason": "something else"},
                headers={"Idempotency-Key": "t-1"},
            )
            assert other.status_code == 409

    async def test_a_body_naming_no_agent_is_refused_with_the_field(
        self, chorus: ChorusProcess
    ) -> None:
        headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
        async with httpx.AsyncClient(base_url=chorus.base_url, headers=headers) as http:
            answer = await http.post(
                "/v1/conversations/6f1c8d52-4a4e-4bb8-9b8e-3f0a4f6f2c11/assign",
                json={"agent": "Not A Key", "reason": "x"},
            )
            assert answer.status_code == 400, answer.text
            assert "agent" in answer.text
            missing = await http.post(
                "/v1/conversations/6f1c8d52-4a4e-4bb8-9b8e-3f0a4f6f2c11/assign",
                json={"agent": "nobody", "reason": "x"},
            )
            assert missing.status_code == 404, missing.text
            assert missing.json()["errors"] == [{"field": "$.agent", "reason": "no agent 'nobody'"}]
