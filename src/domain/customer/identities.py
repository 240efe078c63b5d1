"""Identities resolve to customers; a channel is metadata, never an identity by itself."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from domain.shared.errors import InvalidValue
from domain.shared.text import has_control

__all__ = [
    "BUILTIN_IDENTITY_TYPES",
    "Identity",
    "IdentityClaim",
    "IdentityNormalizer",
    "Verification",
    "strongest_claims",
]

BUILTIN_IDENTITY_TYPES = frozenset(
    {"email", "phone", "account_id", "crm_id", "deal_id", "whatsapp_id", "device_token"}
)
_CUSTOM_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_MAX_VALUE_LENGTH = 512


class Verification(StrEnum):
    """How sure we are that the person controls an identity; higher unlocks more."""

    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    AUTHENTICATED = "authenticated"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Verification) -> bool:
        return self.rank >= other.rank


_RANKS = {Verification.UNVERIFIED: 0, Verification.VERIFIED: 1, Verification.AUTHENTICATED: 2}


@dataclass(frozen=True, slots=True, order=True)
class Identity:
    """A normalised identifier of a person: `email:ana@example.org`, `phone:+442079460958`."""

    type: str
    value: str

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


class IdentityNormalizer:
    """Turns what producers write into one canonical identity, so equal things compare equal."""

    def __init__(self, default_region: str | None = None) -> None:
        self.default_region = default_region.upper() if default_region else None
        # The same identities come back signal after signal; parsing them is the costly part.
        self.normalize = lru_cache(maxsize=200_000)(self._normalize)  # type: ignore[method-assign]

    def parse(self, text: str) -> Identity:
        """Parses `TYPE:VALUE`, the form used in query strings."""
        kind, sep, value = text.partition(":")
        if not sep:
            raise InvalidValue("identity", "expected TYPE:VALUE, for example email:ana@example.org")
        return self.normalize(kind, value)

    def normalize(self, kind: str, value: str) -> Identity:
        """The canonical identity; raises InvalidValue with the reason."""
        return self._normalize(kind, value)

    def _normalize(self, kind: str, value: str) -> Identity:
        kind = kind.strip().lower()
        if not _CUSTOM_TYPE.match(kind):
            raise InvalidValue("type", "identity types are lower-case words like email or phone")
        value = value.strip()
        if not value:
            raise InvalidValue(kind, "is empty")
        if len(value) > _MAX_VALUE_LENGTH:
            raise InvalidValue(kind, f"is longer than {_MAX_VALUE_LENGTH} characters")
        if has_control(value):
            raise InvalidValue(kind, "holds a control character")
        if kind == "email":
            return Identity("email", self._email(value))
        if kind == "phone":
            return Identity("phone", self._phone(value))
        if kind == "whatsapp_id":
            return Identity(
                "whatsapp_id", self._phone(value if value.startswith("+") else "+" + value)[1:]
            )
        return Identity(kind, value)

    @staticmethod
    def _email(value: str) -> str:
        try:
            checked = validate_email(value, check_deliverability=False)
        except EmailNotValidError as error:
            raise InvalidValue("email", str(error)) from None
        return f"{checked.local_part.lower()}@{checked.ascii_domain.lower()}"

    def _phone(self, value: str) -> str:
        try:
            number = phonenumbers.parse(
                value, None if value.startswith("+") else self.default_region
            )
        except phonenumbers.NumberParseException as error:
            hint = (
                "" if self.default_region else " (no default region is set, so use +country code)"
            )
            raise InvalidValue("phone", f"{error}{hint}") from None
        if not phonenumbers.is_possible_number(number):
            raise InvalidValue("phone", "is not a possible phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True, slots=True)
class IdentityClaim:
    """An identity with the verification its source vouches for."""

    identity: Identity
    verification: Verification = Verification.UNVERIFIED


def strongest_claims(
    claims: tuple[IdentityClaim, ...] | list[IdentityClaim],
) -> tuple[IdentityClaim, ...]:
    """One claim per identity, the best verified, in a stable order."""
    strongest: dict[Identity, Verification] = {}
    for claim in claims:
        known = strongest.get(claim.identity)
        if known is None or not known.at_least(claim.verification):
            strongest[claim.identity] = claim.verification
    return tuple(IdentityClaim(identity, level) for identity, level in sorted(strongest.items()))
