"""Sends decided many to a commit (`RequestMessage.all`) keep the single path's invariants: caps
hold against concurrent deciders, idempotency keys answer once, and a send that cannot be decided
leaves the others decided."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

from application.messages.request_message import MessageDecided, SendAsked
from domain.policy.decision import SendRequest
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import DomainError, NotFound
from tests.integration.test_message_decisions import a_customer, requester

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

pytestmark = pytest.mark.integration


def _asked(customer_id: UUID, key: str | None = None, team: str = "growth") -> SendAsked:
    request = SendRequest(team, Purpose.SERVICE, (Channel.EMAIL,))
    return SendAsked(customer_id, request, key, "campaign:news:1:news:e")


def _outcomes(answers: list[MessageDecided | DomainError]) -> list[str]:
    return [
        a.decision.outcome.value
        for a in answers
        if isinstance(a, MessageDecided) and a.decision is not None
    ]


async def _count(pool: asyncpg.Pool, sql: str) -> int:
    found: int = await pool.fetchval(sql)
    return found


class TestBatchedSends:
    async def test_a_cap_holds_within_a_batch_and_against_single_deciders_at_once(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id = await a_customer(pool)
        batch = requester(pool).all([_asked(customer_id, team=f"t{n}") for n in range(10)])
        singles = [requester(pool)(customer_id, _asked(customer_id).request) for _ in range(10)]
        answers, *decided = await asyncio.gather(batch, *singles)
        outcomes = _outcomes(answers) + [d.decision.outcome.value for d in decided if d.decision]
        assert outcomes.count("send") == 3  # the cap of three a day, whoever decided
        assert len(outcomes) == 20
        allowed = await _count(
            pool, "SELECT count(*) FROM events WHERE topic LIKE '%:Customer.MessageAllowed'"
        )
        assert allowed == 3
        assert await _count(pool, "SELECT count(*) FROM decisions") == 20

    async def test_an_idempotency_key_decides_once_in_a_batch_and_when_the_batch_is_retried(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id = await a_customer(pool)
        send = requester(pool)
        asked = [_asked(customer_id, "step-1"), _asked(customer_id, "step-1")]
        first, twin = await send.all(asked)
        again = await send.all(asked)
        assert isinstance(first, MessageDecided)
        assert first.decision is not None
        assert isinstance(twin, MessageDecided)
        assert twin.repeated
        assert twin.decision_id == first.decision_id
        assert all(isinstance(a, MessageDecided) and a.repeated for a in again)
        assert await _count(pool, "SELECT count(*) FROM decisions") == 1
        assert await _count(pool, "SELECT count(*) FROM message_requests") == 1

    async def test_a_send_that_cannot_be_decided_is_answered_with_its_error_and_others_go_on(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id = await a_customer(pool)
        answers = await requester(pool).all(
            [_asked(customer_id, "a"), _asked(uuid4(), "b"), _asked(customer_id, "c")]
        )
        assert isinstance(answers[1], NotFound)
        assert _outcomes(answers) == ["send", "send"]
        assert await _count(pool, "SELECT count(*) FROM message_requests") == 2
