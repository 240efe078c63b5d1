"""Conversations, for any agents, queues and channel sequences hypothesis finds: routing never
gives an agent more than their capacity, the queue is a total order by priority then time to
SLA breach, and a customer's thread stays one conversation whatever channels they use."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from random import Random
from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from domain.conversation.aggregate import ActingAgent, Conversation, conversation_id
from domain.conversation.routing import (
    Candidate,
    ConversationFacts,
    CustomerContext,
    QueueEntry,
    RoutingDocument,
    RoutingPolicy,
    TeamView,
    offer,
    queue_key,
    queue_order,
    route,
)
from domain.conversation.vocabulary import ChannelKind, Presence, Priority
from domain.policy.defaults import default_rule_set
from domain.policy.vocabulary import Channel

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
KINDS = list(ChannelKind)

kinds = st.sampled_from(KINDS)
priorities = st.sampled_from(list(Priority))
minutes = st.integers(min_value=-600, max_value=600)
moments = minutes.map(lambda m: NOW + timedelta(minutes=m))


@st.composite
def candidates(draw: st.DrawFn, key: str) -> Candidate:
    capacity = {kind: draw(st.integers(0, 4)) for kind in KINDS}
    # a load may be over capacity: capacity lowered while the agent held conversations
    load = {kind: draw(st.integers(0, 6)) for kind in KINDS}
    return Candidate(
        key=key,
        skills=frozenset(draw(st.sets(st.sampled_from(["billing", "es"])))),
        presence=draw(st.sampled_from(list(Presence))),
        capacity=capacity,
        load=load,
        last_assigned_at=draw(st.none() | moments),
    )


agent_lists = st.integers(1, 6).flatmap(
    lambda n: st.tuples(*(candidates(f"agent-{i}") for i in range(n)))
)

entries = st.builds(
    QueueEntry,
    conversation_id=st.uuids(),
    priority=priorities,
    queued_at=moments,
    channel_kind=kinds,
    breach_at=st.none() | moments,
    skills=st.sets(st.sampled_from(["billing", "es"])).map(frozenset),
)
queues = st.lists(entries, max_size=30, unique_by=lambda e: e.conversation_id)


def team_of(agents: tuple[Candidate, ...]) -> TeamView:
    return TeamView(key="support", members=frozenset(a.key for a in agents))


class TestCapacity:
    @given(queues, agent_lists)
    def test_draining_a_queue_never_takes_an_agent_over_capacity(
        self, queue: list[QueueEntry], agents: tuple[Candidate, ...]
    ) -> None:
        offers = offer(queue, team_of(agents), agents, NOW)
        kind_of = {e.conversation_id: e.channel_kind for e in queue}
        given_to = Counter((o.agent, kind_of[o.conversation_id]) for o in offers)
        for agent in agents:
            for kind in KINDS:
                taken = given_to[(agent.key, kind)]
                assert taken <= agent.free(kind)
                if taken:
                    assert agent.presence is Presence.AVAILABLE

    @given(queues, agent_lists)
    def test_each_queued_conversation_is_offered_at_most_once(
        self, queue: list[QueueEntry], agents: tuple[Candidate, ...]
    ) -> None:
        offers = offer(queue, team_of(agents), agents, NOW)
        ids = [o.conversation_id for o in offers]
        assert len(ids) == len(set(ids))

    @given(agent_lists, kinds, priorities)
    def test_routing_picks_only_an_available_agent_with_room(
        self, agents: tuple[Candidate, ...], kind: ChannelKind, priority: Priority
    ) -> None:
        routing = RoutingPolicy(1, RoutingDocument(default_team="support"))
        facts = ConversationFacts(uuid4(), kind, priority)
        decision = route(facts, CustomerContext(), routing, [team_of(agents)], agents, NOW)
        able = [a for a in agents if a.can_take(kind, frozenset())]
        if decision.agent is None:
            assert not able
        else:
            chosen = next(a for a in agents if a.key == decision.agent)
            assert chosen.can_take(kind, frozenset())
            assert chosen.free(kind) == max(a.free(kind) for a in able)


class TestQueueOrder:
    @given(queues, st.randoms(use_true_random=False))
    def test_the_order_does_not_depend_on_the_order_entries_arrive_in(
        self, queue: list[QueueEntry], random: Random
    ) -> None:
        shuffled = list(queue)
        random.shuffle(shuffled)
        assert queue_order(shuffled) == queue_order(queue)

    @given(queues)
    def test_no_two_entries_tie(self, queue: list[QueueEntry]) -> None:
        assert len({queue_key(e) for e in queue}) == len(queue)

    @given(queues)
    def test_higher_priority_first_then_the_sooner_breach(self, queue: list[QueueEntry]) -> None:
        ordered = queue_order(queue)
        for before, after in itertools.pairwise(ordered):
            assert before.priority.rank >= after.priority.rank
            if before.priority is after.priority and after.breach_at is not None:
                assert before.breach_at is not None
                assert before.breach_at <= after.breach_at


steps = st.lists(
    st.tuples(st.sampled_from(["receive", "reply", "resolve"]), st.sampled_from(list(Channel))),
    min_size=1,
    max_size=25,
)


class TestOneThread:
    @given(st.uuids(), steps)
    def test_a_customer_s_messages_stay_in_one_conversation_whatever_the_channels(
        self, customer: UUID, sequence: list[tuple[str, Channel]]
    ) -> None:
        rules = default_rule_set()
        agent = ActingAgent("ana", frozenset({"support"}))
        conversation = Conversation.start(customer, "customer", NOW)
        received: list[Channel] = []
        at = NOW
        for action, channel in sequence:
            at += timedelta(minutes=5)
            if action == "receive":
                conversation.receive(uuid4(), channel, "hi", at, at)
                received.append(channel)
                assert conversation.id == conversation_id(customer)
            elif action == "reply" and received:
                message = conversation.reply(
                    uuid4(), agent, "hello", rules, at, template="greeting"
                )
                assert message.channel is received[-1]
            elif action == "resolve":
                conversation.resolve("done", "ana", at)
        inbound = [m.channel for m in conversation.messages if m.author == "customer"]
        assert inbound == received
        assert conversation.id == conversation_id(customer)
        assert list(conversation.channels) == list(
            dict.fromkeys(m.channel for m in conversation.messages)
        )
        if received and sequence[-1][0] == "receive":
            assert conversation.is_open
