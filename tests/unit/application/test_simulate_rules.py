"""A draft rule set replayed against recorded decisions, each on the customer as it was then."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from adapters.inmemory.history import InMemoryHistory
from application.queries.team_scope import TeamScope
from application.rules.simulate_rules import SimulateRules
from domain.customer.contact import ConsentRecord
from domain.policy.decision import SendRequest
from domain.policy.rule_document import decode_rule_set
from domain.policy.rules import FrequencyCap, OnExceed
from domain.policy.vocabulary import Channel, Purpose
from tests.unit.in_memory_chorus import MONDAY_NOON, InMemoryChorus, claim

NEWSLETTER = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,))
HOUR = timedelta(hours=1)


async def three_newsletters_an_hour_apart(chorus: InMemoryChorus) -> None:
    ana = (await chorus.upsert((claim("email", "ana@example.org"),), {}, {})).customer_id
    grant = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
    await chorus.change_consent(ana, [grant])
    for _ in range(3):
        await chorus.request_message(ana, NEWSLETTER)
        chorus.clock.advance(HOUR)


class TestSimulateRules:
    async def test_the_rules_in_force_change_no_decision(self) -> None:
        chorus = InMemoryChorus()
        await three_newsletters_an_hour_apart(chorus)
        simulate = SimulateRules(InMemoryHistory(chorus.storage))
        report = await simulate(await chorus.rule_sets.current(), MONDAY_NOON, chorus.clock.now())
        assert (report.decisions, report.changed) == (3, 0)

    async def test_a_tighter_cap_would_have_suppressed_what_the_ledger_of_the_time_held(
        self,
    ) -> None:
        chorus = InMemoryChorus()
        await three_newsletters_an_hour_apart(chorus)
        draft = replace(
            await chorus.rule_sets.current(),
            caps=(FrequencyCap("cap.one", 1, timedelta(days=1), on_exceed=OnExceed.SUPPRESS),),
        )
        report = await SimulateRules(InMemoryHistory(chorus.storage))(
            draft, MONDAY_NOON, chorus.clock.now()
        )
        assert (report.decisions, report.changed) == (3, 2)
        assert report.by_outcome == {"send -> suppress": 2}
        assert report.by_rule["cap.one"] == 2

    async def test_only_decisions_within_the_period_are_replayed(self) -> None:
        chorus = InMemoryChorus()
        await three_newsletters_an_hour_apart(chorus)
        simulate = SimulateRules(InMemoryHistory(chorus.storage))
        report = await simulate(
            await chorus.rule_sets.current(), MONDAY_NOON + HOUR, MONDAY_NOON + HOUR
        )
        assert report.decisions == 1

    async def test_a_key_limited_to_teams_replays_only_its_teams_decisions(self) -> None:
        chorus = InMemoryChorus()
        await three_newsletters_an_hour_apart(chorus)
        simulate = SimulateRules(InMemoryHistory(chorus.storage))
        rules = await chorus.rule_sets.current()
        until = chorus.clock.now()
        growth = await simulate(
            rules, MONDAY_NOON, until, scope=TeamScope(sends=frozenset({"growth"}))
        )
        billing = await simulate(
            rules, MONDAY_NOON, until, scope=TeamScope(sends=frozenset({"billing"}))
        )
        assert (growth.decisions, billing.decisions) == (3, 0)
        assert billing.examples == []


class TestADraftLeavingChannelsOut:
    async def test_keeps_their_built_in_policy_and_a_named_channel_changes_what_it_names(
        self,
    ) -> None:
        chorus = InMemoryChorus()
        ana = (
            await chorus.upsert(
                (claim("email", "ana@example.org"), claim("phone", "+447700900123")), {}, {}
            )
        ).customer_id
        grant = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
        await chorus.change_consent(ana, [grant])
        recorded = await chorus.request_message(
            ana, SendRequest("growth", Purpose.MARKETING, (Channel.SMS,))
        )
        assert recorded.decision is not None
        assert recorded.decision.outcome.value == "suppress"  # no SMS opt-in
        simulate = SimulateRules(InMemoryHistory(chorus.storage))
        until = chorus.clock.now()

        only_email = decode_rule_set('{"channels": {"email": {}}}', version=0)
        assert (await simulate(only_email, MONDAY_NOON, until)).changed == 0
        nothing = decode_rule_set('{"channels": {}}', version=0)
        assert (await simulate(nothing, MONDAY_NOON, until)).changed == 0

        # A named channel changes only what it names: SMS named for its cost keeps its opt-in.
        sms_cost = decode_rule_set('{"channels": {"sms": {"cost": 0.01}}}', version=0)
        assert (await simulate(sms_cost, MONDAY_NOON, until)).changed == 0
        sms_opt_out = decode_rule_set(
            '{"channels": {"sms": {"consent": {"marketing": "opt_out"}}}}', version=0
        )
        report = await simulate(sms_opt_out, MONDAY_NOON, until)
        assert report.by_outcome == {"suppress -> send": 1}
