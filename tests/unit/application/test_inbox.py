"""The inbox read model and its queries, in memory: rows folded from the Conversation events,
filters, cursors, what a reader's teams let them see, the changes a stream follows, and one
conversation's thread with its customer's context."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from application.queries.inbox import ConversationHidden
from application.queries.inbox_feed import FeedOverrun, InboxFeed
from domain.conversation.aggregate import ActingAgent, ConversationStatus
from domain.conversation.vocabulary import Priority, Sentiment
from domain.customer.identities import Verification
from domain.policy.vocabulary import Channel
from domain.shared.errors import NotFound
from ports.inbox import InboxFilter, InboxRow, InboxStatus, InvalidInboxCursor
from tests.unit.application.inbox_world import InboxWorld

ANA = ActingAgent("ana", frozenset({"support"}))


class TestTheInboxRow:
    async def test_a_customer_writing_on_three_channels_is_one_row_with_every_channel(
        self,
    ) -> None:
        world = InboxWorld()
        customer = await world.customer()
        conversation = await world.conversation(customer, Channel.EMAIL, team="support")
        for channel in (Channel.WHATSAPP, Channel.SMS):
            now = world.clock.now()
            await world.change(conversation, ("receive", (uuid4(), channel, "hi", now, now)))
        await world.settle()
        page = await world.queries.page(InboxFilter(), None)
        (row,) = page.items
        assert row.channels == (Channel.EMAIL, Channel.WHATSAPP, Channel.SMS)
        assert row.channel is Channel.SMS
        assert (row.messages, row.status, row.team) == (3, "waiting_on_us", "support")
        assert row.awaiting_since == world.clock.now()

    async def test_the_row_follows_replies_classification_priority_tags_and_resolution(
        self,
    ) -> None:
        world = InboxWorld()
        customer = await world.customer()
        conversation = await world.conversation(customer, Channel.CHAT, team="support", agent="ana")
        now = world.clock.now()
        await world.change(
            conversation,
            ("reply", (uuid4(), ANA, "on it", world.rules, now)),
            ("classify", ("refund", Sentiment.NEGATIVE, "classifier", now, 0.9)),
            ("change_priority", (Priority.HIGH, "angry", "ana", now)),
            ("tag", (frozenset({"refund", "vip"}), "ana", now)),
            ("resolve", ("refunded", "ana", now)),
        )
        await world.settle()
        row = await world.inbox.get(conversation)
        assert row is not None
        assert (row.status, row.agent, row.intent, row.sentiment, row.priority) == (
            ConversationStatus.RESOLVED,
            "ana",
            "refund",
            Sentiment.NEGATIVE,
            Priority.HIGH,
        )
        assert row.tags == ("refund", "vip")
        assert row.awaiting_since is None
        assert row.seq == world.inbox.seq

    async def test_each_change_moves_the_row_to_the_latest_seq(self) -> None:
        world = InboxWorld()
        customer = await world.customer()
        first = await world.conversation(customer, Channel.EMAIL, topic="one")
        second = await world.conversation(customer, Channel.EMAIL, topic="two")
        await world.settle()
        now = world.clock.now()
        await world.change(first, ("tag", (frozenset({"late"}), "ana", now)))
        await world.settle()
        page = await world.queries.page(InboxFilter(), None)
        assert [row.conversation_id for row in page.items] == [first, second]
        assert page.high_water == page.items[0].seq


class TestFiltersAndCursors:
    async def test_each_filter_keeps_only_what_it_names(self) -> None:
        world = InboxWorld()
        customer = await world.customer()
        email = await world.conversation(customer, Channel.EMAIL, topic="a", team="support")
        chat = await world.conversation(
            customer, Channel.CHAT, topic="b", team="billing", agent="bo"
        )
        resolved = await world.conversation(customer, Channel.SMS, topic="c", team="support")
        now = world.clock.now()
        await world.change(chat, ("classify", ("refund", None, "classifier", now)))
        await world.change(email, ("change_priority", (Priority.URGENT, "vip", "router", now)))
        await world.change(chat, ("tag", (frozenset({"vip"}), "bo", now)))
        await world.change(resolved, ("resolve", ("done", "ana", now)))
        await world.settle()

        async def ids(where: InboxFilter) -> list[object]:
            return [r.conversation_id for r in (await world.queries.page(where, None)).items]

        assert await ids(InboxFilter(team="billing")) == [chat]
        assert await ids(InboxFilter(agent="bo")) == [chat]
        assert await ids(InboxFilter(channel=Channel.EMAIL)) == [email]
        assert await ids(InboxFilter(intent="refund")) == [chat]
        assert await ids(InboxFilter(priority=Priority.URGENT)) == [email]
        assert await ids(InboxFilter(status=InboxStatus.RESOLVED)) == [resolved]
        assert await ids(InboxFilter(status=InboxStatus.OPEN)) == []
        # Every conversation but the resolved one, whoever it waits on.
        assert await ids(InboxFilter(status=InboxStatus.UNRESOLVED)) == [chat, email]
        assert await ids(InboxFilter(tag="vip")) == [chat]
        assert await ids(InboxFilter(customer_id=customer)) == [resolved, chat, email]

    async def test_assigned_keeps_the_unresolved_held_or_waiting_for_an_agent(self) -> None:
        world = InboxWorld()
        customer = await world.customer()
        queued = await world.conversation(customer, Channel.EMAIL, topic="a", team="support")
        unrouted = await world.conversation(customer, Channel.SMS, topic="b")
        held = await world.conversation(
            customer, Channel.CHAT, topic="c", team="billing", agent="bo"
        )
        done = await world.conversation(customer, Channel.CHAT, topic="d", team="support")
        await world.change(done, ("resolve", ("answered", "bo", world.clock.now())))
        over = await world.conversation(
            customer, Channel.CHAT, topic="e", team="billing", agent="bo"
        )
        await world.change(over, ("resolve", ("answered", "bo", world.clock.now())))
        await world.settle()

        async def ids(where: InboxFilter, visible: frozenset[str] | None = None) -> list[object]:
            return [r.conversation_id for r in (await world.queries.page(where, visible)).items]

        assert await ids(InboxFilter(assigned=False)) == [unrouted, queued]
        assert await ids(InboxFilter(assigned=True)) == [held]
        assert await ids(InboxFilter(assigned=False, team="support")) == [queued]
        assert await ids(InboxFilter(assigned=False), frozenset({"support"})) == [queued]
        assert await ids(InboxFilter(assigned=False, agent="bo")) == []
        await world.change(held, ("unassign", ("bo went home", "x", world.clock.now())))
        await world.settle()
        assert await ids(InboxFilter(assigned=False)) == [held, unrouted, queued]
        assert await ids(InboxFilter(assigned=True)) == []

    async def test_pages_follow_their_cursors_to_the_end(self) -> None:
        world = InboxWorld()
        customer = await world.customer()
        made = [await world.conversation(customer, Channel.EMAIL, topic=f"t{n}") for n in range(5)]
        await world.settle()
        seen: list[object] = []
        after = None
        while True:
            page = await world.queries.page(InboxFilter(), None, after=after, limit=2)
            seen += [row.conversation_id for row in page.items]
            after = page.next_cursor
            if after is None:
                break
        assert seen == list(reversed(made))

    async def test_a_cursor_not_handed_out_is_refused(self) -> None:
        world = InboxWorld()
        with pytest.raises(InvalidInboxCursor):
            await world.queries.page(InboxFilter(), None, after="not-a-cursor")

    async def test_breach_within_keeps_the_clocks_that_run_out_by_then(self) -> None:
        world = InboxWorld()
        await world.routing()
        customer = await world.customer()
        chat = await world.conversation(customer, Channel.CHAT, topic="chat", team="support")
        email = await world.conversation(customer, Channel.EMAIL, topic="mail", team="support")
        await world.settle()
        soon = await world.queries.page(InboxFilter(), None, breach_within=timedelta(minutes=30))
        assert [row.conversation_id for row in soon.items] == [chat]
        later = await world.queries.page(InboxFilter(), None, breach_within=timedelta(hours=5))
        assert {row.conversation_id for row in later.items} == {chat, email}
        assert soon.items[0].deadline is not None
        assert soon.items[0].deadline.due == world.clock.now() + timedelta(minutes=2)


class TestVisibility:
    async def test_a_reader_sees_only_their_teams_conversations(self) -> None:
        world = InboxWorld()
        customer = await world.customer()
        mine = await world.conversation(customer, Channel.EMAIL, topic="a", team="support")
        await world.conversation(customer, Channel.EMAIL, topic="b", team="billing")
        await world.conversation(customer, Channel.EMAIL, topic="c")
        await world.settle()
        page = await world.queries.page(InboxFilter(), frozenset({"support"}))
        assert [row.conversation_id for row in page.items] == [mine]
        assert len((await world.queries.page(InboxFilter(), None)).items) == 3

    async def test_another_teams_conversation_is_refused(self) -> None:
        world = InboxWorld()
        customer = await world.customer()
        theirs = await world.conversation(customer, Channel.EMAIL, team="billing")
        with pytest.raises(ConversationHidden):
            await world.queries.conversation(theirs, frozenset({"support"}))


class TestTheStream:
    async def test_it_yields_the_changes_after_the_id_given_in_order(self) -> None:
        world = InboxWorld()
        customer = await world.customer()
        first = await world.conversation(customer, Channel.EMAIL, topic="a")
        second = await world.conversation(customer, Channel.EMAIL, topic="b")
        await world.settle()
        changes = world.queries.changes(InboxFilter(), None, after=0)
        batch = await anext(changes)
        assert [row.conversation_id for row in batch] == [first, second]
        now = world.clock.now()
        await world.change(first, ("tag", (frozenset({"x"}), "ana", now)))
        waiting = asyncio.ensure_future(anext(changes))
        await asyncio.sleep(0)
        await world.settle()
        (row,) = await asyncio.wait_for(waiting, 1)
        assert (row.conversation_id, row.tags) == (first, ("x",))
        await changes.aclose()

    async def test_it_starts_after_the_last_change_and_keeps_to_its_filter(self) -> None:
        world = InboxWorld()
        customer = await world.customer()
        await world.conversation(customer, Channel.EMAIL, topic="old", team="support")
        await world.settle()
        changes = world.queries.changes(InboxFilter(team="billing"), None, heartbeat=0.05)
        assert await anext(changes) == []  # a heartbeat: nothing new
        await world.conversation(customer, Channel.EMAIL, topic="other", team="support")
        billing = await world.conversation(customer, Channel.SMS, topic="new", team="billing")
        await world.settle()
        (row,) = await asyncio.wait_for(anext(changes), 1)
        assert row.conversation_id == billing
        await changes.aclose()

    async def test_from_the_last_change_read_it_misses_none_made_before_it_listens(
        self,
    ) -> None:
        # A stream answers (its opening) once it has read the last change, before it listens.
        world = InboxWorld()
        customer = await world.customer()
        await world.conversation(customer, Channel.EMAIL, topic="old")
        await world.settle()
        start = await world.queries.last_change()
        made = await world.conversation(customer, Channel.EMAIL, topic="meanwhile")
        await world.settle()
        changes = world.queries.changes(InboxFilter(), None, after=start, heartbeat=5)
        (row,) = await asyncio.wait_for(anext(changes), 1)
        assert row.conversation_id == made
        await changes.aclose()

    async def test_many_streams_share_one_read_of_each_change(self) -> None:
        world = InboxWorld()
        customer = await world.customer()
        reads: list[InboxFilter] = []
        changed_since = world.inbox.changed_since

        async def counted(*arguments: Any) -> list[InboxRow]:
            reads.append(arguments[1])
            return await changed_since(*arguments)

        world.inbox.changed_since = counted  # type: ignore[method-assign]
        high_water = world.inbox.high_water

        async def slow_high_water() -> int:
            await asyncio.sleep(0.001)  # streams opening together all wait here
            return await high_water()

        world.inbox.high_water = slow_high_water  # type: ignore[method-assign]
        streams = [world.queries.changes(InboxFilter(), None, heartbeat=5) for _ in range(5)]
        waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]
        async with asyncio.timeout(5):
            while len(world.queries.feed.subscriptions) < 5:
                await asyncio.sleep(0.001)  # every stream open before the change
        made = await world.conversation(customer, Channel.EMAIL)
        await world.settle()
        batches = await asyncio.wait_for(asyncio.gather(*waiting), 5)
        assert [[row.conversation_id for row in batch] for batch in batches] == [[made]] * 5
        assert len(reads) == 1
        for stream in streams:
            await stream.aclose()
        assert world.queries.feed.subscriptions == set()

    async def test_it_asks_its_reach_again_and_leaves_out_a_team_taken_away(self) -> None:
        world = InboxWorld()
        customer = await world.customer()
        support = await world.conversation(customer, Channel.EMAIL, topic="s", team="support")
        billing = await world.conversation(customer, Channel.EMAIL, topic="b", team="billing")
        await world.settle()
        teams = {"support", "billing"}

        async def reach() -> frozenset[str]:
            return frozenset(teams)

        stream = world.queries.changes(InboxFilter(), frozenset(teams), heartbeat=5, reach=reach)
        waiting = asyncio.ensure_future(anext(stream))
        async with asyncio.timeout(5):
            while not world.queries.feed.subscriptions:
                await asyncio.sleep(0.001)
        teams.discard("support")  # the agent is taken off support
        now = world.clock.now()
        await world.change(support, ("tag", (frozenset({"x"}), "ana", now)))
        await world.settle()
        await world.change(billing, ("tag", (frozenset({"y"}), "ana", now)))
        await world.settle()
        (row,) = await asyncio.wait_for(waiting, 1)
        assert (row.conversation_id, row.tags) == (billing, ("y",))
        await stream.aclose()

    async def test_what_its_reach_raises_ends_it_on_a_quiet_stream_too(self) -> None:
        world = InboxWorld()

        class Withdrawn(Exception):
            pass

        async def reach() -> frozenset[str]:
            raise Withdrawn

        stream = world.queries.changes(InboxFilter(), None, heartbeat=0.01, reach=reach)
        with pytest.raises(Withdrawn):
            await asyncio.wait_for(anext(stream), 1)

    async def test_a_quiet_stream_asks_its_reach_between_heartbeats_and_ends_when_it_raises(
        self,
    ) -> None:
        world = InboxWorld()
        asked = 0

        class Revoked(Exception):
            pass

        async def reach() -> None:
            nonlocal asked
            asked += 1
            if asked == 3:
                raise Revoked

        stream = world.queries.changes(
            InboxFilter(), None, heartbeat=0.2, reach=reach, reach_every=0.01
        )
        with pytest.raises(Revoked):
            # Ended after three asks, before its first heartbeat (0.2 s) could be sent.
            await asyncio.wait_for(anext(stream), 0.15)

    async def test_a_quiet_stream_sends_its_heartbeat_at_the_heartbeat_not_at_each_ask(
        self,
    ) -> None:
        world = InboxWorld()
        asked = 0

        async def reach() -> None:
            nonlocal asked
            asked += 1

        stream = world.queries.changes(
            InboxFilter(), None, heartbeat=0.1, reach=reach, reach_every=0.02
        )
        assert await asyncio.wait_for(anext(stream), 1) == []
        assert asked == 5
        await stream.aclose()

    async def test_a_stream_too_far_behind_is_let_go_to_reconnect(self) -> None:
        world = InboxWorld()
        world.queries.feed = InboxFeed(world.inbox, world.changes, behind_at_most=1)
        customer = await world.customer()
        stream = world.queries.changes(InboxFilter(), None, heartbeat=5)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.01)
        for topic in ("a", "b", "c"):
            await world.conversation(customer, Channel.EMAIL, topic=topic)
            await world.settle()
            await asyncio.sleep(0.01)
        assert len(await first) == 1
        with pytest.raises(FeedOverrun):
            await anext(stream)


class TestOneConversation:
    async def test_the_thread_carries_every_channel_notes_history_and_statuses(self) -> None:
        world = InboxWorld()
        customer = await world.customer(tier="vip")
        conversation = await world.conversation(
            customer, Channel.EMAIL, "my card", team="support", agent="ana"
        )
        now = world.clock.now()
        reply = uuid4()
        await world.change(
            conversation,
            ("receive", (uuid4(), Channel.WHATSAPP, "still waiting", now, now)),
            ("reply", (reply, ANA, "sorted", world.rules, now)),
            ("add_note", (uuid4(), ANA, "refund issued", now)),
        )
        found = await world.queries.conversation(conversation, None)
        assert [(m.channel, m.direction) for m in found.thread] == [
            (Channel.EMAIL, "inbound"),
            (Channel.WHATSAPP, "inbound"),
            (Channel.WHATSAPP, "outbound"),
        ]
        assert found.thread[-1].status == "queued"
        assert found.thread[0].status is None
        assert [n[2] for n in found.notes] == ["refund issued"]
        assert [(a.kind, a.agent, a.reason) for a in found.history] == [
            ("assigned", "ana", "least loaded")
        ]
        assert found.customer is not None
        assert found.customer.tier == "vip"

    async def test_an_unverified_identity_is_flagged_and_a_verified_one_is_not(self) -> None:
        world = InboxWorld()
        unverified = await world.customer("ana@example.org")
        verified = await world.customer("bo@example.org", Verification.VERIFIED)
        one = await world.conversation(unverified, Channel.EMAIL)
        two = await world.conversation(verified, Channel.EMAIL)
        flagged = (await world.queries.conversation(one, None)).customer
        assert flagged is not None
        assert [(i.value, i.too_low) for i in flagged.identities] == [("ana@example.org", True)]
        assert flagged.unverified
        trusted = (await world.queries.conversation(two, None)).customer
        assert trusted is not None
        assert not trusted.unverified

    async def test_an_unknown_conversation_is_not_found(self) -> None:
        world = InboxWorld()
        with pytest.raises(NotFound):
            await world.queries.conversation(uuid4(), None)
