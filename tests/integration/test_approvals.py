"""Approvals on PostgreSQL: holds are listed a page at a time, and a hold's expiry fires exactly
once however many schedulers race for it and whether or not an operator races it too."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from adapters.postgres.approvals import PostgresApprovalsRead
from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from adapters.system.rule_sets import DefaultRuleSets
from application.approvals.settle_approval import ApprovalAlreadySettled, SettleApproval
from application.customer.erase_customer import EraseCustomer
from application.customer.upsert_customer import UpsertCustomer
from application.messages.redecide_due import RedecideDueMessages
from application.messages.request_message import RequestMessage
from domain.customer.identities import Identity, IdentityClaim, Verification
from domain.policy.decision import Outcome, SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.rules import ApprovalRule
from domain.policy.vocabulary import Channel, Purpose
from ports.approvals import ApprovalFilter, ApprovalStatus

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

pytestmark = pytest.mark.integration

NOON = datetime(2026, 11, 27, 12, tzinfo=UTC)
RULES = dataclasses.replace(
    default_rule_set(),
    approvals=(
        ApprovalRule(
            "approval.refund",
            intents=frozenset({"request_refund"}),
            expires_after=timedelta(hours=2),
        ),
    ),
)
REFUND = SendRequest(
    "support", Purpose.SERVICE, (Channel.EMAIL,), intent="request_refund", intent_confidence=0.9
)


class World:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.clock = ManualClock(NOON)
        self.ids = RandomIds()
        self.rules = DefaultRuleSets(RULES)
        self.read = PostgresApprovalsRead(pool)

    async def held(self, n: int) -> list[UUID]:
        """`n` refund answers held, one a customer; their approvals' ids."""
        send = RequestMessage(
            PostgresUnitsOfWork(self.pool),
            self.rules,
            self.clock,
            self.ids,
            customers=PostgresCustomerRecords(self.pool),
        )
        held = []
        for i in range(n):
            claim = IdentityClaim(Identity("email", f"c{i}@example.org"), Verification.VERIFIED)
            made = await UpsertCustomer(PostgresUnitsOfWork(self.pool), self.clock, self.ids)(
                (claim,), {}, {}
            )
            decided = await send(made.customer_id, REFUND)
            assert decided.decision is not None
            assert decided.decision.outcome is Outcome.HOLD
            held.append(decided.decision_id)
            self.clock.advance(timedelta(seconds=1))
        return held

    def scheduler(self) -> RedecideDueMessages:
        return RedecideDueMessages(PostgresUnitsOfWork(self.pool), self.rules, self.clock, self.ids)

    def operator(self) -> SettleApproval:
        return SettleApproval(PostgresUnitsOfWork(self.pool), self.rules, self.clock, self.ids)

    async def count(self, topic: str) -> int:
        found: int = await self.pool.fetchval(
            "SELECT count(*) FROM events WHERE topic LIKE $1", f"%:Customer.{topic}"
        )
        return found


class TestListing:
    async def test_pending_holds_page_newest_first_and_leave_the_list_once_settled(
        self, pool: asyncpg.Pool
    ) -> None:
        world = World(pool)
        held = await world.held(5)
        await world.operator().reject(held[0], "lea (admin key k1)", "not eligible")
        pending = ApprovalFilter(status=ApprovalStatus.PENDING)
        first = await world.read.page(pending, 3, None)
        second = await world.read.page(pending, 3, first.next)
        listed = [a.approval_id for a in (*first.approvals, *second.approvals)]
        assert listed == held[:0:-1]
        assert second.next is None
        rejected = await world.read.get(held[0])
        assert rejected is not None
        assert (rejected.status, rejected.note) == (ApprovalStatus.REJECTED, "not eligible")


class TestExpiry:
    async def test_two_schedulers_expire_each_hold_exactly_once(self, pool: asyncpg.Pool) -> None:
        world = World(pool)
        held = await world.held(6)
        world.clock.advance(timedelta(hours=1, minutes=59))
        assert await world.scheduler()() == 0
        world.clock.advance(timedelta(minutes=5))
        schedulers = [world.scheduler() for _ in range(2)]
        done = await asyncio.gather(*(s(limit=2) for s in schedulers for _ in range(4)))
        assert sum(done) == 6
        assert await world.scheduler()() == 0
        assert await world.count("ApprovalSettled") == 6
        assert await world.count("MessageSuppressed") == 6
        assert await world.count("MessageAllowed") == 0
        for approval_id in held:
            record = await world.read.get(approval_id)
            assert record is not None
            assert (record.status, record.settled_by) == (ApprovalStatus.EXPIRED, "scheduler")

    async def test_an_operator_racing_the_expiry_settles_it_or_finds_it_settled(
        self, pool: asyncpg.Pool
    ) -> None:
        world = World(pool)
        held = await world.held(4)
        world.clock.advance(timedelta(hours=3))

        async def approve(approval_id: UUID) -> bool:
            try:
                await world.operator().approve(approval_id, "lea (admin key k1)")
            except ApprovalAlreadySettled:
                return False
            return True

        results = await asyncio.gather(world.scheduler()(), *(approve(a) for a in held))
        expired, approved = results[0], sum(results[1:])
        assert expired + approved == 4
        assert await world.count("ApprovalSettled") == 4
        assert await world.count("MessageAllowed") == approved
        assert await world.count("MessageSuppressed") == expired


class TestErasure:
    async def test_erasing_the_customer_withdraws_the_hold_and_it_never_expires(
        self, pool: asyncpg.Pool
    ) -> None:
        world = World(pool)
        (held,) = await world.held(1)
        record = await world.read.get(held)
        assert record is not None
        erase = EraseCustomer(
            PostgresUnitsOfWork(pool),
            world.clock,
            PostgresCustomerRecords(pool),
            world.rules,
            world.ids,
        )
        await erase(record.customer_id, "lea (admin key k1)")
        withdrawn = await world.read.get(held)
        assert withdrawn is not None
        assert (withdrawn.status, withdrawn.settled_by, withdrawn.note) == (
            ApprovalStatus.WITHDRAWN,
            "lea (admin key k1)",
            "customer erased",
        )
        assert withdrawn.decision_id is not None
        assert (await world.count("ApprovalSettled"), await world.count("Erased")) == (1, 1)
        world.clock.advance(timedelta(hours=3))
        assert await world.scheduler()() == 0
        with pytest.raises(ApprovalAlreadySettled):
            await world.operator().approve(held, "lea (admin key k1)")
