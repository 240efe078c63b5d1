from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import phonenumbers
from hypothesis import given
from hypothesis import strategies as st

from domain.customer.aggregate import Customer
from domain.customer.identities import Identity, IdentityClaim, IdentityNormalizer, Verification

GB = IdentityNormalizer("GB")
T0 = datetime(2026, 3, 1, tzinfo=UTC)
uk_subscriber = st.integers(min_value=1_000_000, max_value=9_999_999)
formats = st.sampled_from(
    [
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.NATIONAL,
        phonenumbers.PhoneNumberFormat.RFC3966,
    ]
)
levels = st.sampled_from(list(Verification))


@given(uk_subscriber, formats, formats)
def test_every_way_of_writing_a_number_is_the_same_identity(
    subscriber: int, a: int, b: int
) -> None:
    number = phonenumbers.parse(f"+44 20 {subscriber}")
    first = GB.normalize("phone", phonenumbers.format_number(number, a).removeprefix("tel:"))
    second = GB.normalize("phone", phonenumbers.format_number(number, b).removeprefix("tel:"))
    assert first == second
    assert GB.normalize("phone", first.value) == first


@given(st.emails())
def test_normalising_an_email_twice_changes_nothing(email: str) -> None:
    try:
        once = IdentityNormalizer().normalize("email", email)
    except ValueError:
        return
    assert IdentityNormalizer().normalize("email", once.value) == once


@given(st.lists(levels, min_size=1, max_size=6))
def test_verification_only_ever_rises(claims: list[Verification]) -> None:
    email = Identity("email", "ana@example.org")
    customer = Customer.register(uuid4(), T0, (IdentityClaim(email, claims[0]),))
    best = claims[0]
    for level in claims[1:]:
        customer.link(IdentityClaim(email, level), T0)
        best = max(best, level, key=lambda v: v.rank)
        assert customer.identities[email] is best
