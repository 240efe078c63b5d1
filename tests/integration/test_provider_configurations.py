"""The providers of a process's environment in the event log: recorded when they changed, by
`environment`, never with a secret."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adapters.postgres.provider_configurations import PostgresProviderConfigurations
from adapters.providers.config import parse_provider_config
from domain.access.records import PROVIDERS_STREAM

if TYPE_CHECKING:
    import asyncpg

    from adapters.providers.config import ProvidersConfig

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 5, 12, tzinfo=UTC)
TOKEN = "twilio-auth-token-never-logged"


def config(**changes: Any) -> ProvidersConfig:
    twilio = {
        "name": "twilio-main",
        "type": "twilio",
        "account_sid": "AC0123",
        "auth_token": TOKEN,
        "from_number": "+15005550001",
        "base_url": "https://sms.example.com",
        **changes,
    }
    return parse_provider_config(json.dumps({"providers": [twilio]}))


async def recorded(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT topic, payload FROM events WHERE stream_id = $1 ORDER BY version", PROVIDERS_STREAM
    )
    assert {row["topic"] for row in rows} <= {"Providers.Configured"}
    return [json.loads(row["payload"]) for row in rows]


class TestProviderConfigurations:
    async def test_a_start_records_the_providers_once_until_they_change(
        self, pool: asyncpg.Pool
    ) -> None:
        configurations = PostgresProviderConfigurations(pool)
        assert await configurations.record(config(), AT)
        assert not await configurations.record(config(), AT + timedelta(minutes=1))
        assert await configurations.record(config(priority=5), AT + timedelta(minutes=2))
        assert await configurations.record(None, AT + timedelta(minutes=3))
        documents = await recorded(pool)
        assert [len(d["providers"]) for d in documents] == [1, 1, 0]
        first = documents[0]
        assert first["by"] == "environment"
        assert first["providers"][0]["name"] == "twilio-main"
        assert first["providers"][0]["type"] == "twilio"
        assert first["providers"][0]["channel"] == "sms"
        assert first["providers"][0]["base_url"] == "https://sms.example.com"
        assert first["providers"][0]["auth_token"] == "***"
        assert documents[1]["providers"][0]["priority"] == 5
        assert len({d["digest"] for d in documents}) == 3
        assert TOKEN not in json.dumps(documents)

    async def test_no_providers_ever_records_nothing(self, pool: asyncpg.Pool) -> None:
        assert not await PostgresProviderConfigurations(pool).record(None, AT)
        assert await recorded(pool) == []
