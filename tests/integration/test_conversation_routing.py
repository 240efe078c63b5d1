"""Threads, routing, queues and agents' loads on PostgreSQL: the capacity invariant is the
database's, under concurrency."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import pytest

from adapters.assistant.keywords import KeywordClassifier
from adapters.postgres.conversation_roster import PostgresRoster
from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.event_store import RecordedEvent
from adapters.postgres.log_table_rebuilds import PostgresLogTableRebuilds
from adapters.postgres.process_ports import ProcessPortsOn
from adapters.postgres.processes import ProcessProjection
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.segments import SegmentMembers
from adapters.postgres.signal_activity import SignalActivity
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.system.ids import RandomIds
from application.conversations.actors import Actor
from application.conversations.assign import AgentAtCapacity, AssignConversation
from application.conversations.departures import Departure, ReleaseDeparted
from application.conversations.drain_queues import DrainQueues
from application.conversations.receive_inbound import Inbound, ReceiveInbound
from application.customer.signals import IngestSignals
from application.processes.conversation_threads import ConversationThreads
from domain.conversation.agents import Agent, Team, agent_id, team_id
from domain.conversation.aggregate import AlreadyAssigned, Conversation, conversation_id
from domain.conversation.routing_book import RoutingBook
from domain.conversation.routing_reader import decode_routing
from domain.conversation.vocabulary import ChannelKind, Presence
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.customer.keywords import INBOUND_SIGNAL
from domain.policy.vocabulary import Channel
from domain.signals.aggregate import SignalReport
from ports.conversation_roster import AgentOverCapacity, CustomerReads
from tests.integration.readable_log import reading_every_commit

if TYPE_CHECKING:
    from collections.abc import Mapping
    from uuid import UUID

    import asyncpg

pytestmark = pytest.mark.integration
GB = IdentityNormalizer("GB")
NOON = datetime(2026, 11, 30, 12, tzinfo=UTC)
_NEWER = """
SELECT position, stream_id, version, topic, class_version, occurred_at, payload FROM events
WHERE position > $1 AND topic = ANY($2::text[]) ORDER BY position
"""


def who(identity: str) -> IdentityClaim:
    return IdentityClaim(GB.parse(identity))


class Installation:
    """The conversation pieces on one database, the threads process run by the real runner."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.clock = ManualClock(NOON)
        self.uows = PostgresUnitsOfWork(pool)
        self.roster = PostgresRoster(pool)
        self.ingest = IngestSignals(self.uows, self.clock, RandomIds())
        self.receive = ReceiveInbound(self.uows, KeywordClassifier(), self.roster, self.clock)
        self.drain = DrainQueues(self.uows, self.roster, self.clock)
        self.assign = AssignConversation(self.uows, self.roster, self.clock)
        self.process = ProcessProjection(
            ConversationThreads(
                self.receive, self.drain, ReleaseDeparted(self.uows, self.roster, self.clock)
            ),
            ProcessPortsOn(),
        )
        self.position = 0
        self.sent = 0

    async def setup(self, agents: Mapping[str, Mapping[ChannelKind, int]], team: str) -> None:
        async with self.uows() as uow:
            for key, capacity in agents.items():
                agent = Agent.register(key, key, frozenset(), capacity, "test", NOON)
                agent.change_presence(Presence.AVAILABLE, "test", NOON)
                uow.repository(Agent).add(agent)
            made = Team.create(team, team, "test", NOON)
            for key in agents:
                made.add_member(key, "test", NOON)
            uow.repository(Team).add(made)
        routing = decode_routing({"default_team": team}, teams={team}, segments=set())
        async with self.uows() as uow:
            book = RoutingBook.open(NOON)
            book.publish(routing, "test", NOON)
            uow.repository(RoutingBook).add(book)
        await self.settle()

    async def settle(self) -> None:
        """Hands the process what the log holds past its place, until it records nothing more.

        The runner's readable end waits for every transaction open on the server, other
        databases' too; on a shared server that can be minutes, so the test reads the log of
        its own database by position, which only it writes.
        """
        while True:
            rows = await self.pool.fetch(_NEWER, self.position, list(self.process.topics))
            if not rows:
                return
            self.position = rows[-1]["position"]
            page = [
                RecordedEvent(
                    row["position"],
                    row["stream_id"],
                    row["version"],
                    row["topic"],
                    row["occurred_at"],
                    payload=row["payload"],
                    class_version=row["class_version"],
                )
                for row in rows
            ]
            async with self.pool.acquire() as conn:
                await self.process.apply(conn, page)

    async def presence(self, key: str, presence: Presence) -> None:
        async with self.uows() as uow:
            agents = uow.repository(Agent)
            agent = (await agents.get([agent_id(key)]))[agent_id(key)]
            agent.change_presence(presence, "test", self.clock.now())
            agents.add(agent)

    async def leave(self, team: str, agent: str) -> None:
        """Takes an agent off a team, as `DELETE /v1/teams/{team}/members/{agent}` does."""
        async with self.uows() as uow:
            teams = uow.repository(Team)
            found = (await teams.get([team_id(team)]))[team_id(team)]
            found.remove_member(agent, "test", self.clock.now())
            teams.add(found)

    async def recorded(self, kind: str) -> int:
        """How many events of this kind (`Conversation.Unassigned`) the log holds."""
        count: int = await self.pool.fetchval(
            "SELECT count(*) FROM events WHERE topic LIKE '%:' || $1", kind
        )
        return count

    async def inbound(self, sender: IdentityClaim, channel: Channel, text: str) -> None:
        self.sent += 1
        report = SignalReport(
            f"twilio:SM{self.sent}",
            INBOUND_SIGNAL,
            NOON,
            (sender,),
            properties={"channel": channel.value, "text": text},
        )
        await self.ingest([report])

    async def conversation(self, sender: IdentityClaim) -> Conversation:
        async with self.uows() as uow:
            owner = (await uow.identities.resolve([sender.identity]))[sender.identity]
            thread = conversation_id(owner)
            return (await uow.repository(Conversation).get([thread]))[thread]

    async def resolve(self, thread: UUID) -> None:
        async with self.uows() as uow:
            conversations = uow.repository(Conversation)
            found = (await conversations.get([thread]))[thread]
            found.resolve("answered", "test", self.clock.now())
            conversations.add(found)

    async def loads(self) -> dict[tuple[str, str], int]:
        rows = await self.pool.fetch("SELECT agent, kind, held FROM agent_loads")
        return {(row["agent"], row["kind"]): row["held"] for row in rows}

    async def roster_rebuilt(self) -> None:
        """`chorus audit verify`'s rebuild of the roster from the log equals the live tables."""
        rebuilds = PostgresLogTableRebuilds(self.pool)
        for name in ("roster agents", "roster teams", "conversation holds and agent loads"):
            compared = await rebuilds.compare(name, 5)
            assert [t.samples for t in compared.tables if not t.equal] == [], name

    async def held_by_events(self) -> dict[str, int]:
        """Each agent's open conversations, counted from the conversations' own streams."""
        rows = await self.pool.fetch("SELECT conversation_id FROM conversation_holds")
        async with self.uows() as uow:
            found = await uow.repository(Conversation).get([row[0] for row in rows])
        counts: dict[str, int] = {}
        for conversation in found.values():
            if conversation.agent is not None and conversation.is_open:
                counts[conversation.agent] = counts.get(conversation.agent, 0) + 1
        return counts


