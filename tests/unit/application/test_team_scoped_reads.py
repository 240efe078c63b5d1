"""A reader limited to teams reads a customer's timeline and context without another team's
messages, decisions, approvals and conversations; the customer themselves is everyone's."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import uuid4

import msgspec

from application.approvals.settle_approval import SettleApproval
from application.queries.customer_timeline import CustomerTimeline
from application.queries.customers import CustomerQueries
from application.queries.team_scope import EVERY_TEAM, TeamScope
from domain.conversation.aggregate import CUSTOMER, Conversation
from domain.customer.contact import ConsentRecord
from domain.policy.decision import Outcome, SendRequest
from domain.policy.vocabulary import Channel, Purpose
from tests.unit.application.test_approvals import REFUND, REFUND_REPLY, TEXT
from tests.unit.application.test_customer_context import ANA, HELLO, ContextWorld

if TYPE_CHECKING:
    from uuid import UUID

    from ports.approvals import ApprovalRecord
    from ports.customers import StoredEvent

GROWTH = TeamScope(frozenset({"growth"}), frozenset({"growth"}))
NEWSLETTER = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,))
INVOICE = SendRequest("billing", Purpose.TRANSACTIONAL, (Channel.EMAIL,))


class StoredApprovals:
    """The approvals as committed in memory, as operators read them."""

    def __init__(self, world: ContextWorld) -> None:
        self.world = world

    async def get(self, approval_id: UUID) -> ApprovalRecord | None:
        return self.world.storage.approvals.get(approval_id)


class TeamsWorld(ContextWorld):
    """Ana, written to by growth, billing and support, in a conversation with growth and one
    with billing."""

    def __init__(self) -> None:
        super().__init__()
        self.timeline = CustomerTimeline(
            CustomerQueries(self.customers),
            self.delivery,
            StoredApprovals(self),  # type: ignore[arg-type]
            self.inbox,
        )

    async def build(self) -> None:
        await self.publish(approvals=(REFUND,))
        self.ana = (await self.upsert((ANA,), {"first_name": "Ana"}, {})).customer_id
        grant = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
        await self.change_consent(self.ana, [grant])
        self.growth_send = await self.request_message(self.ana, NEWSLETTER, content=HELLO)
        self.billing_send = await self.request_message(self.ana, INVOICE, content=HELLO)
        held = await self.request_message(self.ana, REFUND_REPLY, content=TEXT)
        assert held.decision is not None
        assert held.decision.outcome is Outcome.HOLD
        settle = SettleApproval(self.uows, self.rule_sets, self.clock, self.ids, self.templates)
        await settle.reject(held.decision_id, "lea (admin key k1)")
        self.support_send = held
        self.growth_talk = await self.conversation_with("growth")
        self.billing_talk = await self.conversation_with("billing")
        self.settle()

    async def conversation_with(self, team: str) -> UUID:
        now = self.clock.now()
        conversation = Conversation.start(self.ana, CUSTOMER, now, f"about-{team}")
        conversation.receive(uuid4(), Channel.EMAIL, "hello", now, now)
        conversation.transfer(team, None, "routed", "router", now)
        async with self.uows() as uow:
            uow.repository(Conversation).add(conversation)
        return conversation.id

    def others(self) -> set[str]:
        """The ids of what is not growth's: billing's and support's sends, billing's talk."""
        return {
            str(self.billing_send.message_id),
            str(self.billing_send.decision_id),
            str(self.support_send.message_id),
            str(self.support_send.decision_id),
            str(self.billing_talk),
        }

    def growths(self) -> set[str]:
        return {
            str(self.growth_send.message_id),
            str(self.growth_send.decision_id),
            str(self.growth_talk),
        }

    async def whole_timeline(self, scope: TeamScope, limit: int) -> list[StoredEvent]:
        """Every page, `limit` events at a time."""
        events: list[StoredEvent] = []
        before = None
        while True:
            page = await self.timeline.page(self.ana, scope, limit=limit, before=before)
            events.extend(page.events)
            if page.next_before is None:
                return events
            before = page.next_before


def names(event: StoredEvent) -> str:
    """Everything an event says: its stream and its payload."""
    return f"{event.stream_id} {msgspec.json.encode(dict(event.data)).decode()}"


def mentioned(events: list[StoredEvent], ids: set[str]) -> set[str]:
    return {i for i in ids for event in events if i in names(event)}


class TestTheTimeline:
    async def test_every_team_sees_every_send_approval_and_conversation(self) -> None:
        world = TeamsWorld()
        await world.build()
        events = await world.whole_timeline(EVERY_TEAM, 500)
        assert mentioned(events, world.others() | world.growths()) == (
            world.others() | world.growths()
        )

    async def test_a_team_sees_its_own_and_the_customer_but_nothing_of_another_team(
        self,
    ) -> None:
        world = TeamsWorld()
        await world.build()
        for limit in (1, 500):  # one event a page: each team is looked up, not read off the page
            events = await world.whole_timeline(GROWTH, limit)
            assert mentioned(events, world.others()) == set()
            assert mentioned(events, world.growths()) == world.growths()
            topics = {event.topic.rpartition(":")[2] for event in events}
            assert {"Customer.Registered", "Customer.ConsentChanged"} <= topics
            assert {"Message.Queued", "Conversation.Transferred"} <= topics
            assert "Customer.ApprovalSettled" not in topics

    async def test_a_reader_of_every_teams_sends_and_no_conversation(self) -> None:
        world = TeamsWorld()
        await world.build()
        talks = {str(world.growth_talk), str(world.billing_talk)}
        sends = (world.others() | world.growths()) - talks
        events = await world.whole_timeline(TeamScope(None, frozenset()), 1)
        assert mentioned(events, sends | talks) == sends

    async def test_a_filtered_page_keeps_its_cursor(self) -> None:
        world = TeamsWorld()
        await world.build()
        newest = await world.timeline.page(world.ana, GROWTH, limit=1, before=None)
        assert newest.events == []  # billing's conversation is the newest
        assert newest.next_before is not None


class TestTheContext:
    async def test_a_team_gets_its_decisions_and_conversations_only(self) -> None:
        world = TeamsWorld()
        await world.build()
        context = await world.context.of(world.ana, GROWTH)
        assert [d.decision_id for d in context.decisions] == [str(world.growth_send.decision_id)]
        assert [c.conversation_id for c in context.conversations] == [world.growth_talk]
        assert context.open_conversations == 1
        assert context.profile["first_name"] == "Ana"

    async def test_every_team_gets_them_all(self) -> None:
        world = TeamsWorld()
        await world.build()
        context = await world.context.of(world.ana)
        assert len(context.decisions) == 4  # growth, billing, support's hold and its rejection
        assert {c.conversation_id for c in context.conversations} == {
            world.growth_talk,
            world.billing_talk,
        }
