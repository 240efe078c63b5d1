"""The inbox against a running service: a conversation written to the log shows on the live
stream, which resumes after `Last-Event-ID`; the list and the thread read it; an SLA breach
fires when the manual clock passes its deadline, with no new traffic, and streams."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from domain.conversation.aggregate import Conversation
from domain.conversation.routing_book import RoutingBook
from domain.conversation.routing_reader import decode_routing
from domain.customer.aggregate import Customer
from domain.customer.identities import IdentityClaim, IdentityNormalizer, Verification
from domain.policy.vocabulary import Channel

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e
NOW = datetime(2030, 1, 7, 10, tzinfo=UTC)


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


def conversation(channel: Channel) -> tuple[Customer, Conversation]:
    claim = IdentityClaim(
        IdentityNormalizer("GB").parse("email:ana@example.org"), Verification.UNVERIFIED
    )
    customer = Customer.register(uuid4(), NOW, (claim,))
    started = Conversation.start(customer.id, "customer", NOW)
    started.receive(uuid4(), channel, "where is my card?", NOW, NOW)
    started.transfer("support", None, "routed", "router", NOW)
    return customer, started


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
        self, chorus: ChorusProcess, database_url: str
    ) -> None:
        async with httpx.AsyncClient(base_url=chorus.base_url, timeout=30) as client:
            clock = await client.post(
                "/v1/admin/clock", json={"set": NOW.isoformat()}, headers=headers(chorus)
            )
            clock.raise_for_status()
            book = RoutingBook.open(NOW)
            routing = {"default_team": "support", "sla": {"first_response": {"chat": "2m"}}}
            book.publish(decode_routing(routing, teams={"support"}, segments=set()), "a", NOW)
            await write(database_url, book)

            listening = asyncio.ensure_future(events(client, chorus, 1))
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

    async def test_a_bad_last_event_id_is_refused_naming_it(self, chorus: ChorusProcess) -> None:
        async with httpx.AsyncClient(base_url=chorus.base_url, timeout=30) as client:
            answer = await client.get(
                "/v1/conversations/stream", headers=headers(chorus, **{"Last-Event-ID": "x"})
            )
            assert answer.status_code in (400, 422)
            assert "Last-Event-ID" in answer.text
