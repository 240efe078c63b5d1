"""An agent's commands on a conversation: reply, note, snooze, resolve, reopen, tags,
priority."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from adapters.inmemory.templates import InMemoryTemplates
from adapters.templates.jinja import JinjaRenderer
from application.conversations.labels import TagChange
from application.conversations.lifecycle import ConversationClosed
from application.conversations.replies import ChannelUnavailable, Reply, ReplyNeedsTemplate
from application.messages.request_message import IdempotencyKeyReused
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.conversation.aggregate import Conversation, ConversationStatus, Direction, NotOnTeam
from domain.conversation.vocabulary import ChannelKind, Priority
from domain.policy.decision import Outcome
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue, NotFound
from domain.templates.aggregate import Variant
from tests.unit.application.conversations.desk import ADMIN, Desk, ana, bruno

HOUR = timedelta(hours=1)


class TestReply:
    async def test_a_reply_goes_on_the_customer_s_last_channel_and_into_the_thread(
        self,
    ) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        answer = await desk.reply(conversation, ana("support"), Reply(text="On its way!"))
        assert (answer.outcome, answer.sent, answer.channel) == (
            Outcome.SEND,
            True,
            Channel.WHATSAPP,
        )
        [message] = await desk.lease(Channel.WHATSAPP)
        assert message.id == answer.message_id
        thread = await desk.thread(conversation)
        sent = thread.messages[-1]
        assert (sent.direction, sent.author, sent.message_id) == (
            Direction.OUTBOUND,
            "ana.silva",
            answer.message_id,
        )
        assert thread.status is ConversationStatus.WAITING_ON_CUSTOMER

    async def test_the_agent_may_pick_another_channel(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        answer = await desk.reply(
            conversation, ana("support"), Reply(text="Details by email", channel=Channel.EMAIL)
        )
        assert (answer.sent, answer.channel) == (True, Channel.EMAIL)
        [message] = await desk.lease(Channel.EMAIL)
        assert message.id == answer.message_id

    async def test_an_agent_not_on_the_team_is_refused_and_nothing_goes(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        with pytest.raises(NotOnTeam):
            await desk.reply(conversation, bruno("billing"), Reply(text="Hi"))
        assert desk.storage.outbox == {}
        assert len((await desk.thread(conversation)).messages) == 1

    async def test_a_supervising_key_replies_on_any_team(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        assert (await desk.reply(conversation, ADMIN, Reply(text="Hi"))).sent is True

    async def test_a_reply_the_rules_suppress_answers_with_the_decision_and_nothing_goes(
        self,
    ) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.SMS)
        customer = (await desk.thread(conversation)).customer_id
        await desk.change_suppression(customer, Channel.SMS, "carrier complaint", active=True)
        answer = await desk.reply(conversation, ana("support"), Reply(text="Hi"))
        assert (answer.outcome, answer.sent) == (Outcome.SUPPRESS, False)
        assert desk.storage.outbox == {}
        thread = await desk.thread(conversation)
        assert len(thread.messages) == 1
        assert thread.status is ConversationStatus.WAITING_ON_US

    async def test_outside_the_whatsapp_window_a_template_is_needed_and_offered(
        self,
    ) -> None:
        desk = Desk()
        await desk.staffed()
        approved = Variant(
            Channel.WHATSAPP, "en", whatsapp_template="order_update", whatsapp_language="en"
        )
        publish = PublishTemplate(
            desk.uows, InMemoryTemplates(desk.storage), desk.clock, JinjaRenderer()
        )
        await publish("order-update", TemplateDraft((approved,), "en"), "ana")
        session_text = Variant(Channel.WHATSAPP, "en", body="Hi {{ customer.first_name }}")
        await publish("hello", TemplateDraft((session_text,), "en"), "ana")
        conversation = await desk.conversation(Channel.WHATSAPP)
        desk.clock.advance(25 * HOUR)
        with pytest.raises(ReplyNeedsTemplate) as needed:
            await desk.reply(conversation, ana("support"), Reply(text="Still there?"))
        assert needed.value.channel is Channel.WHATSAPP
        assert needed.value.templates == ("order-update",)
        assert desk.storage.outbox == {}
        answer = await desk.reply(conversation, ana("support"), Reply(template="order-update"))
        assert answer.sent is True

    async def test_a_reply_to_a_resolved_conversation_reopens_it(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        await desk.resolve(conversation, ana("support"), "answered")
        await desk.reply(conversation, ana("support"), Reply(text="One more thing"))
        thread = await desk.thread(conversation)
        assert (thread.reopened, thread.status) == (1, ConversationStatus.WAITING_ON_CUSTOMER)

    async def test_a_reply_reopening_past_its_agents_capacity_goes_and_queues_the_thread(
        self,
    ) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        async with desk.uows() as uow:
            thread = (await uow.repository(Conversation).get([conversation]))[conversation]
            thread.assign(ana("support").agent, "support", "test", "admin", desk.clock.now())  # type: ignore[arg-type]
            uow.repository(Conversation).add(thread)
        await desk.resolve(conversation, ana("support"), "answered")
        # Ana's chat places are all taken meanwhile (her capacity lowered to none).
        await desk.change_agent_capacity("ana.silva", {ChannelKind.CHAT: 0}, "admin")
        answer = await desk.reply(conversation, ana("support"), Reply(text="One more thing"))
        assert (answer.sent, answer.outcome) == (True, Outcome.SEND)
        assert len(desk.storage.outbox) == 1
        thread = await desk.thread(conversation)
        assert (thread.status, thread.team, thread.agent) == (
            ConversationStatus.WAITING_ON_CUSTOMER,
            "support",
            None,
        )
        assert thread.history[-1].reason == (
            "reopened by a reply while ana.silva had no room for it"
        )
        assert [m.text for m in thread.messages][-1] == "One more thing"

    async def test_a_retry_whose_first_try_was_not_recorded_records_it_once(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        roster = desk.reply.roster
        lost = [ConnectionError("the database went away")]

        class LostOnce:
            async def candidates(self, agents: Any) -> Any:
                if lost:
                    raise lost.pop()
                return await roster.candidates(agents)

            async def teams(self) -> Any:
                return await roster.teams()

        desk.reply.roster = LostOnce()  # type: ignore[assignment]
        async with desk.uows() as uow:
            thread = (await uow.repository(Conversation).get([conversation]))[conversation]
            thread.assign(ana("support").agent, "support", "test", "admin", desk.clock.now())  # type: ignore[arg-type]
            uow.repository(Conversation).add(thread)
        await desk.resolve(conversation, ana("support"), "answered")
        with pytest.raises(ConnectionError):  # its message was queued; its thread not told
            await desk.reply(conversation, ana("support"), Reply(text="Hi"), "k-2")
        assert len((await desk.thread(conversation)).messages) == 1
        again = await desk.reply(conversation, ana("support"), Reply(text="Hi"), "k-2")
        assert (again.repeated, again.sent, again.channel) == (True, True, Channel.WHATSAPP)
        assert len(desk.storage.outbox) == 1
        thread = await desk.thread(conversation)
        assert [m.message_id for m in thread.messages][-1] == again.message_id

    async def test_a_reply_the_rules_defer_goes_into_the_thread_when_it_goes(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        answers = [
            await desk.reply(conversation, ana("support"), Reply(text=f"Update {n}"))
            for n in range(1, 6)
        ]
        deferred = [a for a in answers if a.outcome is Outcome.DEFER]
        assert deferred, [a.outcome for a in answers]  # the global daily cap defers the last
        later = deferred[0]
        assert later.sent is False
        thread = await desk.thread(conversation)
        assert later.message_id not in {m.message_id for m in thread.messages}
        desk.clock.advance(timedelta(hours=25))
        assert await desk.redecide_due() >= 1
        thread = await desk.thread(conversation)
        sent = {m.message_id: m for m in thread.messages}
        assert sent[later.message_id].author == "ana.silva"
        assert sent[later.message_id].text == "Update " + str(answers.index(later) + 1)
        assert later.message_id in desk.storage.outbox

    async def test_a_deferred_reply_the_rules_then_suppress_is_noted_in_the_thread(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        answers = [
            await desk.reply(conversation, ana("support"), Reply(text=f"Update {n}"))
            for n in range(1, 5)
        ]
        assert answers[-1].outcome is Outcome.DEFER
        # A day on, WhatsApp's service window has closed: free text may no longer go.
        desk.clock.advance(timedelta(hours=25))
        await desk.redecide_due()
        thread = await desk.thread(conversation)
        assert answers[-1].message_id not in {m.message_id for m in thread.messages}
        (note,) = [n for n in thread.notes if n.note_id == answers[-1].message_id]
        assert note.text.startswith("Reply not sent (suppressed by the rules: ")
        assert note.text.endswith("): Update 4")

    async def test_a_retry_with_the_same_idempotency_key_sends_once(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        first = await desk.reply(conversation, ana("support"), Reply(text="Hi"), "k-1")
        again = await desk.reply(conversation, ana("support"), Reply(text="Hi"), "k-1")
        assert again.repeated is True
        assert (again.message_id, again.sent) == (first.message_id, True)
        assert len(desk.storage.outbox) == 1
        assert len((await desk.thread(conversation)).messages) == 2

    @pytest.mark.parametrize("channel", [Channel.VOICE, Channel.CHAT])
    async def test_a_channel_no_provider_serves_is_refused_before_anything_is_decided(
        self, channel: Channel
    ) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        with pytest.raises(ChannelUnavailable) as refused:
            await desk.reply(conversation, ana("support"), Reply(text="hi", channel=channel))
        assert refused.value.channel is channel
        assert str(refused.value) == (
            f"no provider serves {channel}: pick a channel that one serves "
            "(email, sms, whatsapp, push)"
        )
        thread = await desk.thread(conversation)
        assert (thread.status, len(thread.messages)) == (ConversationStatus.WAITING_ON_US, 1)
        assert desk.storage.outbox == {}
        assert (
            desk.count("Customer.MessageAllowed") == desk.count("Customer.MessageSuppressed") == 0
        )

    async def test_the_customer_s_last_channel_unserved_asks_for_another(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.CHAT)
        with pytest.raises(ChannelUnavailable, match="the customer last wrote on it"):
            await desk.reply(conversation, ana("support"), Reply(text="hi"))
        answer = await desk.reply(
            conversation, ana("support"), Reply(text="hi", channel=Channel.EMAIL)
        )
        assert (answer.sent, answer.channel) == (True, Channel.EMAIL)

    async def test_a_reply_says_something(self) -> None:
        with pytest.raises(InvalidValue):
            Reply(text="  ")
        with pytest.raises(InvalidValue):
            Reply(text="Hi", template="hello")

    async def test_an_unknown_conversation_is_not_found(self) -> None:
        desk = Desk()
        with pytest.raises(NotFound):
            await desk.reply(desk.ids.new_id(), ADMIN, Reply(text="Hi"))


class TestNotes:
    async def test_a_note_by_an_agent_of_the_team_is_kept_and_never_sent(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        added = await desk.add_note(conversation, ana("support"), "VIP, be quick")
        thread = await desk.thread(conversation)
        assert [n.text for n in thread.notes] == ["VIP, be quick"]
        assert added.note.author == "ana.silva"
        assert desk.storage.outbox == {}

    async def test_a_retry_with_the_same_idempotency_key_adds_one_note(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        await desk.add_note(conversation, ana("support"), "Called her", "n-1")
        again = await desk.add_note(conversation, ana("support"), "Called her", "n-1")
        assert again.repeated is True
        assert len((await desk.thread(conversation)).notes) == 1

    async def test_the_same_idempotency_key_with_another_note_is_refused(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        await desk.add_note(conversation, ana("support"), "first", "nt-9")
        with pytest.raises(IdempotencyKeyReused):
            await desk.add_note(conversation, ana("support"), "second, different", "nt-9")
        with pytest.raises(IdempotencyKeyReused):
            await desk.add_note(conversation, ADMIN, "first", "nt-9")
        assert [n.text for n in (await desk.thread(conversation)).notes] == ["first"]

    async def test_an_agent_of_another_team_may_not_add_one(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        with pytest.raises(NotOnTeam):
            await desk.add_note(conversation, bruno("billing"), "hm")


class TestSnoozeResolveReopen:
    async def test_a_snoozed_conversation_says_until_when(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        until = desk.clock.now() + 2 * HOUR
        snoozed = await desk.snooze(conversation, ana("support"), until)
        assert (snoozed.status, snoozed.snoozed_until, snoozed.changed) == (
            ConversationStatus.SNOOZED,
            until,
            True,
        )
        again = await desk.snooze(conversation, ana("support"), until)
        assert again.changed is False
        assert desk.count("Conversation.Snoozed") == 1

    async def test_a_snooze_more_than_a_year_ahead_names_the_field_and_sets_no_timer(
        self,
    ) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        with pytest.raises(InvalidValue, match="at most 365 days ahead") as refused:
            await desk.snooze(conversation, ana("support"), desk.clock.now() + 366 * 24 * HOUR)
        assert refused.value.field == "until"
        assert await desk.timers.lease_due(desk.clock.now() + 400 * 24 * HOUR, 10, 60) == []

    async def test_a_snooze_into_the_past_names_the_field(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        with pytest.raises(InvalidValue) as refused:
            await desk.snooze(conversation, ana("support"), desk.clock.now() - HOUR)
        assert refused.value.field == "until"

    async def test_a_resolved_conversation_is_neither_snoozed_nor_resolved_twice(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        assert (await desk.resolve(conversation, ana("support"), "done")).changed is True
        assert (await desk.resolve(conversation, ana("support"), "done")).changed is False
        with pytest.raises(ConversationClosed):
            await desk.snooze(conversation, ana("support"), desk.clock.now() + HOUR)
        reopened = await desk.reopen(conversation, ana("support"), "she wrote back by phone")
        assert (reopened.status, reopened.changed) == (ConversationStatus.WAITING_ON_US, True)
        assert (await desk.reopen(conversation, ana("support"))).changed is False

    async def test_an_agent_of_another_team_may_not_resolve_it(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        with pytest.raises(NotOnTeam):
            await desk.resolve(conversation, bruno("billing"), "not mine")
        assert (await desk.thread(conversation)).status is ConversationStatus.WAITING_ON_US


class TestWakeSnoozed:
    async def test_a_snoozed_conversation_wakes_when_its_time_comes_with_no_new_traffic(
        self,
    ) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        await desk.snooze(conversation, ana("support"), desk.clock.now() + 2 * HOUR)
        desk.clock.advance(HOUR)
        assert await desk.wake_snoozed(10) == 0
        desk.clock.advance(HOUR)
        assert await desk.wake_snoozed(10) == 1
        thread = await desk.thread(conversation)
        assert (thread.status, thread.snoozed_until) == (ConversationStatus.WAITING_ON_US, None)
        assert desk.timers.due == {}

    async def test_a_snooze_made_longer_waits_for_its_new_time(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        await desk.snooze(conversation, ana("support"), desk.clock.now() + HOUR)
        later = desk.clock.now() + 3 * HOUR
        await desk.snooze(conversation, ana("support"), later)
        desk.clock.advance(2 * HOUR)
        assert await desk.wake_snoozed(10) == 0
        assert (await desk.thread(conversation)).status is ConversationStatus.SNOOZED
        desk.clock.advance(HOUR)
        assert await desk.wake_snoozed(10) == 1
        assert (await desk.thread(conversation)).status is ConversationStatus.WAITING_ON_US

    async def test_a_timer_whose_conversation_was_resolved_meanwhile_wakes_nothing(
        self,
    ) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        await desk.snooze(conversation, ana("support"), desk.clock.now() + HOUR)
        await desk.resolve(conversation, ana("support"), "sorted by phone")
        desk.clock.advance(2 * HOUR)
        assert await desk.wake_snoozed(10) == 1
        assert (await desk.thread(conversation)).status is ConversationStatus.RESOLVED
        assert desk.count("Conversation.Woke") == 0
        assert desk.timers.due == {}


class TestReplyText:
    async def test_the_agent_s_words_go_as_written_never_as_template_code(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.WHATSAPP)
        words = "Use code {{ customer.id }} {% if x %}"
        await desk.reply(conversation, ana("support"), Reply(text=words))
        [message] = await desk.lease(Channel.WHATSAPP)
        assert message.content.body == words


class TestTagsAndPriority:
    async def test_tags_are_set_added_and_removed_by_an_agent_of_the_team(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        whole = TagChange(frozenset({"refund", "late"}))
        labels = await desk.change_tags(conversation, ana("support"), whole)
        assert (labels.tags, labels.changed) == (("late", "refund"), True)
        assert (await desk.change_tags(conversation, ana("support"), whole)).changed is False
        moved = TagChange(add=frozenset({"vip"}), remove=frozenset({"late"}))
        labels = await desk.change_tags(conversation, ana("support"), moved)
        assert (labels.tags, labels.changed) == (("refund", "vip"), True)
        cleared = await desk.change_tags(conversation, ADMIN, TagChange(frozenset()))
        assert cleared.tags == ()
        assert (desk.count("Conversation.Tagged"), desk.count("Conversation.Untagged")) == (2, 2)

    async def test_an_agent_of_another_team_may_not_tag_it_or_set_its_priority(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        with pytest.raises(NotOnTeam):
            await desk.change_tags(conversation, bruno("billing"), TagChange(add=frozenset({"x"})))
        with pytest.raises(NotOnTeam):
            await desk.change_priority(conversation, bruno("billing"), Priority.URGENT)
        thread = await desk.thread(conversation)
        assert (thread.tags, thread.priority) == (frozenset(), Priority.NORMAL)

    async def test_a_change_gives_the_whole_set_or_what_to_add_and_remove(self) -> None:
        with pytest.raises(InvalidValue, match="not both") as both:
            TagChange(frozenset({"a"}), add=frozenset({"b"}))
        with pytest.raises(InvalidValue, match="give the whole set") as neither:
            TagChange()
        assert both.value.field == neither.value.field == "tags"

    async def test_more_than_twenty_tags_are_refused_naming_the_field(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        many = frozenset(f"t{n}" for n in range(21))
        with pytest.raises(InvalidValue, match="at most 20 tags") as refused:
            await desk.change_tags(conversation, ana("support"), TagChange(add=many))
        assert refused.value.field == "add"

    async def test_the_priority_is_set_with_why_once(self) -> None:
        desk = Desk()
        await desk.staffed()
        conversation = await desk.conversation(Channel.EMAIL)
        set_ = await desk.change_priority(conversation, ana("support"), Priority.HIGH, "VIP")
        assert (set_.priority, set_.changed) == (Priority.HIGH, True)
        again = await desk.change_priority(conversation, ana("support"), Priority.HIGH)
        assert again.changed is False
        assert desk.count("Conversation.PriorityChanged") == 1