@pytest.fixture
async def chorus(pool: asyncpg.Pool) -> Installation:
    return Installation(pool)


class TestOneThread:
    async def test_one_customer_writing_over_email_whatsapp_and_sms_ends_in_one_thread(
        self, chorus: Installation
    ) -> None:
        await chorus.setup({"ana": {ChannelKind.CHAT: 3, ChannelKind.EMAIL: 3}}, "support")
        email, phone = who("email:rui@example.org"), who("phone:+447700900123")
        # The CRM knows both: one customer.
        await chorus.ingest([SignalReport("crm:1", "customer.updated", NOON, (email, phone))])
        await chorus.inbound(email, Channel.EMAIL, "Where is my parcel?")
        await chorus.settle()
        await chorus.inbound(phone, Channel.WHATSAPP, "Any news on the parcel?")
        await chorus.inbound(phone, Channel.SMS, "Hello?")
        await chorus.settle()
        conversation = await chorus.conversation(email)
        assert [m.channel for m in conversation.messages] == [
            Channel.EMAIL,
            Channel.WHATSAPP,
            Channel.SMS,
        ]
        assert (conversation.team, conversation.agent) == ("support", "ana")
        # It counts once, as the kind ana took it as.
        assert await chorus.loads() == {("ana", "email"): 1}
        assert await chorus.pool.fetchval("SELECT count(*) FROM conversation_holds") == 1
        await chorus.roster_rebuilt()


