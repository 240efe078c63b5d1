"""The inbox and the SLA timers on PostgreSQL: the projection rebuilt equals the live one; its
filters, visibility and cursors; the changes a stream waits for, notified at commit; SLA
breaches found by time alone with the manual clock, recorded once by racing timer runs, each
saved with its conversation's holder in the routing roster (as `chorus audit verify` rebuilds
it), so an escalation reorders its queue and frees its agent's place."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import pytest

from adapters.postgres.conversation_roster import PostgresRoster
from adapters.postgres.inbox import InboxListing, PostgresInbox, PostgresInboxChanges
from adapters.postgres.log_table_rebuilds import PostgresLogTableRebuilds
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.sla_timers import SlaTimerProjection, SlaTimerRuns
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from application.conversations.drain_queues import DrainQueues
from application.processes.sla_timers import SlaTimers
from domain.conversation.agents import Agent, Team
from domain.conversation.aggregate import ActingAgent, Conversation
from domain.conversation.routing_book import RoutingBook
from domain.conversation.routing_reader import decode_routing
from domain.conversation.vocabulary import ChannelKind, Presence, Priority, Sentiment
from domain.customer.aggregate import Customer
from domain.customer.identities import IdentityClaim, IdentityNormalizer, Verification
from domain.policy.defaults import default_rule_set
from domain.policy.vocabulary import Channel
from ports.inbox import InboxFilter

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)
SLA = {
    "first_response": {"chat": "2m", "email": "4h"},
    "next_response": {"chat": "5m", "email": "8h"},
    "on_breach": {"priority": "urgent"},
}
ANA = ActingAgent("ana", frozenset({"support"}))
_BELOW_HORIZON = """
SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), true) FROM events
"""
_GB = IdentityNormalizer("GB")


class Desk:
    """Conversations written through the unit of work, the inbox and the SLA timers
    following the log."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.clock = ManualClock(NOW)
        self.uows = PostgresUnitsOfWork(pool)
        self.process = SlaTimers(self.clock)
        self.runner = ProjectionRunner(pool, [InboxListing(), SlaTimerProjection(self.process)])
        self.runs = SlaTimerRuns(pool, self.process, self.clock)
        self.inbox = PostgresInbox(pool)
        self.rules = default_rule_set()

    async def settle(self) -> None:
        """The inbox and the SLA timers to the end of the log, waiting whenever the server's
        horizon (a transaction of another test's database) holds readers back."""
        await self.runner.setup()
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            while await self.pool.fetchval(_BELOW_HORIZON) is False:
                assert asyncio.get_running_loop().time() < deadline, "the log stays unreadable"
                await asyncio.sleep(0.05)
            if not await self.runner.catch_up():
                return

    async def routing(self, sla: dict[str, Any] | None = None) -> None:
        document = decode_routing(
            {"default_team": "support", "sla": SLA if sla is None else sla},
            teams={"support", "billing"},
            segments=set(),
        )
        book = RoutingBook.open(self.clock.now())
        book.publish(document, "admin", self.clock.now())
        await self._save(book)

    async def customer(self, email: str) -> UUID:
        claim = IdentityClaim(_GB.parse(f"email:{email}"), Verification.UNVERIFIED)
        customer = Customer.register(uuid4(), self.clock.now(), (claim,))
        await self._save(customer)
        return customer.id

    async def conversation(
        self, customer_id: UUID, channel: Channel, topic: str = "support", team: str = "support"
    ) -> UUID:
        now = self.clock.now()
        conversation = Conversation.start(customer_id, "customer", now, topic)
        conversation.receive(uuid4(), channel, "hello", now, now)
        conversation.transfer(team, None, "routed", "router", now)
        await self._save(conversation)
        return conversation.id

    async def change(self, conversation_id: UUID, *calls: tuple[str, tuple[Any, ...]]) -> None:
        async with self.uows() as uow:
            repo = uow.repository(Conversation)
            conversation = (await repo.get([conversation_id]))[conversation_id]
            for name, arguments in calls:
                getattr(conversation, name)(*arguments)
            repo.add(conversation)

    async def staff(self, agent: str, capacity: dict[ChannelKind, int]) -> None:
        """The agent, available, on the support and billing teams."""
        now = self.clock.now()
        made = Agent.register(agent, agent, frozenset(), capacity, "admin", now)
        made.change_presence(Presence.AVAILABLE, "admin", now)
        await self._save(made)
        for key in ("support", "billing"):
            team = Team.create(key, key.title(), "admin", now)
            team.add_member(agent, "admin", now)
            await self._save(team)

    async def hold(self, conversation_id: UUID) -> tuple[Any, ...]:
        """The conversation's holder: team, agent, priority rank, when written."""
        row = await self.pool.fetchrow(
            "SELECT team, agent, priority, updated_at FROM conversation_holds"
            " WHERE conversation_id = $1",
            conversation_id,
        )
        assert row is not None
        return tuple(row)

    async def roster_rebuilt(self) -> None:
        """`chorus audit verify`'s rebuild of the holds and loads equals the live tables."""
        compared = await PostgresLogTableRebuilds(self.pool).compare(
            "conversation holds and agent loads", 5
        )
        assert [t.samples for t in compared.tables if not t.equal] == []

    async def breaches(self) -> int:
        count: int = await self.pool.fetchval(
            "SELECT count(*) FROM events WHERE topic LIKE '%Conversation.SlaBreached'"
        )
        return count

    async def _save(self, aggregate: Any) -> None:
        async with self.uows() as uow:
            uow.repository(type(aggregate)).add(aggregate)


