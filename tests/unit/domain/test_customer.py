from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from domain.customer.aggregate import Customer, CustomerWasMerged
from domain.customer.contact import ConsentRecord
from domain.customer.identities import Identity, IdentityClaim, Verification
from domain.policy.decision import Outcome, SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import InvalidValue

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
EMAIL = Identity("email", "ana@example.org")
PHONE = Identity("phone", "+442079460958")


def registered(*identities: Identity, at: datetime = T0) -> Customer:
    customer = Customer.register(uuid4(), at, tuple(IdentityClaim(i) for i in identities))
    customer.collect_events()
    return customer


class TestRegistering:
    def test_a_new_customer_holds_its_identities_and_records_when(self) -> None:
        customer = Customer.register(uuid4(), T0, (IdentityClaim(EMAIL), IdentityClaim(PHONE)))
        assert customer.identities == {
            EMAIL: Verification.UNVERIFIED,
            PHONE: Verification.UNVERIFIED,
        }
        (event,) = customer.collect_events()
        assert type(event).__name__ == "Registered"
        assert event.timestamp == T0

    def test_the_same_identity_twice_keeps_the_best_verification(self) -> None:
        customer = Customer.register(
            uuid4(), T0, (IdentityClaim(EMAIL), IdentityClaim(EMAIL, Verification.VERIFIED))
        )
        assert customer.identities[EMAIL] is Verification.VERIFIED


class TestLinkingIdentities:
    def test_linking_a_new_identity_records_it(self) -> None:
        customer = registered(EMAIL)
        assert customer.link(IdentityClaim(PHONE), T0)
        assert PHONE in customer.identities
        assert [type(e).__name__ for e in customer.collect_events()] == ["IdentityLinked"]

    def test_linking_a_known_identity_again_changes_nothing(self) -> None:
        customer = registered(EMAIL)
        assert not customer.link(IdentityClaim(EMAIL), T0)
        assert customer.collect_events() == []

    def test_a_weaker_claim_never_lowers_verification(self) -> None:
        customer = registered(EMAIL)
        customer.link(IdentityClaim(EMAIL, Verification.AUTHENTICATED), T0)
        assert not customer.link(IdentityClaim(EMAIL, Verification.VERIFIED), T0)
        assert customer.identities[EMAIL] is Verification.AUTHENTICATED


class TestProfile:
    def test_a_change_is_recorded_once(self) -> None:
        customer = registered(EMAIL)
        assert customer.update_profile(T0, {"time_zone": "Asia/Tokyo"}, {"tier": "gold"})
        assert not customer.update_profile(T0, {"time_zone": "Asia/Tokyo"}, {"tier": "gold"})
        assert customer.profile.time_zone == "Asia/Tokyo"
        assert customer.attributes == {"tier": "gold"}
        assert len(customer.collect_events()) == 1

    def test_none_removes_a_custom_attribute(self) -> None:
        customer = registered(EMAIL)
        customer.update_profile(T0, {}, {"tier": "gold"})
        customer.update_profile(T0, {}, {"tier": None})
        assert customer.attributes == {}

    def test_an_unknown_time_zone_is_refused_and_nothing_is_recorded(self) -> None:
        customer = registered(EMAIL)
        with pytest.raises(InvalidValue, match="time_zone"):
            customer.update_profile(T0, {"time_zone": "Mars/Olympus"}, {})
        assert customer.collect_events() == []

    def test_nested_attribute_values_are_refused(self) -> None:
        customer = registered(EMAIL)
        with pytest.raises(InvalidValue, match=r"attributes\.tags"):
            customer.update_profile(T0, {}, {"tags": ["a"]})


class TestMerging:
    def test_the_survivor_takes_identities_profile_gaps_and_attributes(self) -> None:
        survivor = registered(EMAIL)
        survivor.update_profile(T0, {"first_name": "Ana"}, {"tier": "gold"})
        other = registered(PHONE, at=T0 + timedelta(days=1))
        other.update_profile(
            T0, {"first_name": "A.", "time_zone": "Europe/London"}, {"tier": "x", "vip": True}
        )
        survivor.absorb(other, T0, reason="signal s-1")
        assert set(survivor.identities) == {EMAIL, PHONE}
        assert survivor.profile.first_name == "Ana"
        assert survivor.profile.time_zone == "Europe/London"
        assert survivor.attributes == {"tier": "gold", "vip": True}
        assert survivor.absorbed == (other.id,)
        assert other.merged_into == survivor.id
        assert other.identities == {}

    def test_a_merged_customer_refuses_commands_and_names_its_survivor(self) -> None:
        survivor, other = registered(EMAIL), registered(PHONE)
        survivor.absorb(other, T0, reason="test")
        with pytest.raises(CustomerWasMerged) as refused:
            other.link(IdentityClaim(Identity("email", "b@example.org")), T0)
        assert refused.value.survivor_id == survivor.id

    def test_the_merge_is_an_event_on_both_streams(self) -> None:
        survivor, other = registered(EMAIL), registered(PHONE)
        survivor.absorb(other, T0, reason="test")
        assert [type(e).__name__ for e in survivor.collect_events()] == ["Absorbed"]
        assert [type(e).__name__ for e in other.collect_events()] == ["MergedInto"]


