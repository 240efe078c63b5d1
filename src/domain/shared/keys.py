"""Keys: the names people give what they define (a segment, a trigger), and the ids they give.

An aggregate defined under a key has the id `keyed_id(namespace, key)`, each kind of aggregate
with its own namespace, so the key alone finds the stream and the same key is the same stream.
"""

from __future__ import annotations

import re
from uuid import UUID, uuid5

from domain.shared.errors import InvalidValue

__all__ = ["KEY_PATTERN", "check_key", "keyed_id"]

KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
"""Lower-case letters, digits, `_`, `.` and `-`, starting with a letter or a digit; at most 64."""

_KEY = re.compile(KEY_PATTERN)


def check_key(key: str, what: str, example: str) -> str:
    """The key, if it is one; else `InvalidValue` naming `what` it should key, like `example`."""
    if not _KEY.match(key):
        raise InvalidValue(
            "key", f"{key!r} is not a {what} key like '{example}' (a-z, 0-9, _ . -, ≤ 64)"
        )
    return key


def keyed_id(namespace: UUID, key: str) -> UUID:
    """The id of what is defined under `key` (a checked key) in `namespace`."""
    return uuid5(namespace, key)
