"""Messages dispatched per second to local fake providers, and one channel's isolation from another.

The fakes run in a process of their own (`python -m adapters.providers.fakes`), so that they do
not share the dispatcher's event loop; they send no status webhooks. Chorus is wired as
`chorus serve` wires it (`make_container(Settings(...))`, then `Dispatcher(DispatchMessages,
list(Channel))` with its defaults), with `CHORUS_PROVIDERS` as the fakes print it,
and logs as the service logs (JSON lines, level info), to a file.

`throughput`: transactional SMS are requested with inline content through `RequestMessage`
(decision, `Message` stream and outbox row in one commit each), then the dispatcher starts and
the time runs until every message's round is recorded (outbox row gone, stream and `messages`
row updated). The baseline, in the same run: as many requests posted straight to the same fake
with the same HTTP client (one aiohttp session) and as many in flight as the provider's
`max_concurrency`, no database. Both sides alternate in rounds.

`isolation`: SMS throughput alone, then with a WhatsApp backlog queued too while the WhatsApp
fake hangs (`/_fake/hang`): its sends time out, its breaker opens, its messages are put back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
import asyncpg
import structlog

from adapters.providers.directory import ConfiguredProviderDirectory
from application.customer.upsert_customer import UpsertCustomer
from application.delivery.dispatch import DispatchMessages
from application.messages.compose import MessageContent
from application.messages.request_message import RequestMessage
from domain.customer.identities import Identity, IdentityClaim, Verification
from domain.message.content import Content
from domain.policy.decision import SendRequest
from domain.policy.vocabulary import Channel, Purpose
from entrypoints.ioc import make_container
from entrypoints.logs import configure_logging
from entrypoints.settings import Settings
from entrypoints.workers.dispatcher import Dispatcher
from ports.providers import ProviderDirectory

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

__all__ = [
    "TARGET_ISOLATION_RATIO",
    "TARGET_MESSAGES_PER_S",
    "DispatchConfig",
    "run_dispatch",
]

TARGET_MESSAGES_PER_S = 2_000
TARGET_ISOLATION_RATIO = 0.8
ROOT = Path(__file__).resolve().parents[1]
_SMS = "twilio"  # the fakes' provider names: their types
_WHATSAPP = "whatsapp_cloud"
_BODY = "Your code is 123456"


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    messages: int = 20_000  # SMS for the throughput figure, over all rounds
    rounds: int = 2  # raw and dispatch alternate
    customers: int = 1_000
    max_concurrency: int = 16  # each provider's, as configured; the raw side's in-flight count
    request_workers: int = 16  # concurrent RequestMessage calls while queueing
    isolation_messages: int = 10_000  # SMS in each isolation pass
    hung_messages: int = 10_000  # WhatsApp backlog while its provider hangs
    hung_timeout_seconds: float = 1.0  # the WhatsApp provider's timeout_seconds
    isolation_rounds: int = 2  # each: one pass alone, one while WhatsApp hangs
    warmup_posts: int = 1_000


@dataclass
class _Wiring:
    """The service's objects, as its container makes them."""

    pool: asyncpg.Pool
    request: RequestMessage
    upsert: UpsertCustomer
    dispatch: DispatchMessages
    directory: ConfiguredProviderDirectory


# the fakes, in their own process


@contextlib.contextmanager
def _fakes_process() -> Iterator[dict[str, Any]]:
    """`python -m adapters.providers.fakes` for Twilio and WhatsApp; yields its JSON line."""
    python_path = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in python_path if p)}
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.providers.fakes", "--fakes", f"{_SMS},{_WHATSAPP}"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        line = process.stdout.readline()  # the process exits if a fake cannot start
        if not line:
            raise RuntimeError(f"the fakes did not start: {process.stderr.read().decode()[-2000:]}")
        yield json.loads(line)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def _control(
    session: aiohttp.ClientSession, fake: dict[str, Any], action: str, body: Any = None
) -> dict[str, Any]:
    url = f"{fake['control_url']}/{action}"
    request = session.get(url) if action == "stats" else session.post(url, json=body or {})
    async with request as response:
        answer: dict[str, Any] = await response.json()
        if response.status != 200:
            raise RuntimeError(f"fake control {action}: {answer}")
        return answer


# the raw baseline


def _twilio_request(provider: dict[str, Any]) -> tuple[str, str]:
    url = f"{provider['base_url']}/2010-04-01/Accounts/{provider['account_sid']}/Messages.json"
    credentials = f"{provider['account_sid']}:{provider['auth_token']}".encode()
    return url, "Basic " + base64.b64encode(credentials).decode()


def _phone(n: int) -> str:
    return f"+1415555{n:04d}"