class TestRecordedMessagesTheEdgeNowRefuses:
    """Older data, or signals that reached the log another way: the edge refuses them now
    (`domain.conversation.inbound`), but recorded ones are never parked by the process."""

    async def test_a_bad_topic_is_threaded_in_the_default_topic_and_nothing_is_parked(
        self, chorus: Installation, pool: asyncpg.Pool
    ) -> None:
        await chorus.setup({"ana": {ChannelKind.CHAT: 3}}, "support")
        runner = reading_every_commit(
            ProjectionRunner(
                pool,
                [CustomerDirectory(), SignalActivity(), SegmentMembers(), chorus.process],
                attempts=1,  # a page that fails once is parked at once
            ),
            pool,
        )
        await runner.setup()
        sender = who("phone:+447700906001")
        said = [("h-1", "Not A Key!! "), ("h-2", "x" * 300), ("h-3", 42)]
        await chorus.ingest(
            [
                SignalReport(
                    f"twilio:{event_id}",
                    INBOUND_SIGNAL,
                    NOON + timedelta(seconds=n),
                    (sender,),
                    properties={"channel": "sms", "text": f"Where is my card? {n}", "topic": topic},
                )
                for n, (event_id, topic) in enumerate(said)
            ]
            + [
                SignalReport(
                    "twilio:h-4",
                    INBOUND_SIGNAL,
                    NOON,
                    (sender,),
                    properties={"channel": 42, "text": "a channel that is no channel"},
                )
            ]
        )
        await runner.catch_up()
        assert await runner.parked() == []
        assert [(s.name, s.failing, s.parked) for s in await runner.status()] == [
            (name, None, 0)
            for name in (
                "customer_directory",
                "signal_activity",
                "segment_members",
                "conversation_threads",
            )
        ]
        conversation = await chorus.conversation(sender)  # the default topic's
        assert conversation.topic == "support"
        assert [m.text for m in conversation.messages] == [
            "Where is my card? 0",
            "Where is my card? 1",
        ]
        assert [n.author for n in conversation.notes] == ["chorus", "chorus"]
        assert "'Not A Key!! ', which is not a topic key" in conversation.notes[0].text
        assert "which is 300 characters long" in conversation.notes[1].text
        owner = conversation.customer_id
        async with chorus.uows() as uow:
            numbered = await uow.repository(Conversation).get([conversation_id(owner, "42")])
        assert [m.text for m in numbered[conversation_id(owner, "42")].messages] == [
            "Where is my card? 2"
        ]
        assert (conversation.team, conversation.agent) == ("support", "ana")


