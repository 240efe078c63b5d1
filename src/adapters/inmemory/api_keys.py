"""API keys in memory, kept by the hash of their secret as PostgreSQL keeps them."""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from ports.api_keys import ApiKey, NewApiKey, check_agent_key

if TYPE_CHECKING:
    from ports.api_keys import Role
    from ports.clock import Clock
    from ports.ids import IdGenerator

__all__ = ["InMemoryApiKeyStore"]


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class InMemoryApiKeyStore:
    """Creating a key with a secret that exists already gives that secret the new role."""

    def __init__(self, clock: Clock, ids: IdGenerator) -> None:
        self.clock = clock
        self.ids = ids
        self.keys: dict[bytes, ApiKey] = {}

    async def create(
        self, role: Role, name: str, *, secret: str | None = None, agent: str | None = None
    ) -> NewApiKey:
        check_agent_key(role, agent)
        secret = secret or "chorus_" + secrets.token_urlsafe(32)
        key = ApiKey(self.ids.new_id(), name, role, self.clock.now(), agent)
        earlier = self.keys.get(_hash(secret))
        self.keys[_hash(secret)] = (
            key
            if earlier is None
            else ApiKey(earlier.id, earlier.name, role, earlier.created_at, agent)
        )
        return NewApiKey(key, secret)

    async def authenticate(self, secret: str) -> ApiKey | None:
        return self.keys.get(_hash(secret))
