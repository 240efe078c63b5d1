"""What a decision names as its origin when a send was asked for over the API or from a
conversation: `api:key:<key id>`, `nats:key:<key id>` (or `nats`, a command sent without a key),
`conversation:<conversation id>:<agent>`.

Every decision records what asked for it (invariant 1); campaign sends name theirs in
`domain/campaign/origin.py`. A send asked for over HTTP names the key that asked, so the audit
can tell who did; the key's team is the request's own.
"""

from __future__ import annotations

from uuid import UUID

__all__ = [
    "API",
    "API_KEY_PREFIX",
    "CONVERSATION_PREFIX",
    "NATS",
    "NATS_KEY_PREFIX",
    "api_origin",
    "key_of",
    "nats_origin",
    "replier_of",
    "reply_origin",
    "thread_of",
]

API = "api"
"""A send asked for over the API before sends named their key."""
API_KEY_PREFIX = "api:key:"
CONVERSATION_PREFIX = "conversation:"
NATS = "nats"
"""A send asked for over NATS without a key: the NATS account that may publish it is trusted."""
NATS_KEY_PREFIX = "nats:key:"


def api_origin(key_id: UUID) -> str:
    """The origin of a send asked for over HTTP with this key."""
    return f"{API_KEY_PREFIX}{key_id}"


def nats_origin(key_id: UUID) -> str:
    """The origin of a send asked for over NATS with this key."""
    return f"{NATS_KEY_PREFIX}{key_id}"


_UUID_LENGTH = 36


def reply_origin(conversation_id: UUID, agent: str) -> str:
    """The origin of an agent's reply in a conversation (`agent`: who the events record)."""
    return f"{CONVERSATION_PREFIX}{conversation_id}:{agent}"


def _uuid_after(prefix: str, origin: str) -> UUID | None:
    if not origin.startswith(prefix):
        return None
    try:
        return UUID(origin[len(prefix) : len(prefix) + _UUID_LENGTH])
    except ValueError:
        return None


def key_of(origin: str, prefix: str = API_KEY_PREFIX) -> UUID | None:
    """The key an API send's origin names (a NATS send's, with `NATS_KEY_PREFIX`), if it names
    one."""
    if len(origin) != len(prefix) + _UUID_LENGTH:
        return None
    return _uuid_after(prefix, origin)


def thread_of(origin: str) -> UUID | None:
    """The conversation a reply's origin names, if it is a reply's."""
    return _uuid_after(CONVERSATION_PREFIX, origin)


def replier_of(origin: str) -> str | None:
    """The agent a reply's origin names; None for a reply recorded before replies named
    theirs (`conversation:<id>`), or for another origin."""
    if thread_of(origin) is None:
        return None
    rest = origin[len(CONVERSATION_PREFIX) + _UUID_LENGTH :]
    return rest[1:] if rest.startswith(":") and len(rest) > 1 else None
