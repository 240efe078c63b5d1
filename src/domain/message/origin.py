"""What a decision names as its origin when a send was asked for over the API or from a
conversation: `api:key:<key id>`, `conversation:<conversation id>`.

Every decision records what asked for it (invariant 1); campaign sends name theirs in
`domain/campaign/origin.py`. A send asked for over HTTP names the key that asked, so the audit
can tell who did; the key's team is the request's own.
"""

from __future__ import annotations

from uuid import UUID

__all__ = ["API", "API_KEY_PREFIX", "CONVERSATION_PREFIX", "api_origin", "key_of", "thread_of"]

API = "api"
"""A send asked for over the API before sends named their key."""
API_KEY_PREFIX = "api:key:"
CONVERSATION_PREFIX = "conversation:"


def api_origin(key_id: UUID) -> str:
    """The origin of a send asked for over HTTP with this key."""
    return f"{API_KEY_PREFIX}{key_id}"


def _uuid_after(prefix: str, origin: str) -> UUID | None:
    if not origin.startswith(prefix):
        return None
    try:
        return UUID(origin[len(prefix) :])
    except ValueError:
        return None


def key_of(origin: str) -> UUID | None:
    """The key an API send's origin names, if it names one."""
    return _uuid_after(API_KEY_PREFIX, origin)


def thread_of(origin: str) -> UUID | None:
    """The conversation a reply's origin names, if it is a reply's."""
    return _uuid_after(CONVERSATION_PREFIX, origin)
