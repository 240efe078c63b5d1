"""SLA timers in memory: a deadline for each conversation whose clock runs, by channel kind and
tier, in the team's working hours; fired by time alone, once, escalated as the routing
document says, the roster's holder changed with it; a no-op for a conversation answered
meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from adapters.inmemory.conversation_roster import InMemoryRoster
from application.processes.sla_timers import SLA_TIMER
from domain.conversation.aggregate import ActingAgent, Conversation
from domain.conversation.sla import SlaKind
from domain.conversation.vocabulary import ChannelKind, Priority
from domain.conversation.working_hours import decode_working_hours
from domain.policy.vocabulary import Channel
from tests.unit.application.inbox_world import SLA, InboxWorld

ANA = ActingAgent("ana", frozenset({"support"}))


def breaches(world: InboxWorld) -> list[object]:
    return [
        r.event for r in world.store.log if isinstance(r.event, Conversation.Event)
        and type(r.event).__name__ == "SlaBreached"
    ]  # fmt: skip


class TestDeadlines:
    async def test_a_waiting_chat_gets_its_first_response_target(self) -> None:
        world = InboxWorld()
        await world.routing()
        customer = await world.customer()
        conversation = await world.conversation(customer, Channel.WHATSAPP, team="support")
        await world.settle()
        deadline = world.sla_ports.sla_deadlines.deadlines[conversation]
        assert (deadline.sla, deadline.breached) == (SlaKind.FIRST_RESPONSE, False)
        assert deadline.due == world.clock.now() + timedelta(minutes=2)

    async def test_a_tier_with_its_own_target_gets_it(self) -> None:
        world = InboxWorld()
        await world.routing()
        vip = await world.customer(tier="vip")
        conversation = await world.conversation(vip, Channel.EMAIL, team="support")
        await world.settle()
        due = world.sla_ports.sla_deadlines.deadlines[conversation].due
        assert due == world.clock.now() + timedelta(hours=1)

    async def test_an_answer_stops_the_clock_and_the_next_message_starts_the_next_target(
        self,
    ) -> None:
        world = InboxWorld()
        await world.routing()
        customer = await world.customer()
        conversation = await world.conversation(customer, Channel.CHAT, team="support")
        now = world.clock.now()
        await world.change(conversation, ("reply", (uuid4(), ANA, "hi", world.rules, now)))
        await world.settle()
        assert conversation not in world.sla_ports.sla_deadlines.deadlines
        world.clock.advance(timedelta(minutes=1))
        later = world.clock.now()
        await world.change(conversation, ("receive", (uuid4(), Channel.CHAT, "and?", later, later)))
        await world.settle()
        deadline = world.sla_ports.sla_deadlines.deadlines[conversation]
        assert (deadline.sla, deadline.due) == (
            SlaKind.NEXT_RESPONSE,
            later + timedelta(minutes=5),
        )

    async def test_working_hours_count_only_open_time(self) -> None:
        friday_evening = datetime(2026, 3, 6, 17, 59, tzinfo=UTC)
        world = InboxWorld(friday_evening)
        hours = decode_working_hours(
            {"time_zone": "UTC", "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                                             "start": "09:00", "end": "18:00"}]}
        )  # fmt: skip
        await world.team("support", hours)
        await world.routing({**SLA, "working_hours": True})
        customer = await world.customer()
        conversation = await world.conversation(customer, Channel.CHAT, team="support")
        await world.settle()
        due = world.sla_ports.sla_deadlines.deadlines[conversation].due
        assert due == datetime(2026, 3, 9, 9, 1, tzinfo=UTC)  # a minute Friday, a minute Monday

    async def test_without_a_routing_document_no_clock_runs(self) -> None:
        world = InboxWorld()
        customer = await world.customer()
        await world.conversation(customer, Channel.CHAT, team="support")
        await world.settle()
        assert world.sla_ports.sla_deadlines.deadlines == {}


class TestFiring:
    async def test_a_breach_fires_with_no_new_traffic_once_and_escalates(self) -> None:
        world = InboxWorld()
        await world.routing({**SLA, "on_breach": {"priority": "urgent", "team": "billing"}})
        customer = await world.customer()
        conversation = await world.conversation(customer, Channel.CHAT, team="support")
        await world.settle()
        assert await world.sla_process.due(world.sla_ports, 10) == 0  # not yet
        world.clock.advance(timedelta(minutes=2))
        assert await world.sla_process.due(world.sla_ports, 10) == 1
        await world.settle()
        world.clock.advance(timedelta(hours=1))
        assert await world.sla_process.due(world.sla_ports, 10) == 0
        (breach,) = breaches(world)
        assert (breach.sla, breach.by) == (SlaKind.FIRST_RESPONSE, SLA_TIMER)  # type: ignore[attr-defined]
        escalated = await world.load(conversation)
        assert (escalated.priority, escalated.team, escalated.agent) == (
            Priority.URGENT,
            "billing",
            None,
        )
        row = await world.inbox.get(conversation)
        assert row is not None
        assert row.deadline is not None
        assert (row.breaches, row.deadline.breached, row.team) == (1, True, "billing")

    async def test_a_deadline_whose_conversation_was_answered_meanwhile_fires_as_a_no_op(
        self,
    ) -> None:
        world = InboxWorld()
        await world.routing()
        customer = await world.customer()
        conversation = await world.conversation(customer, Channel.CHAT, team="support")
        await world.settle()
        now = world.clock.now()
        # Answered, but the process has not followed the reply yet: the deadline still stands.
        await world.change(conversation, ("reply", (uuid4(), ANA, "hi", world.rules, now)))
        world.clock.advance(timedelta(minutes=3))
        assert await world.sla_process.due(world.sla_ports, 10) == 1
        assert breaches(world) == []
        assert conversation not in world.sla_ports.sla_deadlines.deadlines

    async def test_a_snoozed_conversation_does_not_breach(self) -> None:
        world = InboxWorld()
        await world.routing()
        customer = await world.customer()
        conversation = await world.conversation(customer, Channel.CHAT, team="support")
        now = world.clock.now()
        await world.change(conversation, ("snooze", (now + timedelta(hours=1), "ana", now)))
        await world.settle()
        world.clock.advance(timedelta(minutes=10))
        assert await world.sla_process.due(world.sla_ports, 10) == 0
        assert breaches(world) == []


class TestTheRoster:
    """A breach is saved as any command saves a conversation: its holder in the roster (the
    rank its team's queue is ordered by, its team, its agent's load) changes with it."""

    async def test_an_escalated_breach_reorders_its_queue(self) -> None:
        world = InboxWorld()
        await world.routing()
        roster = InMemoryRoster(world.storage)
        customer = await world.customer()
        email = await world.conversation(customer, Channel.EMAIL, topic="a", team="support")
        world.clock.advance(timedelta(seconds=1))
        chat = await world.conversation(customer, Channel.CHAT, topic="b", team="support")
        await world.settle()
        assert await roster.queued("support") == [email, chat]  # the longest waiting first
        world.clock.advance(timedelta(minutes=2))
        assert await world.sla_process.due(world.sla_ports, 10) == 1  # the chat's target only
        hold = world.storage.roster.holds[chat]
        assert hold.priority == Priority.URGENT.rank
        assert await roster.queued("support") == [chat, email]

    async def test_an_escalation_to_another_team_frees_its_agents_place(self) -> None:
        world = InboxWorld()
        await world.routing({**SLA, "on_breach": {"priority": "urgent", "team": "billing"}})
        roster = InMemoryRoster(world.storage)
        customer = await world.customer()
        conversation = await world.conversation(customer, Channel.CHAT, team="support", agent="ana")
        await world.settle()
        assert world.storage.roster.loads == {("ana", ChannelKind.CHAT): 1}
        world.clock.advance(timedelta(minutes=2))
        assert await world.sla_process.due(world.sla_ports, 10) == 1
        hold = world.storage.roster.holds[conversation]
        assert (hold.team, hold.agent, hold.priority) == ("billing", None, Priority.URGENT.rank)
        assert world.storage.roster.loads == {("ana", ChannelKind.CHAT): 0}
        assert await roster.queued("billing") == [conversation]
