"""Suggested replies to a conversation's last inbound message, with the templates, the
conversation and the rules in memory and a customer's context given as it would be read."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import pytest

from adapters.inmemory.rule_sets import InMemoryRuleSets
from adapters.inmemory.storage import InMemoryStorage
from adapters.inmemory.templates import InMemoryTemplates
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.templates.jinja import JinjaRenderer, JinjaTemplates
from application.queries.customer_context import CustomerContext
from application.queries.inbox import ConversationHidden
from application.queries.reply_suggestions import SuggestReplies
from application.templates.channel_variants import ChannelVariants
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.conversation.aggregate import Conversation
from domain.policy.defaults import default_rule_set
from domain.policy.tone import ChannelTone
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue, NotFound
from domain.templates.aggregate import Variant
from ports.rules import PublishedRules

if TYPE_CHECKING:
    from domain.policy.rules import RuleSet

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
ANA = UUID("6d2a3f4e-1b7c-4c1e-9e6a-0a2b3c4d5e6f")
REFUND = "request_refund"


def context_of(customer_id: UUID, **profile: str | None) -> CustomerContext:
    return CustomerContext(
        customer_id=customer_id,
        merged_into=None,
        tier="gold",
        profile={"first_name": None, "locale": None, **profile},
        attributes={"plan": "pro"},
        identities=[],
        segments=["vip"],
        suppressions={},
        signals_since=T0,
        signal_counts=[],
        last_signals=[],
        orders=2,
        last_orders=[],
        campaigns=0,
        in_campaigns=[],
        open_conversations=1,
        conversations=[],
        decisions=[],
    )


class KnownContexts:
    """Contexts as ContextQueries would read them; NotFound for anyone else."""

    def __init__(self, *contexts: CustomerContext) -> None:
        self.contexts = {c.customer_id: c for c in contexts}

    async def of(self, customer_id: UUID) -> CustomerContext:
        if customer_id not in self.contexts:
            raise NotFound(f"no customer {customer_id}")
        return self.contexts[customer_id]


class FixedRules(InMemoryRuleSets):
    """The built-in rules with another tone for SMS."""

    def __init__(self, storage: InMemoryStorage, clock: ManualClock, sms: ChannelTone) -> None:
        super().__init__(storage, clock)
        self.sms = sms

    async def latest(self) -> PublishedRules:
        rules: RuleSet = default_rule_set()
        channels = dict(rules.channels)
        channels[Channel.SMS] = replace(channels[Channel.SMS], tone=self.sms)
        return PublishedRules(replace(rules, channels=channels), T0, "test")


class World:
    def __init__(self, *contexts: CustomerContext, sms: ChannelTone | None = None) -> None:
        self.storage = InMemoryStorage()
        self.clock = ManualClock(T0)
        self.uows = InMemoryUnitsOfWork(self.storage)
        self.published = InMemoryTemplates(self.storage)
        self.renderer = JinjaRenderer()
        self.publish = PublishTemplate(self.uows, self.published, self.clock, self.renderer)
        rules = (
            InMemoryRuleSets(self.storage, self.clock)
            if sms is None
            else FixedRules(self.storage, self.clock, sms)
        )
        contexts_known = KnownContexts(*(contexts or (context_of(ANA, first_name="Ana"),)))
        templates = JinjaTemplates(self.published, self.renderer)
        self.suggest = SuggestReplies(
            self.uows, self.published, templates, self.renderer, contexts_known, rules
        )
        self.variants = ChannelVariants(
            self.published, templates, self.renderer, contexts_known, rules
        )

    async def template(self, key: str, *variants: Variant, intents: tuple[str, ...] = ()) -> None:
        await self.publish(key, TemplateDraft(variants, "en", "", intents), "ana")

    async def conversation(
        self,
        channel: Channel = Channel.SMS,
        intent: str | None = REFUND,
        customer_id: UUID = ANA,
        text: str = "I want my money back",
        team: str | None = None,
    ) -> Conversation:
        conversation = Conversation.start(customer_id, "test", T0)
        conversation.receive(uuid4(), channel, text, T0, T0)
        if team is not None:
            conversation.transfer(team, None, "test", "test", T0)
        if intent is not None:
            conversation.classify(intent, None, "assistant", T0, confidence=0.91)
        async with self.uows() as uow:
            uow.repository(Conversation).add(conversation)
        return conversation


def sms(body: str) -> Variant:
    return Variant(Channel.SMS, "en", body=body)


class TestSuggestReplies:
    async def test_templates_tagged_with_the_intent_are_rendered_with_the_customers_name(
        self,
    ) -> None:
        world = World()
        await world.template(
            "refund.ack",
            sms("Hi {{ customer.first_name }}, your refund is on its way."),
            intents=(REFUND,),
        )
        await world.template(
            "card.lost", sms("We blocked your card."), intents=("lost_or_stolen_card",)
        )
        conversation = await world.conversation()
        found = await world.suggest(conversation.id, None)
        assert (found.intent, found.confidence, found.channel) == (REFUND, 0.91, Channel.SMS)
        assert found.message_id == conversation.messages[-1].message_id
        [suggested] = found.suggestions
        assert (suggested.template, suggested.version) == ("refund.ack", 1)
        suggestion = suggested.reply
        assert suggestion.text == "Hi Ana, your refund is on its way."
        assert suggestion.used == ("customer.first_name",)
        assert found.left_out == ()

    async def test_a_template_that_cannot_render_for_this_customer_is_left_out_with_why(
        self,
    ) -> None:
        world = World(context_of(ANA))  # no first name
        await world.template("a.named", sms("Hi {{ customer.first_name }}"), intents=(REFUND,))
        await world.template(
            "b.plain", sms("Hi {{ customer.first_name | default('there') }}"), intents=(REFUND,)
        )
        found = await world.suggest((await world.conversation()).id, None)
        assert [s.reply.text for s in found.suggestions] == ["Hi there"]
        assert found.suggestions[0].reply.used == ()
        [left] = found.left_out
        assert left.template == "a.named"
        assert "customer.first_name" in left.reason

    async def test_the_suggestion_is_shaped_to_the_channel_the_customer_last_wrote_on(
        self,
    ) -> None:
        world = World(sms=ChannelTone(40, emoji=False))
        await world.template(
            "refund.long",
            Variant(
                Channel.EMAIL,
                "en",
                subject="Your refund",
                body="Hi {{ customer.first_name }} 👋\n\nYour refund of your last order is on "
                "its way and should arrive within five working days.",
            ),
            intents=(REFUND,),
        )
        found = await world.suggest((await world.conversation(Channel.SMS)).id, None)
        suggestion = found.suggestions[0].reply
        assert (suggestion.channel, suggestion.written_for) == (Channel.SMS, Channel.EMAIL)
        assert suggestion.subject is None  # the email's subject is not an SMS's
        assert len(suggestion.text) <= 40
        assert suggestion.text.startswith("Hi Ana Your refund")
        assert [c.change for c in suggestion.changes] == ["emoji_stripped", "collapsed", "cut"]

    async def test_at_most_the_limit_is_suggested(self) -> None:
        world = World()
        for n in range(4):
            await world.template(f"refund.{n}", sms(f"Reply {n}"), intents=(REFUND,))
        found = await world.suggest((await world.conversation()).id, None, limit=2)
        assert [s.template for s in found.suggestions] == ["refund.0", "refund.1"]

    async def test_a_conversation_not_classified_has_no_suggestions(self) -> None:
        world = World()
        await world.template("refund.ack", sms("Hello"), intents=(REFUND,))
        found = await world.suggest((await world.conversation(intent=None)).id, None)
        assert found.intent is None
        assert found.suggestions == ()

    async def test_a_conversation_of_a_team_the_reader_does_not_see_is_hidden(self) -> None:
        world = World()
        await world.template("refund.ack", sms("Hello"), intents=(REFUND,))
        billing = await world.conversation(team="billing")
        unrouted = await world.conversation(customer_id=uuid4())  # on no team yet
        with pytest.raises(ConversationHidden):
            await world.suggest(billing.id, frozenset({"support"}))
        with pytest.raises(ConversationHidden):
            await world.suggest(unrouted.id, frozenset({"support", "billing"}))
        seen = await world.suggest(billing.id, frozenset({"billing"}))
        assert [s.template for s in seen.suggestions] == ["refund.ack"]

    async def test_an_unknown_conversation_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            await World().suggest(uuid4(), None)

    async def test_a_customer_whose_context_cannot_be_read_leaves_every_template_out(
        self,
    ) -> None:
        world = World()
        await world.template("refund.ack", sms("Hello"), intents=(REFUND,))
        found = await world.suggest((await world.conversation(customer_id=uuid4())).id, None)
        assert found.suggestions == ()
        assert [o.template for o in found.left_out] == ["refund.ack"]


class TestTemplateIntents:
    async def test_an_intent_the_classifier_does_not_know_is_refused_with_its_place(
        self,
    ) -> None:
        world = World()
        with pytest.raises(InvalidValue) as refusal:
            await world.template("refund.ack", sms("Hi"), intents=(REFUND, "refnud"))
        assert refusal.value.field == "intents[1]"

    async def test_changing_only_the_intents_publishes_a_new_version(self) -> None:
        world = World()
        await world.template("refund.ack", sms("Hi"))
        await world.template("refund.ack", sms("Hi"), intents=(REFUND,))
        template = await world.published.load("refund.ack")
        assert template is not None
        assert [v.intents for v in template.versions] == [(), (REFUND,)]


class TestChannelVariants:
    async def test_one_variant_per_channel_of_the_template_each_shaped_by_its_tone(
        self,
    ) -> None:
        world = World()
        long_text = "Hi {{ customer.first_name }} 🎉 " + "our winter sale is on " * 30
        await world.template(
            "winter.sale",
            Variant(Channel.EMAIL, "en", subject="Sale", body=long_text),
            sms(long_text),
        )
        found = await world.variants("winter.sale", customer_id=ANA)
        by_channel = {v.message.channel: v.message for v in found.variants}
        assert set(by_channel) == {Channel.EMAIL, Channel.SMS}
        assert len(by_channel[Channel.SMS].text) <= 320
        assert "🎉" not in by_channel[Channel.SMS].text
        assert "cut" in [c.change for c in by_channel[Channel.SMS].changes]
        assert by_channel[Channel.EMAIL].subject == "Sale"
        assert by_channel[Channel.SMS].used == ("customer.first_name",)

    async def test_a_channel_asked_for_that_the_template_lacks_borrows_its_first_text(
        self,
    ) -> None:
        world = World()
        await world.template(
            "hello", sms("Hello {{ vars.name }}! https://a.example https://b.example")
        )
        found = await world.variants(
            "hello", context={"vars": {"name": "Rui"}}, channels=(Channel.PUSH,)
        )
        push = found.variants[0].message
        assert len(found.variants) == 1
        assert (push.channel, push.written_for) == (Channel.PUSH, Channel.SMS)
        assert push.text == "Hello Rui!"
        assert [c.change for c in push.changes] == ["links_dropped"]

    async def test_a_sample_context_missing_a_variable_leaves_the_channel_out_with_why(
        self,
    ) -> None:
        world = World()
        await world.template("hello", sms("Hello {{ vars.name }}"))
        found = await world.variants("hello", context={})
        assert found.variants == ()
        [left] = found.left_out
        assert "vars.name" in left.reason
