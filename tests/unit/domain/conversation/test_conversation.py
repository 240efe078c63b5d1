"""The Conversation aggregate: one thread across channels, its status, replies, assignment."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import pytest

from adapters.postgres.codec import EventCodec
from domain.conversation.aggregate import (
    MAX_SNOOZE,
    MAX_TAGS,
    ActingAgent,
    AlreadyAssigned,
    AssignmentKind,
    Conversation,
    ConversationStatus,
    Direction,
    NoReplyChannel,
    NotOnTeam,
    TemplateNeeded,
    UnknownMessage,
    conversation_id,
)
from domain.conversation.routing import Reason, RoutingDecision
from domain.conversation.sla import Deadline, OnBreach, SlaKind
from domain.conversation.vocabulary import ChannelKind, Priority, Sentiment
from domain.message.aggregate import MessageStatus
from domain.policy.defaults import default_rule_set
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue

from .stored import rebuilt, stored_and_read_back

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
CUSTOMER = UUID("1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed")
RULES = default_rule_set()
ANA = ActingAgent("ana", frozenset({"support"}))
RUI = ActingAgent("rui", frozenset({"support", "billing"}))
EVE = ActingAgent("eve", frozenset({"sales"}))


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def started() -> Conversation:
    return Conversation.start(CUSTOMER, "customer", T0)


def written(channel: Channel = Channel.EMAIL, hours: float = 0) -> Conversation:
    conversation = started()
    conversation.receive(uuid4(), channel, "where is my order?", at(hours), at(hours))
    return conversation


def names(conversation: Conversation) -> list[str]:
    return [type(e).__name__ for e in conversation.collect_events()]


def decision(
    agent: str | None, team: str = "support", priority: Priority = Priority.NORMAL
) -> RoutingDecision:
    return RoutingDecision(
        version=3,
        team=team,
        agent=agent,
        priority=priority,
        escalated=False,
        skills=frozenset(),
        rule="refunds",
        reasons=(Reason("refunds", "intent refund; team support"),),
    )


class TestOneThreadAcrossChannels:
    def test_the_thread_is_found_by_customer_and_topic_never_by_channel(self) -> None:
        conversation = started()
        assert conversation.id == conversation_id(CUSTOMER)
        assert conversation.id != conversation_id(CUSTOMER, "order-42")
        assert conversation.subject_id == CUSTOMER

    def test_email_then_whatsapp_then_sms_stay_in_one_thread_in_order(self) -> None:
        conversation = started()
        for hours, channel in enumerate((Channel.EMAIL, Channel.WHATSAPP, Channel.SMS)):
            conversation.receive(uuid4(), channel, "hello", at(hours), at(hours))
        assert conversation.channels == (Channel.EMAIL, Channel.WHATSAPP, Channel.SMS)
        assert [m.direction for m in conversation.messages] == [Direction.INBOUND] * 3

    def test_the_same_inbound_message_twice_is_recorded_once(self) -> None:
        conversation = started()
        message = uuid4()
        assert conversation.receive(message, Channel.SMS, "hi", T0, T0)
        assert not conversation.receive(message, Channel.SMS, "hi", T0, T0)
        assert len(conversation.messages) == 1

    def test_its_events_are_stored_and_read_back(self) -> None:
        conversation = written()
        conversation.classify("refund", Sentiment.NEGATIVE, "assistant", at(0.1), 0.9)
        conversation.apply_routing(decision("ana"), "router", at(0.2))
        conversation.tag(frozenset({"refund"}), "ana", at(0.3))
        conversation.reply(uuid4(), ANA, "on its way", RULES, at(1))
        events, read_back = stored_and_read_back(conversation)
        assert read_back == events
        again = rebuilt(read_back)
        assert (again.agent, again.tags, again.messages) == (
            "ana",
            frozenset({"refund"}),
            conversation.messages,
        )


class TestStatus:
    def test_a_new_conversation_is_open_then_waits_on_us_when_the_customer_writes(self) -> None:
        conversation = started()
        assert conversation.status is ConversationStatus.OPEN
        conversation.receive(uuid4(), Channel.CHAT, "hello", T0, T0)
        assert conversation.status is ConversationStatus.WAITING_ON_US

    def test_a_reply_waits_on_the_customer(self) -> None:
        conversation = written()
        conversation.reply(uuid4(), ANA, "hello", RULES, at(1))
        assert conversation.status is ConversationStatus.WAITING_ON_CUSTOMER

    def test_a_new_inbound_message_reopens_a_resolved_conversation(self) -> None:
        conversation = written()
        conversation.resolve("answered", "ana", at(1))
        conversation.collect_events()
        conversation.receive(uuid4(), Channel.WHATSAPP, "one more thing", at(2), at(2))
        assert names(conversation) == ["Reopened", "MessageReceived"]
        assert conversation.status is ConversationStatus.WAITING_ON_US
        assert conversation.reopened == 1

    def test_a_reply_to_a_resolved_conversation_reopens_it(self) -> None:
        conversation = written()
        conversation.resolve("answered", "ana", at(1))
        conversation.collect_events()
        conversation.reply(uuid4(), ANA, "one more thing from us", RULES, at(2))
        assert names(conversation) == ["Reopened", "MessageSent"]
        assert conversation.is_open

    def test_a_reopening_starts_the_first_response_clock_from_its_instant(self) -> None:
        conversation = written()
        conversation.resolve("answered", "ana", at(1))
        resolved = conversation.sla_facts()
        assert resolved is not None
        assert resolved.awaiting_since is None
        conversation.reopen("the customer called about it", "ana", at(2))
        facts = conversation.sla_facts()
        assert facts is not None
        assert (facts.awaiting_since, facts.answered_before) == (at(2), False)
        assert rebuilt(stored_and_read_back(conversation)[1]).sla_facts() == facts

    def test_a_message_that_reopens_starts_the_clock_from_when_it_was_written(self) -> None:
        conversation = written()
        conversation.resolve("answered", "ana", at(1))
        conversation.receive(uuid4(), Channel.EMAIL, "one more thing", at(2), at(3))
        facts = conversation.sla_facts()
        assert facts is not None
        assert facts.awaiting_since == at(2)

    def test_resolving_twice_records_once(self) -> None:
        conversation = written()
        assert conversation.resolve("done", "ana", at(1))
        assert not conversation.resolve("done", "ana", at(1))

    def test_a_snoozed_conversation_wakes_when_its_time_comes_not_before(self) -> None:
        conversation = written()
        conversation.snooze(at(5), "ana", at(1))
        assert conversation.status is ConversationStatus.SNOOZED
        assert not conversation.wake("timer", at(4))
        assert conversation.wake("timer", at(5))
        assert conversation.status is ConversationStatus.WAITING_ON_US

    def test_a_message_from_the_customer_wakes_a_snoozed_conversation(self) -> None:
        conversation = written()
        conversation.snooze(at(5), "ana", at(1))
        conversation.receive(uuid4(), Channel.EMAIL, "hello?", at(2), at(2))
        assert conversation.status is ConversationStatus.WAITING_ON_US
        assert conversation.snoozed_until is None

    def test_a_snooze_into_the_past_is_refused(self) -> None:
        with pytest.raises(InvalidValue, match="a time to come"):
            written().snooze(at(0), "ana", at(1))

    def test_a_snooze_is_a_year_ahead_at_most(self) -> None:
        conversation = written()
        conversation.snooze(at(1) + MAX_SNOOZE, "ana", at(1))
        far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
        with pytest.raises(InvalidValue, match="at most 365 days ahead") as refused:
            conversation.snooze(far, "ana", at(1))
        assert refused.value.field == "until"

    def test_an_agent_can_mark_who_it_waits_on(self) -> None:
        conversation = written()
        assert conversation.mark_waiting(True, "ana", at(1))
        assert conversation.status is ConversationStatus.WAITING_ON_CUSTOMER
        assert not conversation.mark_waiting(True, "ana", at(1))


class TestReplies:
    def test_a_reply_goes_on_the_channel_the_customer_last_used(self) -> None:
        conversation = written(Channel.EMAIL)
        conversation.receive(uuid4(), Channel.WHATSAPP, "faster here", at(1), at(1))
        message = conversation.reply(uuid4(), ANA, "sure", RULES, at(2))
        assert message.channel is Channel.WHATSAPP

    def test_the_agent_may_pick_another_channel(self) -> None:
        conversation = written(Channel.WHATSAPP)
        message = conversation.reply(uuid4(), ANA, "details", RULES, at(1), Channel.EMAIL)
        assert message.channel is Channel.EMAIL

    def test_with_no_message_from_the_customer_a_channel_must_be_picked(self) -> None:
        with pytest.raises(NoReplyChannel):
            started().reply(uuid4(), ANA, "hello", RULES, T0)

    def test_a_reply_by_an_agent_not_on_the_conversation_s_team_is_refused(self) -> None:
        conversation = written()
        conversation.apply_routing(decision("ana"), "router", at(0.1))
        with pytest.raises(NotOnTeam, match="'eve' is not on team 'support'"):
            conversation.reply(uuid4(), EVE, "hi", RULES, at(1))

    def test_a_note_by_an_agent_not_on_the_team_is_refused_too(self) -> None:
        conversation = written()
        conversation.apply_routing(decision(None), "router", at(0.1))
        with pytest.raises(NotOnTeam):
            conversation.add_note(uuid4(), EVE, "psst", at(1))
        note = conversation.add_note(uuid4(), RUI, "refund approved", at(1))
        assert conversation.notes == [note]

    def test_whatsapp_s_window_is_open_for_24_hours_after_the_customer_wrote(self) -> None:
        conversation = written(Channel.WHATSAPP, hours=0)
        assert conversation.service_window_open(Channel.WHATSAPP, RULES, at(23.9))
        assert not conversation.service_window_open(Channel.WHATSAPP, RULES, at(24))
        assert conversation.service_window_closes(Channel.WHATSAPP, RULES) == at(24)

    def test_a_channel_without_a_service_window_is_always_open(self) -> None:
        assert started().service_window_open(Channel.EMAIL, RULES, at(1000))

    def test_outside_the_window_a_free_text_reply_needs_a_template(self) -> None:
        conversation = written(Channel.WHATSAPP)
        with pytest.raises(TemplateNeeded, match="whatsapp service window is closed") as refused:
            conversation.check_reply(ANA, RULES, at(25))
        assert refused.value.last_inbound == T0
        message = conversation.reply(uuid4(), ANA, "", RULES, at(25), template="order-update")
        assert message.template == "order-update"

    def test_a_whatsapp_reply_to_a_customer_who_never_wrote_there_needs_a_template(self) -> None:
        conversation = written(Channel.EMAIL)
        with pytest.raises(TemplateNeeded, match="never wrote on it"):
            conversation.check_reply(ANA, RULES, at(1), Channel.WHATSAPP)

    def test_provider_statuses_follow_an_outbound_message_by_its_id(self) -> None:
        conversation = written()
        message = conversation.reply(uuid4(), ANA, "hi", RULES, at(1)).message_id
        assert conversation.status_of(message) is MessageStatus.QUEUED
        assert conversation.record_status(message, MessageStatus.DELIVERED, "ses", at(1.1))
        assert not conversation.record_status(message, MessageStatus.DELIVERED, "ses", at(1.2))
        assert conversation.status_of(message) is MessageStatus.DELIVERED

    @pytest.mark.parametrize(
        "status", [MessageStatus.FAILED, MessageStatus.BOUNCED, MessageStatus.EXPIRED]
    )
    def test_a_reply_that_never_reaches_the_customer_waits_on_us_again(
        self, status: MessageStatus
    ) -> None:
        conversation = written(hours=0)
        conversation.receive(uuid4(), Channel.EMAIL, "hello?", at(1), at(1))
        message = conversation.reply(uuid4(), ANA, "hi", RULES, at(2)).message_id
        assert conversation.record_status(message, status, "ses", at(3))
        assert conversation.status is ConversationStatus.WAITING_ON_US
        facts = conversation.sla_facts()
        assert facts is not None  # the clock runs again, from the customer's first message
        assert (facts.awaiting_since, facts.answered_before) == (T0, True)
        events, read_back = stored_and_read_back(conversation)
        assert [type(e).__name__ for e in events[-2:]] == ["DeliveryUpdated", "ReplyUndelivered"]
        assert read_back[-1].reason == (
            f"the reply on email was not delivered ({status}): the customer has no answer"
        )
        again = rebuilt(read_back)
        assert (again.status, again.awaiting_since) == (ConversationStatus.WAITING_ON_US, T0)

    def test_an_undelivered_reply_that_answered_nothing_runs_the_clock_from_its_failure(
        self,
    ) -> None:
        conversation = written()
        conversation.reply(uuid4(), ANA, "hi", RULES, at(1))
        follow_up = conversation.reply(uuid4(), ANA, "and also", RULES, at(2)).message_id
        conversation.record_status(follow_up, MessageStatus.BOUNCED, "ses", at(3))
        assert conversation.status is ConversationStatus.WAITING_ON_US
        assert conversation.sla_facts().awaiting_since == at(3)  # type: ignore[union-attr]

    def test_a_failed_reply_followed_by_one_that_went_changes_no_status(self) -> None:
        conversation = written()
        first = conversation.reply(uuid4(), ANA, "hi", RULES, at(1)).message_id
        conversation.reply(uuid4(), ANA, "hi again", RULES, at(2))
        conversation.collect_events()
        conversation.record_status(first, MessageStatus.FAILED, "ses", at(3))
        assert names(conversation) == ["DeliveryUpdated"]
        assert conversation.status is ConversationStatus.WAITING_ON_CUSTOMER

    def test_a_failed_reply_leaves_a_snoozed_or_resolved_conversation_as_the_agent_set_it(
        self,
    ) -> None:
        for settle in ("snooze", "resolve"):
            conversation = written()
            message = conversation.reply(uuid4(), ANA, "hi", RULES, at(1)).message_id
            if settle == "snooze":
                conversation.snooze(at(9), "ana", at(2))
            else:
                conversation.resolve("done", "ana", at(2))
            status = conversation.status
            conversation.record_status(message, MessageStatus.FAILED, "ses", at(3))
            assert conversation.status is status

    def test_a_status_for_a_message_not_in_the_thread_is_refused(self) -> None:
        with pytest.raises(UnknownMessage):
            written().record_status(uuid4(), MessageStatus.SENT, "ses", at(1))


class TestAssignment:
    def test_a_routing_decision_with_an_agent_assigns_with_its_reasons(self) -> None:
        conversation = written()
        conversation.apply_routing(decision("ana", priority=Priority.HIGH), "router", at(0.1))
        assert (conversation.team, conversation.agent) == ("support", "ana")
        assert conversation.priority is Priority.HIGH
        (entry,) = conversation.history
        assert entry.kind is AssignmentKind.ASSIGNED
        assert entry.reason == "refunds: intent refund; team support"
        assert entry.by == "router"

    def test_a_routing_decision_without_an_agent_queues_to_the_team(self) -> None:
        conversation = written()
        conversation.apply_routing(decision(None, team="billing"), "router", at(0.1))
        assert (conversation.team, conversation.agent) == ("billing", None)
        assert conversation.history[-1].kind is AssignmentKind.QUEUED

    def test_assigning_an_agent_not_on_the_team_is_refused(self) -> None:
        with pytest.raises(NotOnTeam):
            written().assign(EVE, "support", "picked", "eve", at(1))

    def test_a_second_agent_assigning_a_held_conversation_is_refused(self) -> None:
        conversation = written()
        assert conversation.assign(ANA, "support", "picked it", "ana", at(1))
        assert not conversation.assign(ANA, "support", "again", "ana", at(1))
        with pytest.raises(AlreadyAssigned, match="already assigned to 'ana'"):
            conversation.assign(RUI, "support", "mine", "rui", at(1))

    def test_a_transfer_moves_it_to_another_team_with_its_reason(self) -> None:
        conversation = written()
        conversation.assign(ANA, "support", "picked it", "ana", at(1))
        conversation.transfer("billing", RUI, "a refund question", "ana", at(2))
        assert (conversation.team, conversation.agent) == ("billing", "rui")
        assert [a.kind for a in conversation.history] == [
            AssignmentKind.ASSIGNED,
            AssignmentKind.TRANSFERRED,
        ]
        assert conversation.history[-1].reason == "a refund question"

    def test_a_transfer_without_a_reason_is_refused(self) -> None:
        with pytest.raises(InvalidValue, match="says why"):
            written().transfer("billing", None, " ", "ana", at(1))

    def test_unassigning_puts_it_back_in_its_team_s_queue(self) -> None:
        conversation = written()
        conversation.assign(ANA, "support", "picked", "ana", at(1))
        assert conversation.unassign("ana went home", "supervisor", at(2))
        assert (conversation.team, conversation.agent) == ("support", None)
        assert not conversation.unassign("again", "supervisor", at(2))

    def test_releasing_it_from_an_agent_who_left_its_team_says_so_once(self) -> None:
        conversation = written()
        conversation.assign(ANA, "support", "picked", "ana", at(1))
        assert conversation.release("ana", "support", "router", at(2))
        assert (conversation.team, conversation.agent) == ("support", None)
        last = conversation.history[-1]
        assert (last.kind, last.reason, last.by) == (
            AssignmentKind.UNASSIGNED,
            "ana left team support",
            "router",
        )
        assert not conversation.release("ana", "support", "router", at(3))  # read again
        assert len(conversation.history) == 2

    def test_a_conversation_no_longer_the_leavers_there_is_not_released(self) -> None:
        moved = written()
        moved.assign(ANA, "support", "picked", "ana", at(1))
        moved.transfer("billing", None, "a billing question", "ana", at(2))
        assert not moved.release("ana", "support", "router", at(3))
        resolved = written()
        resolved.assign(ANA, "support", "picked", "ana", at(1))
        resolved.resolve("answered", "ana", at(2))
        assert not resolved.release("ana", "support", "router", at(3))
        assert resolved.agent == "ana"
        elses = written()
        elses.assign(ANA, "support", "picked", "ana", at(1))
        assert not elses.release("eve", "support", "router", at(2))


class TestWhatItIsAbout:
    def test_classification_is_recorded_once_per_change(self) -> None:
        conversation = written()
        assert conversation.classify("refund", Sentiment.NEGATIVE, "assistant", at(0.1))
        assert not conversation.classify("refund", Sentiment.NEGATIVE, "assistant", at(0.2))
        facts = conversation.routing_facts()
        assert (facts.intent, facts.sentiment) == ("refund", Sentiment.NEGATIVE)
        assert facts.channel_kind is ChannelKind.EMAIL

    def test_tags_are_added_and_removed_only_when_they_change(self) -> None:
        conversation = written()
        assert conversation.tag(frozenset({"refund", "late"}), "ana", at(1))
        assert not conversation.tag(frozenset({"late"}), "ana", at(1))
        assert conversation.untag(frozenset({"late", "other"}), "ana", at(1))
        assert conversation.tags == frozenset({"refund"})

    def test_a_tag_must_be_a_key(self) -> None:
        with pytest.raises(InvalidValue, match="tag key"):
            written().tag(frozenset({"Not A Key"}), "ana", at(1))

    def test_an_agent_of_the_team_changes_tags_removing_then_adding(self) -> None:
        conversation = written()
        conversation.apply_routing(decision("ana"), "router", at(0))
        conversation.tag(frozenset({"late"}), "router", at(0))
        conversation.collect_events()
        refund = frozenset({"refund"})
        assert conversation.change_tags(ANA, at(1), add=refund, remove=frozenset({"late"}))
        assert names(conversation) == ["Untagged", "Tagged"]
        assert not conversation.change_tags(ANA, at(2), add=refund)
        assert conversation.tags == refund
        with pytest.raises(NotOnTeam):
            conversation.change_tags(EVE, at(3), add=frozenset({"vip"}))

    def test_a_conversation_holds_at_most_twenty_tags(self) -> None:
        conversation = written()
        many = frozenset(f"t{n}" for n in range(MAX_TAGS))
        assert conversation.change_tags(ANA, at(1), add=many)
        with pytest.raises(InvalidValue, match="at most 20 tags; this leaves 21") as refused:
            conversation.change_tags(ANA, at(2), add=frozenset({"one-more"}), field="add")
        assert refused.value.field == "add"

    def test_an_agent_of_the_team_sets_the_priority_with_why(self) -> None:
        conversation = written()
        conversation.apply_routing(decision("ana"), "router", at(0))
        conversation.collect_events()
        assert conversation.set_priority(Priority.URGENT, "VIP", ANA, at(1))
        assert not conversation.set_priority(Priority.URGENT, "VIP", ANA, at(2))
        (changed,) = conversation.collect_events()
        assert (changed.priority, changed.reason, changed.by) == (  # type: ignore[attr-defined]
            Priority.URGENT,
            "VIP",
            "ana",
        )
        with pytest.raises(NotOnTeam):
            conversation.set_priority(Priority.LOW, "no", EVE, at(3))


class TestServiceLevelFacts:
    def test_the_clock_runs_from_the_oldest_unanswered_message(self) -> None:
        conversation = written(hours=0)
        conversation.receive(uuid4(), Channel.EMAIL, "hello?", at(1), at(1))
        facts = conversation.sla_facts(tier="vip")
        assert facts is not None
        assert (facts.awaiting_since, facts.answered_before, facts.tier) == (T0, False, "vip")

    def test_a_reply_stops_the_clock_and_the_next_message_starts_a_next_response_one(
        self,
    ) -> None:
        conversation = written()
        conversation.reply(uuid4(), ANA, "hi", RULES, at(1))
        assert conversation.sla_facts().awaiting_since is None  # type: ignore[union-attr]
        conversation.receive(uuid4(), Channel.EMAIL, "thanks, but", at(2), at(2))
        facts = conversation.sla_facts()
        assert facts is not None
        assert (facts.awaiting_since, facts.answered_before) == (at(2), True)

    def test_no_clock_runs_while_snoozed(self) -> None:
        conversation = written()
        conversation.snooze(at(5), "ana", at(1))
        assert conversation.sla_facts().awaiting_since is None  # type: ignore[union-attr]

    def test_a_breach_is_recorded_once_and_not_before_it_is_due(self) -> None:
        conversation = written()
        deadline = Deadline(SlaKind.FIRST_RESPONSE, at(4), timedelta(hours=4))
        with pytest.raises(InvalidValue, match="not due"):
            conversation.record_breach(deadline, "timer", at(3))
        assert conversation.record_breach(deadline, "timer", at(4))
        assert not conversation.record_breach(deadline, "timer", at(4.5))

    def test_a_breach_escalates_as_the_document_says(self) -> None:
        conversation = written()
        conversation.assign(ANA, "support", "picked", "ana", at(0.5))
        conversation.collect_events()
        deadline = Deadline(SlaKind.FIRST_RESPONSE, at(4), timedelta(hours=4))
        escalation = OnBreach(priority=Priority.URGENT, team="supervisors")
        assert conversation.record_breach(deadline, "timer", at(4), escalation)
        assert names(conversation) == ["SlaBreached", "PriorityChanged", "Transferred"]
        assert (conversation.team, conversation.agent) == ("supervisors", None)
        assert conversation.history[-1].reason.startswith("first_response breached at")

    def test_a_breach_never_lowers_the_priority(self) -> None:
        conversation = written()
        conversation.change_priority(Priority.URGENT, "angry", "ana", at(0.5))
        deadline = Deadline(SlaKind.FIRST_RESPONSE, at(4), timedelta(hours=4))
        conversation.record_breach(deadline, "timer", at(4), OnBreach(priority=Priority.HIGH))
        assert conversation.priority is Priority.URGENT

    def test_no_clock_runs_while_it_is_marked_as_waiting_on_the_customer(self) -> None:
        conversation = written()
        conversation.mark_waiting(True, "ana", at(1))
        assert conversation.sla_facts().awaiting_since is None  # type: ignore[union-attr]
        deadline = Deadline(SlaKind.FIRST_RESPONSE, at(4), timedelta(hours=4))
        assert not conversation.record_breach(deadline, "timer", at(4))

    def test_a_breach_after_the_answer_is_not_recorded(self) -> None:
        conversation = written()
        conversation.reply(uuid4(), ANA, "hi", RULES, at(1))
        deadline = Deadline(SlaKind.FIRST_RESPONSE, at(4), timedelta(hours=4))
        assert not conversation.record_breach(deadline, "timer", at(4))

    def test_its_queue_entry_asks_for_the_skills_its_routing_decision_asked_for(self) -> None:
        conversation = written(Channel.WHATSAPP)
        needing = replace(decision(None), skills=frozenset({"billing"}))
        conversation.apply_routing(needing, "router", at(1))
        assert conversation.queue_entry(at(2)).skills == frozenset({"billing"})
        conversation.assign(ANA, "support", "took it", "ana", at(2))
        conversation.unassign("back to the queue", "ana", at(2))  # the same team's queue
        assert conversation.queue_entry(at(3)).skills == frozenset({"billing"})

    def test_a_transfer_to_another_team_leaves_the_rules_skills_behind(self) -> None:
        conversation = written(Channel.WHATSAPP)
        needing = replace(decision(None), skills=frozenset({"billing"}))
        conversation.apply_routing(needing, "router", at(1))
        conversation.transfer("orders", None, "an order question", "ana", at(2))
        assert conversation.queue_entry(at(3)).skills == frozenset()

    def test_a_decision_asking_other_skills_of_the_same_queue_is_recorded(self) -> None:
        conversation = written(Channel.WHATSAPP)
        conversation.apply_routing(decision(None), "router", at(1))
        needing = replace(decision(None), skills=frozenset({"es"}))
        conversation.apply_routing(needing, "router", at(2))
        assert conversation.queue_entry(at(3)).skills == frozenset({"es"})
        assert [a.kind for a in conversation.history] == [AssignmentKind.QUEUED] * 2

    def test_a_queueing_stored_before_it_named_skills_reads_back_asking_for_none(self) -> None:
        conversation = written(Channel.WHATSAPP)
        needing = replace(decision(None), skills=frozenset({"billing"}))
        conversation.apply_routing(needing, "router", at(1))
        codec = EventCodec()
        rows = [msgspec.structs.astuple(codec.encode(e)) for e in conversation.collect_events()]
        assert rows[-1][3] == 2  # the class version: Queued names its skills since version 2
        payload = msgspec.json.decode(rows[-1][5])
        del payload["skills"]
        rows[-1] = (*rows[-1][:3], 1, rows[-1][4], msgspec.json.encode(payload))
        read = rebuilt([codec.decode(*row) for row in rows])
        assert (read.team, read.queue_skills) == ("support", frozenset())

    def test_its_queue_entry_carries_priority_kind_and_when_it_was_queued(self) -> None:
        conversation = written(Channel.WHATSAPP)
        conversation.apply_routing(decision(None, priority=Priority.URGENT), "router", at(1))
        entry = conversation.queue_entry(at(2))
        assert (entry.priority, entry.channel_kind, entry.queued_at) == (
            Priority.URGENT,
            ChannelKind.CHAT,
            at(1),
        )
