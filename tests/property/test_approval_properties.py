"""Approval rules hold, never loosen: for any customer, ledger and request hypothesis finds."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from domain.policy.decision import (
    ApprovedHold,
    ConsentState,
    ContactRecord,
    CustomerFacts,
    Effect,
    Outcome,
    SendRequest,
)
from domain.policy.defaults import default_rule_set
from domain.policy.engine import decide
from domain.policy.rule_document import decode_rule_set, rule_set_document
from domain.policy.rules import ApprovalRule, RuleSet
from domain.policy.vocabulary import Channel, Purpose

START = datetime(2026, 1, 1, tzinfo=UTC)
REFUNDS = frozenset({"request_refund", "Refund_not_showing_up"})
INTENTS = [*sorted(REFUNDS), "card_arrival", "exchange_rate", None]

channels = st.sampled_from(list(Channel))
purposes = st.sampled_from(list(Purpose))
moments = st.integers(min_value=0, max_value=366 * 24 * 60).map(
    lambda m: START + timedelta(minutes=m)
)
confidences = st.one_of(st.none(), st.floats(min_value=0, max_value=1))
consent_states = st.builds(ConsentState, st.booleans(), st.just("form"), moments)
facts = st.builds(
    CustomerFacts,
    time_zone=st.sampled_from(["Europe/London", "Asia/Tokyo", None]),
    reachable=st.frozensets(channels),
    verified=st.frozensets(channels),
    consents=st.dictionaries(st.tuples(channels, purposes), consent_states, max_size=12),
    opted_out=st.dictionaries(channels, consent_states, max_size=2),
    last_inbound=st.dictionaries(channels, moments, max_size=3),
    attributes=st.dictionaries(
        st.just("tier"), st.sampled_from(["vip", "gold", "basic"]), max_size=1
    ),
)
requests = st.builds(
    SendRequest,
    team=st.sampled_from(["support", "billing", "growth"]),
    purpose=purposes,
    channels=st.lists(channels, min_size=1, max_size=3, unique=True).map(tuple),
    priority=st.integers(0, 100),
    approved_template=st.booleans(),
    intent=st.sampled_from(INTENTS),
    intent_confidence=confidences,
    audience=st.one_of(st.none(), st.integers(1, 50_000)),
)
ledgers = st.lists(
    st.builds(ContactRecord, moments, channels, purposes, st.sampled_from(["support", "growth"])),
    max_size=6,
)
approval_rules = st.lists(
    st.one_of(
        st.builds(
            ApprovalRule,
            id=st.just("approval.refund"),
            intents=st.just(REFUNDS),
            min_confidence=st.floats(0, 1),
            expires_after=st.sampled_from([timedelta(hours=24), timedelta(hours=2)]),
        ),
        st.builds(ApprovalRule, id=st.just("approval.unsure"), confidence_below=st.floats(0, 1)),
        st.builds(
            ApprovalRule, id=st.just("approval.costly"), cost_above=st.sampled_from([0.001, 0.01])
        ),
        st.builds(
            ApprovalRule,
            id=st.just("approval.vip.first"),
            first_message_to=st.just(frozenset({"vip"})),
        ),
        st.builds(
            ApprovalRule,
            id=st.just("approval.broadcast"),
            audience_above=st.integers(0, 20_000),
            purposes=st.just(frozenset({Purpose.MARKETING})),
        ),
    ),
    max_size=4,
    unique_by=lambda rule: rule.id,
).map(tuple)


def with_approvals(approvals: tuple[ApprovalRule, ...]) -> RuleSet:
    return dataclasses.replace(default_rule_set(), approvals=approvals)


class TestApprovalRules:
    @given(requests, facts, ledgers, moments, approval_rules)
    def test_a_hold_only_stops_what_every_other_rule_allows(
        self,
        request: SendRequest,
        customer: CustomerFacts,
        ledger: list[ContactRecord],
        now: datetime,
        approvals: tuple[ApprovalRule, ...],
    ) -> None:
        without = decide(request, customer, ledger, with_approvals(()), now)
        held = decide(request, customer, ledger, with_approvals(approvals), now)
        if held.outcome is Outcome.HOLD:
            assert without.allows_send
            assert held.channel == without.channel
        else:
            assert held.outcome == without.outcome
            assert held.channel == without.channel

    @given(requests, facts, ledgers, moments, approval_rules)
    def test_a_hold_cites_the_first_rule_that_held_it_and_expires_by_it(
        self,
        request: SendRequest,
        customer: CustomerFacts,
        ledger: list[ContactRecord],
        now: datetime,
        approvals: tuple[ApprovalRule, ...],
    ) -> None:
        decision = decide(request, customer, ledger, with_approvals(approvals), now)
        held = [rule for rule in decision.fired if rule.effect is Effect.HELD]
        if decision.outcome is not Outcome.HOLD:
            assert held == []
            return
        assert len(held) == 1
        rule = next(a for a in approvals if a.id == held[0].rule_id)
        assert decision.defer_until == now + rule.expires_after
        assert not decision.allows_send

    @given(requests, facts, ledgers, moments, approval_rules)
    def test_approving_every_rule_decides_as_if_there_were_none(
        self,
        request: SendRequest,
        customer: CustomerFacts,
        ledger: list[ContactRecord],
        now: datetime,
        approvals: tuple[ApprovalRule, ...],
    ) -> None:
        granted = tuple(ApprovedHold(rule.id, "ops (admin key k1)") for rule in approvals)
        approved = dataclasses.replace(request, approved=granted)
        decision = decide(approved, customer, ledger, with_approvals(approvals), now)
        without = decide(request, customer, ledger, with_approvals(()), now)
        assert (decision.outcome, decision.channel) == (without.outcome, without.channel)

    @given(requests, facts, ledgers, moments, st.floats(0, 1))
    def test_no_refund_answer_goes_without_an_operator(
        self,
        request: SendRequest,
        customer: CustomerFacts,
        ledger: list[ContactRecord],
        now: datetime,
        threshold: float,
    ) -> None:
        refund = ApprovalRule("approval.refund", intents=REFUNDS, min_confidence=threshold)
        decision = decide(request, customer, ledger, with_approvals((refund,)), now)
        confident = (request.intent_confidence or 0.0) >= threshold or threshold == 0
        if request.intent in REFUNDS and confident:
            assert not decision.allows_send


class TestApprovalDocument:
    @given(approval_rules)
    def test_the_document_reads_back_as_the_same_rules(
        self, approvals: tuple[ApprovalRule, ...]
    ) -> None:
        rules = with_approvals(approvals)
        document = msgspec.json.encode(rule_set_document(rules))
        assert decode_rule_set(document, rules.version) == rules