class TestQueue:
    async def test_a_full_team_queues_and_drains_in_order_as_capacity_frees(
        self, chorus: Installation
    ) -> None:
        await chorus.setup({"ana": {ChannelKind.CHAT: 1}}, "support")
        senders = [who(f"phone:+4477009001{n:02}") for n in range(5)]
        for sender in senders:
            chorus.clock.advance(timedelta(seconds=1))
            await chorus.inbound(sender, Channel.WHATSAPP, "hello")
            await chorus.settle()
        threads = [(await chorus.conversation(s)).id for s in senders]
        assert (await chorus.conversation(senders[0])).agent == "ana"
        assert await chorus.roster.queued("support") == threads[1:]
        taken = []
        for step in range(4):
            await chorus.resolve(threads[step])
            await chorus.settle()
            held = [
                t
                for t, s in zip(threads, senders, strict=True)
                if (c := await chorus.conversation(s)).agent == "ana" and c.is_open
            ]
            taken += held
            assert await chorus.loads() == {("ana", "chat"): 1}
        assert taken == threads[1:]
        assert await chorus.roster.queues() == {}
        await chorus.roster_rebuilt()

    async def test_conversations_queued_at_one_instant_leave_in_the_order_they_came(
        self, chorus: Installation
    ) -> None:
        await chorus.setup({"ana": {ChannelKind.CHAT: 1}}, "support")
        senders = [who(f"phone:+4477009002{n:02}") for n in range(6)]
        for sender in senders:  # the clock stands still: every one queued at one instant
            await chorus.inbound(sender, Channel.WHATSAPP, "hello")
            await chorus.settle()
        threads = [(await chorus.conversation(s)).id for s in senders]
        assert await chorus.roster.queued("support") == threads[1:]  # not by id
        taken = []
        for step in range(5):
            await chorus.resolve(threads[step])
            await chorus.settle()
            taken += [
                t
                for t, s in zip(threads, senders, strict=True)
                if (c := await chorus.conversation(s)).agent == "ana" and c.is_open
            ]
        assert taken == threads[1:]


class TestAnAgentLeavingATeam:
    async def test_their_conversations_are_released_once_and_the_queue_drained(
        self, chorus: Installation
    ) -> None:
        await chorus.setup({"eve": {ChannelKind.CHAT: 2}, "ana": {ChannelKind.CHAT: 2}}, "support")
        await chorus.presence("ana", Presence.AWAY)
        await chorus.settle()
        senders = [who(f"phone:+4477009003{n:02}") for n in range(3)]
        for sender in senders:
            chorus.clock.advance(timedelta(seconds=1))
            await chorus.inbound(sender, Channel.WHATSAPP, "hello")
            await chorus.settle()
        threads = [(await chorus.conversation(s)).id for s in senders]
        assert [(await chorus.conversation(s)).agent for s in senders] == ["eve", "eve", None]
        await chorus.presence("ana", Presence.AVAILABLE)
        await chorus.settle()
        assert await chorus.loads() == {("eve", "chat"): 2, ("ana", "chat"): 1}

        await chorus.leave("support", "eve")
        await chorus.settle()
        # Eve's load drops in the commits that release them; the drain gives Ana the first in
        # the queue's order, and the other waits in the team's queue.
        assert await chorus.loads() == {("eve", "chat"): 0, ("ana", "chat"): 2}
        assert [(await chorus.conversation(s)).agent for s in senders] == ["ana", None, "ana"]
        assert await chorus.roster.queued("support") == [threads[1]]
        released = (await chorus.conversation(senders[1])).history[-1]
        assert (released.reason, released.by) == ("eve left team support", "router")
        assert await chorus.recorded("Conversation.Unassigned") == 2

        chorus.position = 0  # the whole log read again, as after a crash before the position
        await chorus.settle()
        assert await chorus.recorded("Conversation.Unassigned") == 2
        assert await chorus.loads() == {("eve", "chat"): 0, ("ana", "chat"): 2}
        assert await chorus.held_by_events() == {"ana": 2}
        await chorus.roster_rebuilt()

    async def test_workers_racing_on_one_departure_release_each_conversation_once(
        self, chorus: Installation
    ) -> None:
        await chorus.setup({"eve": {ChannelKind.CHAT: 5}}, "support")
        for n in range(5):
            await chorus.inbound(who(f"phone:+4477009004{n:02}"), Channel.SMS, "hello")
        await chorus.settle()
        assert await chorus.loads() == {("eve", "chat"): 5}
        held = await chorus.roster.held("eve", "support")
        assert len(held) == 5
        await chorus.leave("support", "eve")
        release = ReleaseDeparted(chorus.uows, chorus.roster, chorus.clock)
        departure = Departure(team_id("support"), "eve")
        done = await asyncio.gather(*(release([departure]) for _ in range(4)))
        assert sorted(t for released in done for t in released) == sorted(held)
        await chorus.settle()  # the process reads the departure after the racing workers
        assert await chorus.recorded("Conversation.Unassigned") == 5
        assert await chorus.loads() == {("eve", "chat"): 0}
        assert len(await chorus.roster.queued("support")) == 5
        await chorus.roster_rebuilt()