async def _rows(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await pool.fetch("SELECT * FROM inbox ORDER BY conversation_id")]


class TestTheInboxProjection:
    async def test_a_rebuild_equals_the_live_inbox(self, pool: asyncpg.Pool) -> None:
        desk = Desk(pool)
        ana = await desk.customer("ana@example.org")
        bo = await desk.customer("bo@example.org")
        first = await desk.conversation(ana, Channel.EMAIL)
        await desk.settle()  # the live projection takes the log in several pages
        second = await desk.conversation(bo, Channel.CHAT, team="billing")
        now = desk.clock.now()
        await desk.change(
            first,
            ("receive", (uuid4(), Channel.WHATSAPP, "and?", now, now)),
            ("reply", (uuid4(), ANA, "done", desk.rules, now)),
            ("classify", ("refund", Sentiment.NEGATIVE, "classifier", now, 0.8)),
            ("tag", (frozenset({"refund"}), "ana", now)),
        )
        await desk.settle()
        await desk.change(second, ("change_priority", (Priority.HIGH, "vip", "router", now)))
        await desk.settle()
        live = await _rows(pool)
        assert len(live) == 2
        await desk.runner.rebuild("inbox")
        assert await _rows(pool) == live

    async def test_filters_visibility_and_cursors(self, pool: asyncpg.Pool) -> None:
        desk = Desk(pool)
        await desk.routing()
        ana = await desk.customer("ana@example.org")
        made = [await desk.conversation(ana, Channel.EMAIL, topic=f"t{n}") for n in range(3)]
        chat = await desk.conversation(ana, Channel.CHAT, topic="chat", team="billing")
        await desk.settle()
        everything = InboxFilter()
        first = await desk.inbox.page(everything, None, limit=3)
        rest = await desk.inbox.page(everything, None, after=first.next_cursor, limit=3)
        assert [r.conversation_id for r in first.items + rest.items] == [chat, *reversed(made)]
        assert rest.next_cursor is None
        assert first.high_water == first.items[0].seq
        support = await desk.inbox.page(everything, {"support"})
        assert {r.conversation_id for r in support.items} == set(made)
        chats = await desk.inbox.page(InboxFilter(channel=Channel.CHAT), None)
        assert [r.conversation_id for r in chats.items] == [chat]
        soon = InboxFilter(breach_before=desk.clock.now() + timedelta(minutes=30))
        breaching = await desk.inbox.page(soon, None)
        assert [r.conversation_id for r in breaching.items] == [chat]
        assert breaching.items[0].deadline is not None
        since = await desk.inbox.changed_since(first.items[1].seq, everything, None)
        assert [r.conversation_id for r in since] == [chat]

    async def test_a_stream_waiting_for_changes_wakes_when_the_projection_commits(
        self, pool: asyncpg.Pool
    ) -> None:
        desk = Desk(pool)
        await desk.settle()
        changes = PostgresInboxChanges(pool)
        try:
            ana = await desk.customer("ana@example.org")
            waiting = asyncio.ensure_future(changes.wait_beyond(0, 10))
            await asyncio.sleep(0.05)  # listening
            await desk.conversation(ana, Channel.SMS)
            started = asyncio.get_running_loop().time()
            await desk.settle()
            await asyncio.wait_for(waiting, 5)
            assert asyncio.get_running_loop().time() - started < 5
            assert changes.latest == await desk.inbox.high_water()
        finally:
            await changes.close()


