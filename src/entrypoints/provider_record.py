"""At a service's start, the providers of its environment recorded when they changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import structlog

from adapters.postgres.provider_configurations import PostgresProviderConfigurations
from adapters.providers.config import ProviderConfigError, load_provider_config
from ports.clock import Clock

if TYPE_CHECKING:
    from dishka import AsyncContainer

    from entrypoints.settings import Settings

__all__ = ["record_provider_configuration"]

log = structlog.get_logger("chorus")


async def record_provider_configuration(container: AsyncContainer, settings: Settings) -> None:
    """`Providers.Configured` in the log if `CHORUS_PROVIDERS` differs from the last recorded."""
    source = settings.providers
    try:
        config = load_provider_config(source, name="CHORUS_PROVIDERS") if source else None
    except ProviderConfigError as error:
        raise SystemExit(f"chorus: bad setting {error}") from None
    clock = await container.get(Clock)
    recorded = await PostgresProviderConfigurations(await container.get(asyncpg.Pool)).record(
        config, clock.now()
    )
    if recorded:
        log.info(
            "provider configuration recorded", providers=len(config.providers) if config else 0
        )