class TestCapacityUnderConcurrency:
    async def test_racing_assignments_never_put_an_agent_over_capacity(
        self, chorus: Installation
    ) -> None:
        capacity = {"ana": 2, "rui": 3, "eva": 1, "bo": 4}
        await chorus.setup({k: {ChannelKind.CHAT: n} for k, n in capacity.items()}, "support")
        for key in capacity:
            await chorus.presence(key, Presence.AWAY)  # nobody takes them: they queue
        await chorus.settle()
        senders = [who(f"phone:+4477009002{n:02}") for n in range(30)]
        for sender in senders:
            await chorus.inbound(sender, Channel.SMS, "hello")
        await chorus.settle()
        threads = await chorus.roster.queued("support")
        assert len(threads) == 30

        over: list[Any] = []
        done = asyncio.Event()

        async def watch() -> None:
            # Every instant the readers see: no agent's count past their capacity.
            while not done.is_set():
                for (agent, _), held in (await chorus.loads()).items():
                    if held > capacity[agent]:
                        over.append((agent, held))
                await asyncio.sleep(0)

        async def grab(thread: UUID, agent: str) -> str:
            try:
                await chorus.assign(thread, agent, "race", Actor("test"))
            except (AgentAtCapacity, AlreadyAssigned, AgentOverCapacity) as error:
                return type(error).__name__
            return "assigned"

        rng = random.Random(7)
        # Every agent tries for every conversation: 120 racing commits for 15 places.
        attempts = [(t, agent) for t in threads for agent in capacity]
        rng.shuffle(attempts)
        watcher = asyncio.create_task(watch())
        outcomes = await asyncio.gather(*(grab(t, a) for t, a in attempts))
        done.set()
        await watcher

        assert over == []
        held = await chorus.held_by_events()
        assert all(held.get(agent, 0) <= n for agent, n in capacity.items())
        # An agent left with room would have won a conversation: every place is taken, once.
        assert held == capacity
        assert outcomes.count("assigned") == sum(capacity.values())
        assert await chorus.loads() == {(a, "chat"): held[a] for a in held}
        await chorus.roster_rebuilt()

    async def test_two_agents_racing_for_one_conversation_exactly_one_wins(
        self, chorus: Installation
    ) -> None:
        await chorus.setup({"ana": {ChannelKind.EMAIL: 5}, "rui": {ChannelKind.EMAIL: 5}}, "desk")
        for key in ("ana", "rui"):
            await chorus.presence(key, Presence.AWAY)
        await chorus.inbound(who("email:pat@example.org"), Channel.EMAIL, "hi")
        await chorus.settle()
        (thread,) = await chorus.roster.queued("desk")
        outcomes = await asyncio.gather(
            *(
                chorus.assign(thread, key, "mine", Actor(key))
                for key in ("ana", "rui", "ana", "rui")
            ),
            return_exceptions=True,
        )
        won = [o for o in outcomes if not isinstance(o, BaseException) and o.changed]
        refused = [o for o in outcomes if isinstance(o, AlreadyAssigned)]
        assert len(won) == 1
        assert len(refused) >= 2
        winner = won[0].agent
        assert (await chorus.conversation(who("email:pat@example.org"))).agent == winner
        assert await chorus.loads() == {(winner, "email"): 1}

    async def test_routing_many_inbound_at_once_never_overloads_anyone(
        self, chorus: Installation
    ) -> None:
        capacity = {"ana": 2, "rui": 2}
        await chorus.setup({k: {ChannelKind.CHAT: n} for k, n in capacity.items()}, "support")
        senders = [who(f"phone:+4477009003{n:02}") for n in range(12)]
        outcomes = await chorus.ingest(
            [
                SignalReport(f"crm:{n}", "customer.updated", NOON, (s,))
                for n, s in enumerate(senders)
            ]
        )
        customers = [outcome.customer_id for outcome in outcomes]
        inbound = [
            Inbound(uuid4(), customer, Channel.WHATSAPP, "help", NOON)
            for customer in customers
            if customer is not None
        ]
        # The router's commits racing one another, as several workers' would.
        await asyncio.gather(*(chorus.receive(message) for message in inbound))
        held = await chorus.held_by_events()
        assert held == {"ana": 2, "rui": 2}
        assert len(await chorus.roster.queued("support")) == 8
        assert await chorus.loads() == {("ana", "chat"): 2, ("rui", "chat"): 2}
        await chorus.roster_rebuilt()

    async def test_batches_racing_with_their_own_reads_never_overload_anyone(
        self, chorus: Installation
    ) -> None:
        capacity = {"ana": 3, "rui": 3}
        await chorus.setup({k: {ChannelKind.CHAT: n} for k, n in capacity.items()}, "support")
        senders = [who(f"phone:+4477009004{n:02}") for n in range(16)]
        outcomes = await chorus.ingest(
            [
                SignalReport(f"crm:{n}", "customer.updated", NOON, (s,))
                for n, s in enumerate(senders)
            ]
        )
        inbound = [
            Inbound(uuid4(), outcome.customer_id, Channel.WHATSAPP, "help", NOON)
            for outcome in outcomes
            if outcome.customer_id is not None
        ]
        # Four batches, each on a page of its own: each reads the loads once, and all of them
        # see every place free; the commits that come too late route again on fresh loads.
        threaded = await asyncio.gather(
            *(chorus.receive.many(inbound[n::4], chorus.receive.page()) for n in range(4))
        )
        assert sum(len(batch) for batch in threaded) == 16
        assert await chorus.held_by_events() == capacity
        assert len(await chorus.roster.queued("support")) == 10
        assert await chorus.loads() == {("ana", "chat"): 3, ("rui", "chat"): 3}


class TestRosterReads:
    async def test_a_batch_reads_each_customers_context_at_once(self, chorus: Installation) -> None:
        await chorus.setup({"ana": {ChannelKind.CHAT: 5}}, "support")
        known = who("phone:+447700900501")
        await chorus.inbound(known, Channel.WHATSAPP, "hello")
        await chorus.settle()
        customer = (await chorus.conversation(known)).customer_id
        stranger = uuid4()
        threads = {
            conversation_id(customer): customer,
            conversation_id(customer, "order-42"): customer,
            conversation_id(stranger): stranger,
        }
        reads = await chorus.roster.customers_of(threads, [], NOON)
        assert reads[conversation_id(customer)].other_open == 0
        assert reads[conversation_id(customer, "order-42")].other_open == 1
        assert reads[conversation_id(stranger)] == CustomerReads()
        for thread, owner in threads.items():
            assert reads[thread].segments == await chorus.roster.segments_of(owner)
            assert reads[thread].facts == await chorus.roster.facts_of(owner, [], NOON)
