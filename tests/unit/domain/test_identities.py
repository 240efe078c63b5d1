from __future__ import annotations

import pytest

from domain.customer.identities import Identity, IdentityNormalizer, Verification
from domain.shared.errors import InvalidValue


class TestNormalizingIdentities:
    def test_a_phone_number_written_two_ways_is_one_identity(self) -> None:
        gb = IdentityNormalizer("GB")
        assert gb.normalize("phone", "+44 20 7946 0958") == gb.normalize("phone", "020 7946 0958")
        assert gb.normalize("phone", "020 7946 0958") == Identity("phone", "+442079460958")

    def test_a_national_number_needs_a_default_region(self) -> None:
        with pytest.raises(InvalidValue, match="phone"):
            IdentityNormalizer().normalize("phone", "020 7946 0958")

    def test_an_email_is_lower_cased_and_trimmed(self) -> None:
        assert IdentityNormalizer().normalize("email", "  Ana@Example.ORG ") == Identity(
            "email", "ana@example.org"
        )

    def test_an_invalid_email_is_refused_with_a_reason(self) -> None:
        with pytest.raises(InvalidValue) as refused:
            IdentityNormalizer().normalize("email", "not-an-email")
        assert refused.value.field == "email"

    def test_a_whatsapp_id_is_the_digits_of_the_number(self) -> None:
        assert (
            IdentityNormalizer().normalize("whatsapp_id", "+44 7700 900123").value == "447700900123"
        )

    def test_custom_identity_types_are_kept(self) -> None:
        assert IdentityNormalizer().parse("loyalty_card:  ABC-1 ") == Identity(
            "loyalty_card", "ABC-1"
        )

    def test_a_query_without_a_type_is_refused(self) -> None:
        with pytest.raises(InvalidValue):
            IdentityNormalizer().parse("ana@example.org")

    def test_verification_levels_are_ordered(self) -> None:
        assert Verification.AUTHENTICATED.at_least(Verification.VERIFIED)
        assert not Verification.UNVERIFIED.at_least(Verification.VERIFIED)


class TestIdentitiesHoldNoControlCharacters:
    @pytest.mark.parametrize("value", ["u-1\x00", "a\x1bb", "x\x85y", "\ud800"])
    def test_a_value_with_a_control_character_is_refused_naming_its_type(self, value: str) -> None:
        with pytest.raises(InvalidValue, match="control character") as refused:
            IdentityNormalizer().normalize("account_id", value)
        assert refused.value.field == "account_id"
