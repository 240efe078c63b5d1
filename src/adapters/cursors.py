"""Page cursors over customer ids: opaque to clients, checked when they come back."""

from __future__ import annotations

import base64
from uuid import UUID

from ports.directory import InvalidCursor

__all__ = ["cursor_of", "uuid_of_cursor"]


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
