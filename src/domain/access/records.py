"""Facts about who may act and through what, kept in the event log as documents: the changes
to API keys and the providers a process was started with.

They have no event class: keys live in `api_keys` (ADR 0014) and providers in the
environment; their documents are read as plain JSON by auditors (`GET /v1/audit/events`).
"""

from __future__ import annotations

from uuid import UUID, uuid5

from domain.shared.topics import StoredAs

__all__ = [
    "KEY_CHANGE_TOPICS",
    "PROVIDERS_CONFIGURED_TOPIC",
    "PROVIDERS_STREAM",
    "RECORD_TOPICS",
]

_KEY = StoredAs("ApiKey")
KEY_CHANGE_TOPICS = {
    change: _KEY.topic(change.capitalize())
    for change in ("created", "changed", "rotated", "revoked")
}
"""A key's change (as `api_key_changes` names it) -> the stored name of its document; the
stream is the key's id. A document names the acting key (`by`), never a secret or its hash."""

PROVIDERS_CONFIGURED_TOPIC = StoredAs("Providers").topic("Configured")
"""The providers a process started with, when they differ from the last ones recorded."""
PROVIDERS_STREAM = uuid5(UUID(int=0), "chorus-providers")
"""The one stream of the provider configurations, oldest first."""

RECORD_TOPICS = (*KEY_CHANGE_TOPICS.values(), PROVIDERS_CONFIGURED_TOPIC)
