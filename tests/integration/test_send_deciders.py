"""A broadcast's sends decided in processes of their own (`ProcessDeciders`, ADR 0028) are
decided and recorded as the schedule worker's own `RequestMessage.all` would: the same rules,
rows and idempotency, at the sender's time under the manual clock; a decider that dies leaves
its batch to the sender."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock, SystemClock
from adapters.system.ids import RandomIds
from application.customer.upsert_customer import UpsertCustomer
from application.messages.request_message import MessageDecided, SendAsked
from domain.customer.identities import Identity, IdentityClaim, Verification
from domain.policy.decision import Outcome, SendRequest
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import DomainError
from entrypoints.send_deciders import ProcessDeciders
from entrypoints.settings import Settings
from tests.integration.test_message_decisions import requester

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    import asyncpg

pytestmark = pytest.mark.integration

_AT = datetime(2026, 12, 1, 10, tzinfo=UTC)


async def _customers(pool: asyncpg.Pool, count: int) -> list[UUID]:
    upsert = UpsertCustomer(PostgresUnitsOfWork(pool), SystemClock(), RandomIds())
    made = []
    for n in range(count):
        claim = IdentityClaim(Identity("email", f"c{n}@example.org"), Verification.VERIFIED)
        made.append((await upsert((claim,), {}, {})).customer_id)
    return made


def _asked(customers: Sequence[UUID]) -> list[SendAsked]:
    request = SendRequest("growth", Purpose.SERVICE, (Channel.EMAIL,))
    return [SendAsked(c, request, f"step-{c}", "campaign:news:1:news:e") for c in customers]


class _NotHere:
    """The sender's own deciding, which these batches must not reach."""

    async def all(self, asked: Sequence[SendAsked]) -> list[MessageDecided | DomainError]:
        raise AssertionError("decided in the sender's process")


class TestProcessDeciders:
    async def test_sends_decided_in_another_process_are_recorded_at_the_senders_time(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        customers = await _customers(pool, 3)
        settings = Settings(database_url=database_url, clock="manual")
        deciders = ProcessDeciders(settings, _NotHere(), ManualClock(_AT), 1, smallest=1)  # type: ignore[arg-type]
        try:
            await deciders.start()
            answers = await deciders.all([*_asked(customers), *_asked([uuid4()])])
            again = await deciders.all(_asked(customers))
            assert len(deciders.pids) == 1
        finally:
            deciders.close()
        decided = [a for a in answers if isinstance(a, MessageDecided)]
        assert [a.decision.outcome for a in decided if a.decision] == [Outcome.SEND] * 3
        assert [a.customer_id for a in decided] == customers
        assert isinstance(answers[3], DomainError)
        assert "no customer" in str(answers[3])
        assert all(isinstance(a, MessageDecided) and a.repeated for a in again)
        assert [a.decision_id for a in again if isinstance(a, MessageDecided)] == [
            a.decision_id for a in decided
        ]
        assert await pool.fetchval("SELECT count(*) FROM decisions") == 3
        times = await pool.fetch(
            "SELECT occurred_at FROM events WHERE topic LIKE '%:Customer.MessageAllowed'"
        )
        assert [row[0] for row in times] == [_AT] * 3

    async def test_a_small_batch_is_decided_in_the_senders_process(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        customers = await _customers(pool, 2)
        settings = Settings(database_url=database_url)
        deciders = ProcessDeciders(settings, requester(pool), SystemClock(), 2, smallest=3)
        answers = await deciders.all(_asked(customers))
        assert deciders.pids == []
        assert all(isinstance(a, MessageDecided) and a.decision for a in answers)

    async def test_batches_are_decided_in_the_senders_process_while_the_deciders_start(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        customers = await _customers(pool, 4)
        settings = Settings(database_url=database_url)
        deciders = ProcessDeciders(settings, requester(pool), SystemClock(), 2, smallest=1)
        try:
            first = await deciders.all(_asked(customers[:2]))
            assert len(deciders.pids) == 2  # started by the first big batch, not waited for
            await deciders.start()
            deciders.request_message = _NotHere()  # type: ignore[assignment]
            then = await deciders.all(_asked(customers[2:]))
        finally:
            deciders.close()
        answers = [*first, *then]
        assert [
            a.decision.outcome for a in answers if isinstance(a, MessageDecided) and a.decision
        ] == [Outcome.SEND] * 4

    async def test_a_decider_killed_leaves_its_batch_to_the_sender(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        customers = await _customers(pool, 2)
        settings = Settings(database_url=database_url)
        deciders = ProcessDeciders(settings, requester(pool), SystemClock(), 1, smallest=1)
        try:
            await deciders.start()
            for pid in deciders.pids:
                os.kill(pid, signal.SIGKILL)
            answers = await deciders.all(_asked(customers))
        finally:
            deciders.close()
        assert [
            a.decision.outcome for a in answers if isinstance(a, MessageDecided) and a.decision
        ] == [
            Outcome.SEND,
            Outcome.SEND,
        ]
        assert deciders.pids == []

    def test_deciders_end_with_a_service_killed_with_minus_9(self, database_url: str) -> None:
        service = textwrap.dedent(
            f"""
            import asyncio, time
            from adapters.system.clock import SystemClock
            from entrypoints.send_deciders import ProcessDeciders
            from entrypoints.settings import Settings

            async def main():
                settings = Settings(database_url={database_url!r})
                deciders = ProcessDeciders(settings, None, SystemClock(), 2)
                await deciders.start()
                print(*deciders.pids, flush=True)
                time.sleep(60)

            asyncio.run(main())
            """
        )
        running = subprocess.Popen(
            [sys.executable, "-c", service],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": "src"},
            text=True,
        )
        try:
            assert running.stdout is not None
            pids = [int(pid) for pid in running.stdout.readline().split()]
            assert len(pids) == 2
            running.kill()
            running.wait()
            deadline = time.monotonic() + 5
            while any(os.path.exists(f"/proc/{pid}") for pid in pids):
                assert time.monotonic() < deadline, "deciders outlived their service"
                time.sleep(0.1)
        finally:
            running.kill()
