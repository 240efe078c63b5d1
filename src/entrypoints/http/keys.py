"""What marketers define under a key (segments, triggers): the fields of a definition, the key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec

from domain.shared.errors import NotFound
from domain.shared.keys import KEY_PATTERN

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Description", "Key", "Name", "path_key"]

Key = Annotated[str, msgspec.Meta(pattern=KEY_PATTERN, max_length=64)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=2_000)]


def path_key(key: str, check: Callable[[str], str], what: str) -> str:
    """The key in a path, checked by `check`; one that cannot be a key names nothing: 404."""
    try:
        return check(key)
    except ValueError:
        raise NotFound(f"no {what} {key!r}") from None
