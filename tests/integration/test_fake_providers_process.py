"""`python -m adapters.providers.fakes`: fakes in a process of their own, wired by the line it prints."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from adapters.postgres.manual_clock import PostgresClockStore
from adapters.providers.config import parse_provider_config
from adapters.providers.directory import ConfiguredProviderDirectory
from adapters.providers.fakes.__main__ import CLOCK_FROM_VARIABLE
from adapters.providers.fakes.receiver import WebhookReceiver
from domain.policy.vocabulary import Channel
from ports.providers import DeliveryStatus, InboundMessage, OutboundMessage, StatusUpdate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    import asyncpg

pytestmark = pytest.mark.integration

START_TIMEOUT = 30


class Fakes:
    def __init__(self, process: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        self.process = process
        self.ready = ready

    async def stop(self) -> tuple[int, dict[str, Any]]:
        """SIGTERM, then the exit code and the summary line from stderr."""
        self.process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.process.communicate(), 15)
        code = self.process.returncode
        assert code is not None
        return code, json.loads(err.decode().strip().splitlines()[-1])


async def start(*args: str, env: dict[str, str] | None = None) -> Fakes:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.providers.fakes",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=None if env is None else {**os.environ, **env},
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if not line:
        _, err = await process.communicate()
        raise AssertionError(f"the fakes did not start: {err.decode()}")
    return Fakes(process, json.loads(line))


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("it did not happen in time")
        await asyncio.sleep(0.02)


def message(channel: Channel, to: str, **fields: Any) -> OutboundMessage:
    return OutboundMessage(uuid.uuid4(), uuid.uuid4().hex, channel, to, **fields)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as made:
        yield made


@pytest.fixture
async def fakes(receiver: WebhookReceiver) -> AsyncIterator[Fakes]:
    receiver.reset()
    started = await start("--callback-url", receiver.url("/v1/webhooks/{name}"))
    yield started
    if started.process.returncode is None:
        started.process.kill()
        await started.process.wait()


async def test_every_fake_starts_and_says_where_it_listens(fakes: Fakes) -> None:
    described = fakes.ready["fakes"]
    assert set(described) == {"twilio", "whatsapp_cloud", "email_api", "fcm", "smtp"}
    assert described["twilio"]["base_url"].startswith("http://127.0.0.1:")
    assert described["smtp"]["port"] > 0
    config = parse_provider_config(json.dumps(fakes.ready["providers"]))
    assert [p.name for p in config.providers] == list(described)
    code, summary = await fakes.stop()
    assert code == 0
    assert summary["stopped"]["twilio"] == {
        "received": 0,
        "duplicates": 0,
        "webhooks": {"pending": 0, "delivered": 0, "failed": 0},
    }


async def test_messages_sent_through_the_printed_configuration_end_delivered(
    fakes: Fakes, receiver: WebhookReceiver
) -> None:
    directory = ConfiguredProviderDirectory.from_config(
        parse_provider_config(json.dumps(fakes.ready["providers"]))
    )
    sent = {
        Channel.SMS: message(Channel.SMS, "+447700900123", body="Hi"),
        Channel.WHATSAPP: message(Channel.WHATSAPP, "447700900123", body="Hi"),
        Channel.EMAIL: message(Channel.EMAIL, "ada@example.org", subject="Hi", body="Hi"),
        Channel.PUSH: message(Channel.PUSH, "device-1", title="Hi", body="Hi"),
    }
    try:
        receipts = {
            channel: await directory.for_channel(channel)[0].send(outbound)
            for channel, outbound in sent.items()
        }
        smtp = directory.get("smtp")
        assert smtp is not None
        assert (await smtp.send(sent[Channel.EMAIL])).status is DeliveryStatus.SENT
        await eventually(lambda: len(receiver.received) == 3)  # push has no webhooks
        delivered: dict[str, str] = {}
        for request in receiver.received:
            name = request.path.rsplit("/", 1)[-1]
            provider = directory.get(name)
            assert provider is not None
            [update] = provider.parse_webhook(
                request.headers, request.body, receiver.url(request.path)
            )
            assert isinstance(update, StatusUpdate)
            assert update.status is DeliveryStatus.DELIVERED
            delivered[name] = update.provider_message_id
    finally:
        await directory.close()
    assert delivered == {
        "twilio": receipts[Channel.SMS].provider_message_id,
        "whatsapp_cloud": receipts[Channel.WHATSAPP].provider_message_id,
        "email_api": receipts[Channel.EMAIL].provider_message_id,
    }
    code, summary = await fakes.stop()
    assert code == 0
    assert summary["stopped"]["smtp"] == {"received": 1}
    assert summary["stopped"]["email_api"]["webhooks"]["delivered"] == 1


async def test_the_fakes_are_told_what_to_do_over_http(
    fakes: Fakes, receiver: WebhookReceiver
) -> None:
    twilio = fakes.ready["fakes"]["twilio"]
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            twilio["control_url"] + "/inbound", json={"from": "+447700900123", "text": "STOP"}
        )
    assert answer.json() == {"status": 200, "error": None}
    directory = ConfiguredProviderDirectory.from_config(
        parse_provider_config(json.dumps(fakes.ready["providers"]))
    )
    try:
        provider = directory.get("twilio")
        assert provider is not None
        [request] = receiver.received
        [inbound] = provider.parse_webhook(
            request.headers, request.body, receiver.url(request.path)
        )
    finally:
        await directory.close()
    assert isinstance(inbound, InboundMessage)
    assert (inbound.sender, inbound.text) == ("+447700900123", "STOP")


async def test_a_configuration_chooses_fakes_names_and_statuses(receiver: WebhookReceiver) -> None:
    receiver.reset()
    config = {
        "fakes": [{"type": "email_api", "name": "mail-fake", "status": "bounced"}],
        "callback_url": receiver.url("/hooks/{name}/{type}"),
    }
    fakes = await start("--config", json.dumps(config))
    try:
        assert list(fakes.ready["fakes"]) == ["mail-fake"]
        assert fakes.ready["fakes"]["mail-fake"]["status"] == "bounced"
        directory = ConfiguredProviderDirectory.from_config(
            parse_provider_config(json.dumps(fakes.ready["providers"]))
        )
        try:
            [provider] = directory.for_channel(Channel.EMAIL)
            await provider.send(message(Channel.EMAIL, "ada@example.org", body="Hi"))
            await eventually(lambda: len(receiver.received) == 1)
            [request] = receiver.received
            assert request.path == "/hooks/mail-fake/email_api"
            [update] = provider.parse_webhook(
                request.headers, request.body, receiver.url(request.path)
            )
        finally:
            await directory.close()
        assert isinstance(update, StatusUpdate)
        assert update.status is DeliveryStatus.BOUNCED
    finally:
        code, _ = await fakes.stop()
    assert code == 0


async def test_on_chorus_manual_clock_the_fakes_report_its_time_as_it_moves(
    receiver: WebhookReceiver, pool: asyncpg.Pool, database_url: str
) -> None:
    receiver.reset()
    clock = PostgresClockStore(pool)
    then = datetime(2031, 5, 4, 9, 30, tzinfo=UTC)
    await clock.save(then)
    fakes = await start(
        "--fakes",
        "whatsapp_cloud,email_api",
        "--callback-url",
        receiver.url("/v1/webhooks/{name}"),
        env={CLOCK_FROM_VARIABLE: database_url},  # off the command line: it may hold a password
    )
    directory = ConfiguredProviderDirectory.from_config(
        parse_provider_config(json.dumps(fakes.ready["providers"]))
    )
    try:

        async def reported_at(channel: Channel, to: str) -> datetime | None:
            receiver.reset()
            [provider] = directory.for_channel(channel)
            await provider.send(message(channel, to, subject="Hi", body="Hi"))
            await eventually(lambda: len(receiver.received) == 1)
            [request] = receiver.received
            [update] = provider.parse_webhook(
                request.headers, request.body, receiver.url(request.path)
            )
            assert isinstance(update, StatusUpdate)
            return update.at

        assert await reported_at(Channel.WHATSAPP, "447700900123") == then
        assert await reported_at(Channel.EMAIL, "ada@example.org") == then
        later = then + timedelta(days=1, hours=3)
        await clock.save(later)  # the service moved its clock: the fakes follow within moments
        await asyncio.sleep(1)
        assert await reported_at(Channel.WHATSAPP, "447700900123") == later
    finally:
        await directory.close()
        code, _ = await fakes.stop()
    assert code == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--fakes", "pigeon"], "Invalid enum value 'pigeon' - at `$.fakes[0].type`"),
        (["--config", '{"fakes": [], "colour": 1}'], "unknown field `colour`"),
        (["--config", "/nonexistent/fakes.json"], "No such file"),
    ],
)
async def test_a_bad_configuration_exits_with_2_and_says_why(
    args: list[str], expected: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.providers.fakes",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    assert process.returncode == 2
    assert out == b""
    assert expected in err.decode()