async def _raw_posts(provider: dict[str, Any], count: int, concurrency: int) -> float:
    """Posts `count` Twilio messages straight to the fake, `concurrency` in flight; per second.

    The same client as the adapter's: one aiohttp session, as many connections as in flight,
    the answer's JSON read for its sid. Bodies and keys are made before the clock starts.
    """
    url, authorization = _twilio_request(provider)
    requests = [
        (
            urlencode({"To": _phone(n % 10_000), "From": provider["from_number"], "Body": _BODY}),
            uuid.uuid4().hex,
        )
        for n in range(count)
    ]
    requests.reverse()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=10),
        skip_auto_headers=("User-Agent",),
    ) as session:

        async def worker() -> None:
            while requests:
                form, key = requests.pop()
                headers = {
                    "Authorization": authorization,
                    "Content-Type": "application/x-www-form-urlencoded",
                    "I-Twilio-Idempotency-Token": key,
                }
                async with session.post(url, data=form.encode(), headers=headers) as response:
                    answer = json.loads(await response.read())
                    if response.status != 201 or not answer.get("sid"):
                        raise RuntimeError(f"the fake answered {response.status}: {answer}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


# Chorus


def _providers(fakes: dict[str, Any], config: DispatchConfig) -> list[dict[str, Any]]:
    """The fakes' CHORUS_PROVIDERS, with the concurrency and the WhatsApp timeout of the run."""
    providers = []
    for entry in fakes["providers"]:
        entry = {**entry, "max_concurrency": config.max_concurrency}
        if entry["name"] == _WHATSAPP:
            entry["timeout_seconds"] = config.hung_timeout_seconds
        providers.append(entry)
    return providers


@contextlib.asynccontextmanager
async def _service(dsn: str, providers: list[dict[str, Any]]) -> AsyncIterator[_Wiring]:
    settings = Settings(
        database_url=dsn,
        providers=json.dumps({"providers": providers}),
        secret="bench-dispatch-unsubscribe-secret",
        public_url="https://chorus.example",
    )
    container = make_container(settings)
    try:
        directory = await container.get(ProviderDirectory)
        assert isinstance(directory, ConfiguredProviderDirectory)
        yield _Wiring(
            pool=await container.get(asyncpg.Pool),
            request=await container.get(RequestMessage),
            upsert=await container.get(UpsertCustomer),
            dispatch=await container.get(DispatchMessages),
            directory=directory,
        )
    finally:
        await container.close()


@contextlib.contextmanager
def _service_logs(path: Path) -> Iterator[None]:
    """The service's logging (JSON lines at info) into `path`; the bench's own restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("info")
    with path.open("w") as log:
        for handler in root.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(log)
        try:
            yield
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
            structlog.reset_defaults()


async def _customers(wiring: _Wiring, count: int) -> list[uuid.UUID]:
    ids = []
    for n in range(count):
        claim = IdentityClaim(Identity("phone", _phone(n)), Verification.VERIFIED)
        ids.append((await wiring.upsert((claim,), {"first_name": f"C{n}"}, {})).customer_id)
    return ids


async def _queue(
    wiring: _Wiring,
    customers: list[uuid.UUID],
    count: int,
    channel: Channel,
    workers: int,
) -> float:
    """Requests `count` transactional messages on `channel`, inline content; requests per second.

    Each worker owns its share of the customers, so no two requests race on one stream.
    """
    request = SendRequest(
        team="bench", purpose=Purpose.TRANSACTIONAL, channels=(channel,), approved_template=True
    )
    content = MessageContent(inline=Content(body=_BODY), campaign="bench")
    if len(customers) < workers:
        raise ValueError("each worker needs a customer of its own")
    shares = [customers[w::workers] for w in range(workers)]
    counts = [count // workers + (1 if w < count % workers else 0) for w in range(workers)]

    async def worker(mine: list[uuid.UUID], todo: int) -> None:
        for n in range(todo):
            decided = await wiring.request(mine[n % len(mine)], request, content=content)
            if decided.message_id is None:
                raise RuntimeError(f"the request was not allowed: {decided}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(mine, todo) for mine, todo in zip(shares, counts, strict=True)))
    return count / (time.perf_counter() - started)


async def _dispatch(wiring: _Wiring, accepted: int, *, give_up_after: float) -> float:
    """Runs a fresh Dispatcher until `accepted` rounds are accepted and recorded; per second."""
    dispatcher = Dispatcher(wiring.dispatch, list(Channel))
    started = time.perf_counter()
    await dispatcher.start()
    try:
        deadline = started + give_up_after
        while dispatcher.dispatched < accepted:
            if time.perf_counter() > deadline:
                raise RuntimeError(
                    f"only {dispatcher.dispatched} of {accepted} dispatched in {give_up_after:.0f}s"
                )
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - started
    finally:
        await dispatcher.stop()
    return accepted / elapsed


async def _counts(pool: asyncpg.Pool) -> dict[str, int]:
    row = await pool.fetchrow(
        """SELECT
             (SELECT count(*) FROM outbox WHERE channel = 'sms') AS sms_outbox,
             (SELECT count(*) FROM outbox WHERE channel = 'whatsapp') AS whatsapp_outbox,
             (SELECT count(*) FROM messages WHERE channel = 'sms' AND provider = $1)
               AS sms_accepted,
             (SELECT count(*) FROM messages WHERE channel = 'whatsapp' AND provider IS NOT NULL)
               AS whatsapp_accepted""",
        _SMS,
    )
    assert row is not None
    return dict(row)


def _timeout(messages: int) -> float:
    return 60 + messages / 100  # far beyond any plausible run: a stall fails loudly


async def _throughput(
    wiring: _Wiring,
    session: aiohttp.ClientSession,
    fakes: dict[str, Any],
    customers: list[uuid.UUID],
    config: DispatchConfig,
) -> dict[str, Any]:
    sms_fake = fakes["fakes"][_SMS]
    twilio = next(p for p in fakes["providers"] if p["name"] == _SMS)
    concurrency = config.max_concurrency
    await _raw_posts(twilio, config.warmup_posts, concurrency)
    await _queue(wiring, customers, config.warmup_posts, Channel.SMS, config.request_workers)
    await _dispatch(wiring, config.warmup_posts, give_up_after=_timeout(config.warmup_posts))
    await _control(session, sms_fake, "reset")  # the checks below count from here
    before = await _counts(wiring.pool)

    per_round = config.messages // config.rounds
    raw_rates, dispatch_rates, queue_rates = [], [], []
    received = duplicates = 0
    for _ in range(config.rounds):
        raw_rates.append(await _raw_posts(twilio, per_round, concurrency))
        raw_stats = await _control(session, sms_fake, "stats")
        if raw_stats["received"] != per_round:
            raise RuntimeError(f"the fake recorded {raw_stats['received']} of {per_round} posts")
        await _control(session, sms_fake, "reset")
        queue_rates.append(
            await _queue(wiring, customers, per_round, Channel.SMS, config.request_workers)
        )
        dispatch_rates.append(await _dispatch(wiring, per_round, give_up_after=_timeout(per_round)))
        stats = await _control(session, sms_fake, "stats")
        received += stats["received"]
        duplicates += stats["duplicates"]
        await _control(session, sms_fake, "reset")
    after = await _counts(wiring.pool)
    dispatched = sum(dispatch_rates) / len(dispatch_rates)
    raw = sum(raw_rates) / len(raw_rates)
    ratio = dispatched / raw
    return {
        "messages": per_round * config.rounds,
        "rounds": config.rounds,
        "customers": len(customers),
        "request": "RequestMessage(customer_id, SendRequest(team='bench', "
        "purpose=Purpose.TRANSACTIONAL, channels=(Channel.SMS,)), "
        "content=MessageContent(inline=Content(body=...)))",
        "dispatcher": "Dispatcher(DispatchMessages over PostgresUnitsOfWork, list(Channel)): "
        "lane_capacity 256, batch 200, as `chorus serve` makes it",
        "provider": "twilio adapter behind GuardedProvider, to the fake Twilio in its own process",
        "max_concurrency": concurrency,
        "baseline": "aiohttp session posting the same Twilio form straight to the fake, "
        f"{concurrency} in flight, answer's JSON read; no database",
        "dispatched_messages_per_s": round(dispatched, 1),
        "raw_posts_per_s": round(raw, 1),
        "raw_ratio": round(ratio, 3),
        "rounds_dispatched_messages_per_s": [round(r, 1) for r in dispatch_rates],
        "rounds_raw_posts_per_s": [round(r, 1) for r in raw_rates],
        "queued_requests_per_s": round(sum(queue_rates) / len(queue_rates), 1),
        "target_messages_per_s": TARGET_MESSAGES_PER_S,
        "meets_target": dispatched >= TARGET_MESSAGES_PER_S,
        "checks": {
            "fake_received": received,
            "fake_duplicates": duplicates,
            "sms_outbox_left": after["sms_outbox"],
            "sms_accepted_recorded": after["sms_accepted"] - before["sms_accepted"],
        },
    }


async def _isolation_pass(
    dsn: str,
    providers: list[dict[str, Any]],
    session: aiohttp.ClientSession,
    fakes: dict[str, Any],
    customers: list[uuid.UUID],
    config: DispatchConfig,
    *,
    hang: float | None,
) -> dict[str, Any]:
    """One pass on a freshly wired service (breakers closed): SMS alone, or with a WhatsApp
    backlog queued while the WhatsApp fake hangs for `hang` seconds."""
    sms_fake, whatsapp_fake = fakes["fakes"][_SMS], fakes["fakes"][_WHATSAPP]
    count, workers = config.isolation_messages, config.request_workers
    await _control(session, sms_fake, "reset")
    await _control(session, whatsapp_fake, "reset")
    async with _service(dsn, providers) as wiring:
        try:
            if hang is not None:
                await _control(session, whatsapp_fake, "hang", {"seconds": hang, "accept": False})
                await _queue(wiring, customers, config.hung_messages, Channel.WHATSAPP, workers)
            await _queue(wiring, customers, count, Channel.SMS, workers)
            rate = await _dispatch(wiring, count, give_up_after=_timeout(count))
            whatsapp = wiring.directory.get(_WHATSAPP)
            assert whatsapp is not None
            guard = whatsapp.stats
            counts = await _counts(wiring.pool)
            sms_stats = await _control(session, sms_fake, "stats")
            # The backlog would go out in the next pass once the fake answers again: gone.
            await wiring.pool.execute("DELETE FROM outbox WHERE channel = 'whatsapp'")
        finally:
            await _control(session, whatsapp_fake, "reset")
    return {
        "sms_messages_per_s": round(rate, 1),
        "sms_received": sms_stats["received"],
        "sms_duplicates": sms_stats["duplicates"],
        "sms_outbox_left": counts["sms_outbox"],
        "whatsapp_accepted": counts["whatsapp_accepted"],
        "whatsapp_outbox_left": counts["whatsapp_outbox"],
        "whatsapp_guard": {
            "breaker": str(guard.breaker),
            "failed": guard.failed,
            "timed_out": guard.timed_out,
            "short_circuited": guard.short_circuited,
        },
    }


async def _isolation(
    dsn: str,
    providers: list[dict[str, Any]],
    session: aiohttp.ClientSession,
    fakes: dict[str, Any],
    customers: list[uuid.UUID],
    config: DispatchConfig,
) -> dict[str, Any]:
    """Passes alone and with the hang, in the order A B B A ..., so that drift hits both alike."""
    hang = 10 * _timeout(config.isolation_messages)  # longer than a pass
    alone: list[dict[str, Any]] = []
    hung: list[dict[str, Any]] = []
    for round_ in range(config.isolation_rounds):
        order = (False, True) if round_ % 2 == 0 else (True, False)
        for hanging in order:
            done = await _isolation_pass(
                dsn,
                providers,
                session,
                fakes,
                customers,
                config,
                hang=hang if hanging else None,
            )
            (hung if hanging else alone).append(done)
    alone_rate = sum(p["sms_messages_per_s"] for p in alone) / len(alone)
    hung_rate = sum(p["sms_messages_per_s"] for p in hung) / len(hung)
    ratio = hung_rate / alone_rate
    return {
        "sms_messages": config.isolation_messages,
        "whatsapp_backlog": config.hung_messages,
        "rounds": config.isolation_rounds,
        "order": "alone, hanging, hanging, alone, ...; each pass on a freshly wired service",
        "whatsapp_fake": f"/_fake/hang {{seconds: {hang:.0f}, accept: false}}",
        "whatsapp_timeout_seconds": config.hung_timeout_seconds,
        "whatsapp_breaker": "failure_threshold 5, reset_seconds 30 (the defaults)",
        "sms_alone_messages_per_s": round(alone_rate, 1),
        "sms_while_whatsapp_hangs_messages_per_s": round(hung_rate, 1),
        "isolation_ratio": round(ratio, 3),
        "target_ratio": TARGET_ISOLATION_RATIO,
        "meets_target": ratio >= TARGET_ISOLATION_RATIO,
        "passes_alone": alone,
        "passes_while_whatsapp_hangs": hung,
    }


async def run_dispatch(dsn: str, config: DispatchConfig) -> dict[str, Any]:
    """Both figures on the database `dsn`, against fakes in a process of their own."""
    with (
        _fakes_process() as fakes,
        tempfile.TemporaryDirectory(prefix="chorus-bench-dispatch-") as tmp,
        _service_logs(Path(tmp) / "service.log"),
    ):
        providers = _providers(fakes, config)
        async with aiohttp.ClientSession() as session:
            async with _service(dsn, providers) as wiring:
                customers = await _customers(wiring, config.customers)
                throughput = await _throughput(wiring, session, fakes, customers, config)
            isolation = await _isolation(dsn, providers, session, fakes, customers, config)
    return {
        "benchmark": "dispatch",
        "meets_target": throughput["meets_target"] and isolation["meets_target"],
        "config": asdict(config),
        "fakes": f"python -m adapters.providers.fakes --fakes {_SMS},{_WHATSAPP} "
        "(a process of its own; no status webhooks)",
        "service_logs": "JSON lines at level info, as `chorus serve` writes them, to a file",
        "throughput": throughput,
        "isolation": isolation,
    }
