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

__all__ = ["ProviderOut", "ProvidersController", "ProvidersOut"]


class ProviderOut(msgspec.Struct):
    name: str
    channel: str
    priority: int
    enabled: bool
    breaker: str
    counters: dict[str, Any]
    settings: dict[str, Any]


class ProvidersOut(msgspec.Struct):
    items: list[ProviderOut]
    next_cursor: str | None


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
    async def list_providers(self, providers: FromDishka[ProviderDirectory]) -> ProvidersOut:
        listed: list[ProviderOut] = []
        if isinstance(providers, ConfiguredProviderDirectory):
            for configured in sorted(providers, key=lambda c: (c.channel.value, c.priority)):
                settings = msgspec.json.decode(
                    msgspec.json.encode(configured.settings, enc_hook=enc_hook)
                )
                stats = dataclasses.asdict(configured.provider.stats)
                listed.append(
                    ProviderOut(
                        configured.name,
                        configured.channel.value,
                        configured.priority,
                        configured.enabled,
                        configured.provider.breaker_state.value,
                        {k: str(v) if k == "breaker" else v for k, v in stats.items()},
                        settings,
                    )
                )
        return ProvidersOut(listed, next_cursor=None)
