"""What a customer is like: typed profile fields and free custom attributes."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from domain.shared.errors import InvalidValue

__all__ = [
    "PERSONAL_PROFILE_FIELDS",
    "PROFILE_FIELDS",
    "AttributeValue",
    "Profile",
    "check_attributes",
]

AttributeValue = str | int | float | bool | None
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_MAX_ATTRIBUTES = 200


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@dataclass(frozen=True, slots=True)
class Profile:
    """The typed part of a profile; None means unknown."""

    first_name: str | None = None
    last_name: str | None = None
    time_zone: str | None = None
    locale: str | None = None
    country: str | None = None

    def __post_init__(self) -> None:
        if self.time_zone is not None and self.time_zone not in _time_zones():
            raise InvalidValue("time_zone", f"{self.time_zone!r} is not an IANA time zone")
        if self.locale is not None and not _LOCALE.match(self.locale):
            raise InvalidValue("locale", f"{self.locale!r} is not a BCP 47 tag like en-GB")
        if self.country is not None and not _COUNTRY.match(self.country):
            raise InvalidValue("country", f"{self.country!r} is not an ISO 3166 alpha-2 code")
        for name in ("first_name", "last_name"):
            value = getattr(self, name)
            if value is not None and len(value) > 200:
                raise InvalidValue(name, "is longer than 200 characters")

    def merged_with(self, changes: dict[str, Any]) -> Profile:
        # Most profile updates change custom attributes only: a profile is immutable, so the
        # same one does for no change, and replays skip checking it again.
        return replace(self, **changes) if changes else self

    def changes_to(self, changes: dict[str, Any]) -> dict[str, Any]:
        """The subset of `changes` that differs from this profile."""
        return {name: value for name, value in changes.items() if getattr(self, name) != value}

    def as_dict(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in PROFILE_FIELDS}


PROFILE_FIELDS = tuple(field.name for field in fields(Profile))
PERSONAL_PROFILE_FIELDS = ("first_name", "last_name")
"""The profile fields that name a person: sealed in events, gone once they are erased."""


def check_attributes(attributes: dict[str, Any]) -> dict[str, AttributeValue]:
    """Custom attributes are flat: a name and a scalar; None removes the attribute."""
    if len(attributes) > _MAX_ATTRIBUTES:
        raise InvalidValue("attributes", f"at most {_MAX_ATTRIBUTES} attributes")
    for name, value in attributes.items():
        if not _ATTRIBUTE_NAME.match(name):
            raise InvalidValue(f"attributes.{name}", "names are letters, digits, _ . and -")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidValue(f"attributes.{name}", "values are strings, numbers or booleans")
        if isinstance(value, str) and len(value) > 2000:
            raise InvalidValue(f"attributes.{name}", "is longer than 2000 characters")
    return attributes
