"""The configured channel providers, their guards' state, and their settings without secrets."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get

from adapters.providers.config import enc_hook
from adapters.providers.directory import ConfiguredProviderDirectory
from entrypoints.http.auth import allow
from ports.providers import ProviderDirectory

__all__ = ["ProvidersController"]


class ProvidersController(Controller):
    path = "/v1/providers"
    tags = ["delivery"]

    @get(
        "/",
        operation_id="listProviders",
        name="providers:list",
        guards=[allow()],
        summary="Configured providers in failover order, with breaker state and counters",
        description="Secrets (tokens, passwords, keys) are shown as `***`.",
    )
    @inject
    async def list_providers(self, providers: FromDishka[ProviderDirectory]) -> dict[str, Any]:
        listed: list[dict[str, Any]] = []
        if isinstance(providers, ConfiguredProviderDirectory):
            for configured in sorted(providers, key=lambda c: (c.channel.value, c.priority)):
                settings = msgspec.json.decode(
                    msgspec.json.encode(configured.settings, enc_hook=enc_hook)
                )
                stats = dataclasses.asdict(configured.provider.stats)
                listed.append(
                    {
                        "name": configured.name,
                        "channel": configured.channel.value,
                        "priority": configured.priority,
                        "enabled": configured.enabled,
                        "breaker": configured.provider.breaker_state.value,
                        "counters": {k: str(v) if k == "breaker" else v for k, v in stats.items()},
                        "settings": settings,
                    }
                )
        return {"providers": listed}
