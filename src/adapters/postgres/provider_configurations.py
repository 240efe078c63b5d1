"""The providers a process was started with, recorded in the event log when they changed.

Providers are configured through the environment (`CHORUS_PROVIDERS`), so a change to them is
no request anyone made: each start compares its configuration, secrets left out, with the last
one recorded, and records it as `Providers.Configured` when it differs, acting as
`environment`. An auditor reads when providers changed, and to what, in the log.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import msgspec

from adapters.providers.config import enc_hook
from domain.access.records import PROVIDERS_CONFIGURED_TOPIC, PROVIDERS_STREAM

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

    from adapters.providers.config import ProvidersConfig

__all__ = ["ENVIRONMENT", "PostgresProviderConfigurations", "configuration_document"]

ENVIRONMENT = "environment"
"""Who changed the providers: whoever set the process's environment, seen at its start."""

# Two processes starting at once take turns: the second sees what the first recorded.
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('chorus-providers-configured', 0))"
_LAST = """
SELECT version, payload FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1
"""
_APPEND = """
INSERT INTO events (stream_id, version, topic, occurred_at, payload) VALUES ($1, $2, $3, $4, $5)
"""


def configuration_document(config: ProvidersConfig | None, by: str = ENVIRONMENT) -> dict[str, Any]:
    """What is recorded of a configuration: each provider's name, type, channel and settings
    (endpoints, priorities, limits), every secret shown as `***`, and the SHA-256 of that."""
    providers = [
        {**msgspec.to_builtins(provider, enc_hook=enc_hook), "channel": provider.channel.value}
        for provider in (config.providers if config is not None else ())
    ]
    canonical = msgspec.json.encode(providers, order="sorted")
    return {"providers": providers, "digest": hashlib.sha256(canonical).hexdigest(), "by": by}


class PostgresProviderConfigurations:
    """Appends `Providers.Configured` to the one stream of configurations, when it changed."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, config: ProvidersConfig | None, at: datetime) -> bool:
        """Records the configuration unless it is the last one recorded (or there never were
        providers and there are none); whether it was recorded."""
        document = configuration_document(config)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK)
            last = await conn.fetchrow(_LAST, PROVIDERS_STREAM)
            if last is None and not document["providers"]:
                return False
            if (
                last is not None
                and msgspec.json.decode(last["payload"])["digest"] == document["digest"]
            ):
                return False
            version = 1 if last is None else last["version"] + 1
            payload = msgspec.json.encode(document)
            await conn.execute(
                _APPEND, PROVIDERS_STREAM, version, PROVIDERS_CONFIGURED_TOPIC, at, payload
            )
        return True