RULES = default_rule_set()
RECORDED_AS = {
    Outcome.SEND: Customer.MessageAllowed,
    Outcome.REROUTE: Customer.MessageAllowed,
    Outcome.DEFER: Customer.MessageDeferred,
    Outcome.SUPPRESS: Customer.MessageSuppressed,
}


def reachable() -> Customer:
    """Email opted in to marketing, SMS opted in to service; the rules' time zone is UTC."""
    customer = registered(EMAIL, PHONE)
    customer.change_consent(ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "form"), T0)
    customer.change_consent(ConsentRecord(Channel.SMS, Purpose.SERVICE, True, "form"), T0)
    customer.collect_events()
    return customer


def as_triggered(twin: Customer, kind: type[Customer.MessageDecided], **fields: Any) -> None:
    """The decision recorded through eventsourcing's own `trigger_event`."""
    twin.trigger_event(kind, **fields)


class TestRecordingDecisions:
    """`decide_message` builds its event in place, for speed: it must be the very event, and
    make the very change, that eventsourcing's `trigger_event` makes of the same fields."""

    def test_each_outcome_is_the_event_trigger_event_makes(self) -> None:
        customer = reachable()
        twin = copy.deepcopy(customer)
        news = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,), dedup_key="news")
        code = SendRequest("billing", Purpose.SERVICE, (Channel.SMS,))
        sends = [
            (news, T0),  # allowed
            (news, T0 + timedelta(minutes=1)),  # suppressed: the same dedup key
            (code, T0.replace(hour=23)),  # deferred: quiet hours
            (SendRequest("growth", Purpose.MARKETING, (Channel.SMS,)), T0),  # no consent
        ]
        outcomes = []
        for request, at in sends:
            message_id, decision_id = uuid4(), uuid4()
            decision = customer.decide_message(message_id, decision_id, request, RULES, at, "api")
            outcomes.append(decision.outcome)
            as_triggered(
                twin,
                RECORDED_AS[decision.outcome],
                timestamp=at,
                message_id=message_id,
                decision_id=decision_id,
                origin="api",
                request=request,
                outcome=decision.outcome,
                channel=decision.channel,
                defer_until=decision.defer_until,
                rule_set_version=decision.rule_set_version,
                fired=decision.fired,
            )
        assert outcomes == [Outcome.SEND, Outcome.SUPPRESS, Outcome.DEFER, Outcome.SUPPRESS]
        made, triggered = customer.collect_events(), twin.collect_events()
        assert [type(e) for e in made] == [type(e) for e in triggered]
        assert [vars(e) for e in made] == [vars(e) for e in triggered]
        assert made == triggered
        assert vars(customer) == vars(twin)

    def test_a_withdrawal_is_the_event_trigger_event_makes(self) -> None:
        customer = reachable()
        twin = copy.deepcopy(customer)
        request = SendRequest("billing", Purpose.SERVICE, (Channel.SMS,))
        message_id, decision_id = uuid4(), uuid4()
        decision = customer.withdraw_deferred(
            message_id, decision_id, request, "the journey moved on", 1, T0, "campaign"
        )
        as_triggered(
            twin,
            Customer.MessageSuppressed,
            timestamp=T0,
            message_id=message_id,
            decision_id=decision_id,
            origin="campaign",
            request=request,
            outcome=Outcome.SUPPRESS,
            channel=None,
            defer_until=None,
            rule_set_version=1,
            fired=decision.fired,
        )
        made, triggered = customer.collect_events(), twin.collect_events()
        assert [vars(e) for e in made] == [vars(e) for e in triggered]
        assert vars(customer) == vars(twin)

    def test_replaying_the_decisions_rebuilds_the_same_customer(self) -> None:
        customer = registered(EMAIL, PHONE)
        customer.change_consent(ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "form"), T0)
        news = SendRequest("growth", Purpose.MARKETING, (Channel.EMAIL,), dedup_key="news")
        for minutes in (0, 1, 2):
            at = T0 + timedelta(minutes=minutes)
            customer.decide_message(uuid4(), uuid4(), news, RULES, at, "api")
        rebuilt = registered(EMAIL, PHONE)
        rebuilt.__dict__.update(_id=customer.id)
        events = customer.collect_events()
        for event in events:
            assert type(event)(**vars(event)) == event
            event.mutate(rebuilt)
        assert len(customer.ledger) == 1
        assert vars(rebuilt) == vars(customer)


class TestWhatTheRulesSee:
    def test_channels_are_reachable_by_the_identities_held(self) -> None:
        facts = registered(EMAIL, PHONE).facts()
        assert facts.reachable == {Channel.EMAIL, Channel.SMS, Channel.WHATSAPP, Channel.VOICE}
        assert registered(EMAIL).facts().reachable == {Channel.EMAIL}

    def test_a_channel_is_verified_by_its_best_verified_identity(self) -> None:
        customer = registered(EMAIL, PHONE)
        assert customer.facts().verified == frozenset()
        customer.link(IdentityClaim(PHONE, Verification.VERIFIED), T0)
        assert customer.facts().verified == {Channel.SMS, Channel.WHATSAPP, Channel.VOICE}
        other = registered(EMAIL)
        other.link(
            IdentityClaim(Identity("email", "b@example.org"), Verification.AUTHENTICATED), T0
        )
        assert other.facts().verified == {Channel.EMAIL}
        assert other.facts().reachable == {Channel.EMAIL}
