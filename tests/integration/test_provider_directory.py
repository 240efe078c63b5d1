"""Configured providers against local fakes: failover order, the breaker, timeouts and prices."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from adapters.providers.config import parse_provider_config
from adapters.providers.directory import ConfiguredProviderDirectory
from adapters.providers.fakes.twilio_server import FakeTwilio
from adapters.providers.guarded import BreakerState, GuardedProvider
from domain.policy.vocabulary import Channel
from ports.providers import CircuitOpen, OutboundMessage, ProviderError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from ports.providers import SendReceipt

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sms() -> OutboundMessage:
    return OutboundMessage(uuid.uuid4(), uuid.uuid4().hex, Channel.SMS, "+447700900123", body="Hi")


def twilio_entry(name: str, fake: FakeTwilio, priority: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "twilio",
        "priority": priority,
        "base_url": fake.base_url,
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "from_number": "+15005550001",
        "timeout_seconds": 0.5,
        "breaker": {"failure_threshold": 2, "reset_seconds": 60},
        **extra,
    }


async def send_with_failover(
    directory: ConfiguredProviderDirectory, message: OutboundMessage
) -> tuple[SendReceipt, list[str]]:
    """What the dispatcher does: each provider of the channel in turn until one accepts."""
    failures: list[str] = []
    for provider in directory.for_channel(message.channel):
        try:
            return await provider.send(message), failures
        except ProviderError as error:
            failures.append(f"{provider.name}: {error.reason}")
    raise AssertionError(f"every provider failed: {failures}")


@pytest.fixture(scope="module")
def primary_fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture(scope="module")
def backup_fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(price=None) as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def directory(
    primary_fake: FakeTwilio, backup_fake: FakeTwilio, clock: Clock
) -> AsyncIterator[ConfiguredProviderDirectory]:
    primary_fake.reset()
    backup_fake.reset()
    config = parse_provider_config(
        json.dumps(
            [
                twilio_entry("sms-backup", backup_fake, 20, price={"amount": "0.01", "currency": "EUR", "prefixes": {"+44": "0.035"}}),
                twilio_entry("sms-primary", primary_fake, 10),
                twilio_entry("sms-off", primary_fake, 0, enabled=False),
            ]
        )
    )  # fmt: skip
    built = ConfiguredProviderDirectory.from_config(config, clock=clock)
    yield built
    await built.close()


async def test_the_lowest_priority_sends_while_it_is_healthy(
    directory: ConfiguredProviderDirectory, primary_fake: FakeTwilio, backup_fake: FakeTwilio
) -> None:
    assert [p.name for p in directory.for_channel(Channel.SMS)] == ["sms-primary", "sms-backup"]
    receipt, failures = await send_with_failover(directory, sms())
    assert (receipt.provider, failures) == ("sms-primary", [])
    assert (len(primary_fake.received), len(backup_fake.received)) == (1, 0)


async def test_an_outage_fails_over_then_opens_the_breaker_so_the_backup_sends_at_once(
    directory: ConfiguredProviderDirectory,
    primary_fake: FakeTwilio,
    backup_fake: FakeTwilio,
    clock: Clock,
) -> None:
    primary_fake.fail_next(100, 503)
    for _ in range(2):
        receipt, failures = await send_with_failover(directory, sms())
        assert receipt.provider == "sms-backup"
        assert failures[0].startswith("sms-primary: twilio")
    primary = directory.get("sms-primary")
    assert isinstance(primary, GuardedProvider)
    assert primary.breaker_state is BreakerState.OPEN
    asked = primary_fake.requests

    receipt, failures = await send_with_failover(directory, sms())
    assert (receipt.provider, failures) == ("sms-backup", ["sms-primary: circuit open"])
    assert primary_fake.requests == asked  # refused without calling it
    with pytest.raises(CircuitOpen) as raised:
        await primary.send(sms())
    assert raised.value.retry_after == pytest.approx(60)

    primary_fake.reset()
    clock.now += 60
    receipt, failures = await send_with_failover(directory, sms())
    assert (receipt.provider, failures) == ("sms-primary", [])
    assert primary.breaker_state is BreakerState.CLOSED
    assert len(backup_fake.received) == 3


async def test_a_hanging_provider_times_out_and_the_next_one_sends(
    directory: ConfiguredProviderDirectory, primary_fake: FakeTwilio
) -> None:
    primary_fake.hang(5)
    started = time.monotonic()
    receipt, failures = await send_with_failover(directory, sms())
    assert time.monotonic() - started < 2
    assert receipt.provider == "sms-backup"
    assert "timed out" in failures[0]
    primary = directory.get("sms-primary")
    assert isinstance(primary, GuardedProvider)
    assert primary.stats.failed == 1


async def test_the_price_comes_from_the_answer_or_else_from_the_configuration(
    directory: ConfiguredProviderDirectory, backup_fake: FakeTwilio
) -> None:
    primary = directory.get("sms-primary")
    backup = directory.get("sms-backup")
    assert primary is not None
    assert backup is not None
    answered = await primary.send(sms())
    assert (answered.cost, answered.currency) == (Decimal("0.00790"), "USD")
    unpriced = await backup.send(sms())
    assert unpriced.cost is None
    assert directory.price("sms-backup", "+447700900123") == (Decimal("0.035"), "EUR")
    assert directory.price("sms-primary", "+447700900123") is None


async def test_a_disabled_provider_still_answers_for_its_webhooks(
    directory: ConfiguredProviderDirectory, primary_fake: FakeTwilio
) -> None:
    off = directory.get("sms-off")
    assert off is not None
    assert off not in directory.for_channel(Channel.SMS)
    url = "https://chorus.example/v1/webhooks/sms-off"
    headers, body = primary_fake.signed_status_callback(url, "SM1", "delivered")
    [update] = off.parse_webhook(headers, body, url)
    assert update.provider == "sms-off"
