"""Customers, decisions and messages read back as clients see them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from adapters.inmemory.providers import InMemoryProviders, RecordingProvider
from adapters.inmemory.unsubscribe_tokens import InMemoryUnsubscribeTokens
from application.delivery.dispatch import DispatchMessages
from application.messages.compose import MessageContent
from application.queries.customers import CustomerQueries
from application.queries.decisions import DecisionQueries
from application.queries.messages import MessageQueries
from domain.campaign.origin import SendOrigin
from domain.customer.contact import ConsentRecord
from domain.message.content import Content
from domain.policy.decision import Outcome, SendRequest
from domain.policy.rules import FrequencyCap
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import NotFound
from tests.unit.in_memory_chorus import MONDAY_NOON, InMemoryChorus, claim

ANA = claim("email", "ana@example.org")
ANA_PHONE = claim("phone", "+351912345678")
NEWSLETTER = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,))
HELLO = MessageContent(inline=Content(subject="Hello", body="Hi!"), campaign="winter")


class TestCustomerQueries:
    async def test_a_merged_id_answers_with_its_survivor(self) -> None:
        chorus = InMemoryChorus()
        older = await chorus.upsert((ANA,), {"first_name": "Ana"}, {})
        newer = await chorus.upsert((ANA_PHONE,), {}, {"tier": "gold"})
        await chorus.upsert((ANA, ANA_PHONE), {}, {})
        view = await CustomerQueries(chorus.customers).by_id(newer.customer_id)
        assert (view.id, view.merged_from) == (older.customer_id, [newer.customer_id])
        assert [i.value for i in view.identities] == ["ana@example.org", "+351912345678"]
        assert view.attributes == {"tier": "gold"}

    async def test_an_unknown_id_or_identity_is_not_found(self) -> None:
        chorus = InMemoryChorus()
        queries = CustomerQueries(chorus.customers)
        with pytest.raises(NotFound):
            await queries.by_id(chorus.ids.new_id())
        with pytest.raises(NotFound):
            await queries.by_identity(ANA.identity)

    async def test_a_timeline_holds_the_merged_customers_events_newest_first(self) -> None:
        chorus = InMemoryChorus()
        older = await chorus.upsert((ANA,), {}, {})
        newer = await chorus.upsert((ANA_PHONE,), {}, {})
        await chorus.upsert((ANA, ANA_PHONE), {}, {})
        queries = CustomerQueries(chorus.customers)
        survivor, first = await queries.timeline(newer.customer_id, limit=3, before=None)
        assert survivor == older.customer_id
        assert first.next_before is not None
        _, rest = await queries.timeline(survivor, limit=10, before=first.next_before)
        events = [*first.events, *rest.events]
        assert [e.position for e in events] == sorted((e.position for e in events), reverse=True)
        assert {e.stream_id for e in events} == {older.customer_id, newer.customer_id}
        assert rest.next_before is None


class TestDecisionAndMessageQueries:
    async def test_a_deferred_then_sent_message_shows_both_decisions_and_its_delivery(
        self,
    ) -> None:
        chorus = InMemoryChorus()
        await chorus.publish(caps=(FrequencyCap("cap.daily", 1, timedelta(days=1)),))
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        grant = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
        await chorus.change_consent(ana, [grant])
        await chorus.request_message(ana, NEWSLETTER)
        deferred = await chorus.request_message(ana, NEWSLETTER, content=HELLO)
        tokens = InMemoryUnsubscribeTokens()
        decisions = DecisionQueries(chorus.customers, tokens, "https://chorus.example")
        messages = MessageQueries(chorus.delivery, decisions)
        assert (await messages.by_id(deferred.message_id)).status == "deferred"

        chorus.clock.advance(timedelta(days=1))
        await chorus.redecide_due()
        provider = RecordingProvider("mail-a", Channel.EMAIL)
        dispatch = DispatchMessages(
            chorus.uows,
            InMemoryProviders(provider, price=(Decimal("0.001"), "EUR")),
            chorus.clock,
        )
        for claimed in await dispatch.claim(Channel.EMAIL, 10):
            await dispatch.settle([(claimed.message, await dispatch.send(claimed))])

        view = await messages.by_id(deferred.message_id)
        assert [d.outcome for d in view.decisions] == ["defer", "send"]
        assert [d.origin for d in view.decisions] == ["api", "scheduler"]
        assert (view.status, view.provider, view.cost, view.currency) == (
            "sent",
            "mail-a",
            "0.001",
            "EUR",
        )
        headers = view.decisions[-1].list_unsubscribe
        assert headers is not None
        token = headers["List-Unsubscribe"].rpartition("/")[2].rstrip(">")
        target = tokens.read(token)
        assert target is not None
        assert (target.customer_id, target.purpose) == (ana, Purpose.MARKETING)

        until = chorus.clock.now() + timedelta(hours=1)
        report = await messages.costs(MONDAY_NOON, until, ["channel", "campaign"])
        assert report.total_messages == 1
        assert report.totals == {"EUR": "0.001"}
        assert report.lines == [
            {
                "channel": "email",
                "campaign": "winter",
                "currency": "EUR",
                "messages": 1,
                "cost": "0.001",
                "by_status": {"sent": 1},
            }
        ]

    async def test_a_campaign_send_deferred_or_suppressed_names_its_campaign(self) -> None:
        chorus = InMemoryChorus()
        await chorus.publish(caps=(FrequencyCap("cap.daily", 1, timedelta(days=1)),))
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        grant = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
        await chorus.change_consent(ana, [grant])
        origin = str(SendOrigin("welcome", 1, "hello", uuid4()))
        hello = MessageContent(inline=Content(subject="Hello", body="Hi!"), campaign="welcome")
        sent = await chorus.request_message(ana, NEWSLETTER, content=hello, origin=origin)
        deferred = await chorus.request_message(ana, NEWSLETTER, content=hello, origin=origin)
        sms = SendRequest("growth", Purpose.MARKETING, (Channel.SMS,))  # no address, no consent
        suppressed = await chorus.request_message(ana, sms, content=hello, origin=origin)
        messages = MessageQueries(chorus.delivery, DecisionQueries(chorus.customers))
        found = {
            name: await messages.by_id(asked.message_id)
            for name, asked in (("sent", sent), ("deferred", deferred), ("suppressed", suppressed))
        }
        assert {name: (view.status, view.campaign) for name, view in found.items()} == {
            "sent": ("queued", "welcome"),
            "deferred": ("deferred", "welcome"),
            "suppressed": ("suppressed", "welcome"),
        }

    async def test_a_cost_report_limited_to_teams_counts_only_their_messages(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        for team in ("billing", "growth", "growth"):
            request = SendRequest(team, Purpose.TRANSACTIONAL, (Channel.EMAIL,))
            decided = await chorus.request_message(ana, request, content=HELLO)
            assert decided.decision is not None
            assert decided.decision.outcome is Outcome.SEND
        messages = MessageQueries(chorus.delivery, DecisionQueries(chorus.customers))
        until = chorus.clock.now() + timedelta(hours=1)

        everyone = await messages.costs(MONDAY_NOON, until, ["team"])
        growth = await messages.costs(MONDAY_NOON, until, ["team"], teams=frozenset({"growth"}))
        nobody = await messages.costs(MONDAY_NOON, until, ["team"], teams=frozenset())

        assert [(line["team"], line["messages"]) for line in everyone.lines] == [
            ("billing", 1),
            ("growth", 2),
        ]
        assert [(line["team"], line["messages"]) for line in growth.lines] == [("growth", 2)]
        assert growth.total_messages == 2
        assert (nobody.lines, nobody.total_messages) == ([], 0)

    async def test_an_unknown_decision_or_message_is_not_found(self) -> None:
        chorus = InMemoryChorus()
        decisions = DecisionQueries(chorus.customers)
        with pytest.raises(NotFound):
            await decisions.by_id(chorus.ids.new_id())
        with pytest.raises(NotFound):
            await MessageQueries(chorus.delivery, decisions).by_id(chorus.ids.new_id())
