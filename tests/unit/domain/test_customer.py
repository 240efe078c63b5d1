from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.customer.aggregate import Customer, CustomerWasMerged
from domain.customer.identities import Identity, IdentityClaim, Verification
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