class TestSlaTimers:
    async def test_a_breach_fires_with_no_new_traffic_once(self, pool: asyncpg.Pool) -> None:
        desk = Desk(pool)
        await desk.routing()
        ana = await desk.customer("ana@example.org")
        conversation = await desk.conversation(ana, Channel.CHAT)
        await desk.settle()
        assert await desk.runs(10) == 0
        desk.clock.advance(timedelta(minutes=2))
        other = SlaTimerRuns(pool, desk.process, desk.clock)
        fired = await asyncio.gather(desk.runs(10), other(10), desk.runs(10))
        assert sum(fired) == 1
        await desk.settle()
        desk.clock.advance(timedelta(hours=1))
        assert await desk.runs(10) == 0
        assert await desk.breaches() == 1
        row = await desk.inbox.get(conversation)
        assert row is not None
        assert row.deadline is not None
        assert (row.breaches, row.priority, row.deadline.breached) == (1, Priority.URGENT, True)

    async def test_a_conversation_answered_before_its_deadline_never_breaches(
        self, pool: asyncpg.Pool
    ) -> None:
        desk = Desk(pool)
        await desk.routing()
        ana = await desk.customer("ana@example.org")
        conversation = await desk.conversation(ana, Channel.CHAT)
        await desk.settle()
        now = desk.clock.now()
        await desk.change(conversation, ("reply", (uuid4(), ANA, "hi", desk.rules, now)))
        desk.clock.advance(timedelta(minutes=5))
        assert await desk.runs(10) == 1  # the stale deadline: a no-op
        await desk.settle()
        assert await desk.breaches() == 0
        assert await pool.fetchval("SELECT count(*) FROM sla_deadlines") == 0


class TestBreachesInTheRoster:
    async def test_an_escalated_breach_reorders_its_queue_and_the_rebuild_agrees(
        self, pool: asyncpg.Pool
    ) -> None:
        desk = Desk(pool)
        await desk.routing()
        await desk.staff("ana", {ChannelKind.CHAT: 1, ChannelKind.EMAIL: 1})
        ana = await desk.customer("ana@example.org")
        email = await desk.conversation(ana, Channel.EMAIL, topic="a")
        desk.clock.advance(timedelta(seconds=1))
        chat = await desk.conversation(ana, Channel.CHAT, topic="b")
        await desk.settle()
        roster = PostgresRoster(pool)
        assert await roster.queued("support") == [email, chat]  # the longest waiting first
        desk.clock.advance(timedelta(minutes=2))
        breached_at = desk.clock.now()
        assert await desk.runs(10) == 1  # the chat's first response only
        assert await desk.hold(chat) == ("support", None, Priority.URGENT.rank, breached_at)
        assert await roster.queued("support") == [chat, email]
        await desk.roster_rebuilt()
        # Ana has room for one of each: the escalated chat is offered first.
        drained = await DrainQueues(desk.uows, roster, desk.clock)()
        assert [(o.conversation_id, o.agent) for o in drained.assigned] == [
            (chat, "ana"),
            (email, "ana"),
        ]
        await desk.roster_rebuilt()

    async def test_an_escalation_to_another_team_frees_its_agents_place(
        self, pool: asyncpg.Pool
    ) -> None:
        desk = Desk(pool)
        await desk.routing({**SLA, "on_breach": {"priority": "urgent", "team": "billing"}})
        await desk.staff("ana", {ChannelKind.CHAT: 1})
        ana = await desk.customer("ana@example.org")
        conversation = await desk.conversation(ana, Channel.CHAT)
        now = desk.clock.now()
        await desk.change(conversation, ("assign", (ANA, "support", "least loaded", "router", now)))
        await desk.settle()
        loads = "SELECT agent, kind, held FROM agent_loads"
        assert [tuple(r) for r in await pool.fetch(loads)] == [("ana", "chat", 1)]
        desk.clock.advance(timedelta(minutes=2))
        assert await desk.runs(10) == 1
        assert await desk.hold(conversation) == (
            "billing",
            None,
            Priority.URGENT.rank,
            desk.clock.now(),
        )
        assert [tuple(r) for r in await pool.fetch(loads)] == [("ana", "chat", 0)]
        assert await PostgresRoster(pool).queued("billing") == [conversation]
        await desk.roster_rebuilt()
