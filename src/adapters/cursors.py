"""Page cursors over customer ids, or keys: opaque to clients, checked when they come back."""

from __future__ import annotations

import base64
import re
from uuid import UUID

from domain.shared.keys import KEY_PATTERN
from ports.directory import InvalidCursor

__all__ = ["cursor_of", "cursor_of_key", "key_of_cursor", "uuid_of_cursor"]

_KEY = re.compile(KEY_PATTERN)


def cursor_of(customer_id: UUID) -> str:
    """The cursor after a page: its last customer id."""
    return base64.urlsafe_b64encode(customer_id.bytes).decode().rstrip("=")


def uuid_of_cursor(cursor: str | None) -> UUID | None:
    if not cursor:
        return None
    try:
        return UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise InvalidCursor(f"{cursor!r} is not a cursor from a previous page") from None


def cursor_of_key(key: str) -> str:
    """The cursor after a page listed by key: its last key."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def key_of_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:  # not base64, or not UTF-8
        key = ""
    if not _KEY.fullmatch(key):
        raise InvalidCursor(f"{cursor!r} is not a cursor from a previous page")
    return key
