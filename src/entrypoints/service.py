"""The running service: HTTP API and NATS consumers in one process, stopped cleanly together."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

import asyncpg
import nats
import structlog
import uvicorn

from adapters.nats.publisher import JetStreamPublisher, ensure_stream
from adapters.postgres.projections import ProjectionRunner
from adapters.postgres.segment_evaluator import SegmentTimers
from application.customer.ingest_signals import IngestSignals
from application.delivery.dispatch import DispatchMessages
from application.delivery.fall_back import FallBackDue
from application.delivery.webhooks import ApplyParkedStatuses
from application.messages.redecide_due import RedecideDueMessages
from application.messages.request_message import RequestMessage
from application.outbound.publish_events import OutboundEvents
from application.queries.customers import CustomerQueries
from application.queries.decisions import DecisionQueries
from domain.customer.identities import IdentityNormalizer
from domain.policy.vocabulary import Channel
from entrypoints.http.app import create_app
from entrypoints.ioc import make_container
from entrypoints.signal_schema import SignalMapper
from entrypoints.workers.bell import CommitBell, OutboxBell
from entrypoints.workers.command_responder import SendCommandResponder
from entrypoints.workers.dispatcher import Dispatcher
from entrypoints.workers.projector import Projector
from entrypoints.workers.scheduler import DueWorkScheduler
from entrypoints.workers.signal_consumer import SignalConsumer
from ports.delivery import DeliveryStore
from ports.providers import ProviderDirectory

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from dishka import AsyncContainer
    from nats.aio.client import Client as NATS

    from entrypoints.settings import Settings

__all__ = ["run_service"]

log = structlog.get_logger("chorus")


class _Server(uvicorn.Server):
    """Leaves signals to run_service, which stops consumers and connections after HTTP."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _dispatcher(container: AsyncContainer) -> Dispatcher:
    """One lane per channel; a channel without a provider fails its messages after retries."""
    providers = await container.get(ProviderDirectory)
    missing = [channel.value for channel in Channel if not providers.for_channel(channel)]
    if missing:
        log.warning("channels without a provider", channels=missing)
    return Dispatcher(
        await container.get(DispatchMessages),
        await container.get(DeliveryStore),
        list(Channel),
        bell=await container.get(OutboxBell),
    )


_TRIGGER_SIDE = ("triggers", "trigger_firings")


def _split(everything: ProjectionRunner) -> tuple[ProjectionRunner, ProjectionRunner]:
    """The read models, and the trigger matcher on a runner of its own: a signal must not wait
    behind a round of every read model to fire its triggers (p99 at 1,000 signals/s)."""
    projections = everything.projections
    read_side = [p for name, p in projections.items() if name not in _TRIGGER_SIDE]
    triggers = [projections[name] for name in _TRIGGER_SIDE]
    return (
        ProjectionRunner(everything.pool, read_side, everything.store),
        ProjectionRunner(everything.pool, triggers, everything.store),
    )


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def call() -> None:
        first()
        second()

    return call


async def _outbound_runner(
    container: AsyncContainer, nc: NATS, settings: Settings
) -> ProjectionRunner:
    """Its own runner: while NATS is away its publishes wait out their timeout, which must
    not hold the read models back."""
    js = nc.jetstream()
    await ensure_stream(js, settings.outbound_stream, f"{settings.nats_prefix}.out.>")
    publisher = JetStreamPublisher(js, stream=settings.outbound_stream)
    return ProjectionRunner(
        await container.get(asyncpg.Pool),
        [OutboundEvents(publisher, prefix=settings.nats_prefix)],
    )


async def run_service(
    settings: Settings, *, on_ready: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Serves until SIGINT/SIGTERM, then drains consumers and closes connections."""
    container = make_container(settings)
    nc = await nats.connect(settings.nats_url or "nats://127.0.0.1:4222", name="chorus")
    consumer = SignalConsumer(
        nc.jetstream(),
        await container.get(IngestSignals),
        await container.get(SignalMapper),
        stream_name=settings.signal_stream,
        subjects=f"{settings.nats_prefix}.signals.>",
        dead_letter_stream=settings.dead_letter_stream,
        dead_letter_subjects=f"{settings.nats_prefix}.dlq.>",
        dead_letter_subject=f"{settings.nats_prefix}.dlq.signals",
    )
    scheduler = DueWorkScheduler(await container.get(RedecideDueMessages), name="scheduler")
    fallbacks = DueWorkScheduler(await container.get(FallBackDue), name="fallbacks")
    segment_timers = DueWorkScheduler(
        await container.get(SegmentTimers), name="segment_timers", poll_every=1.0, batch=500
    )
    parked = DueWorkScheduler(
        await container.get(ApplyParkedStatuses), name="parked_statuses", poll_every=0.2
    )
    responder = SendCommandResponder(
        nc,
        await container.get(RequestMessage),
        await container.get(DecisionQueries),
        await container.get(CustomerQueries),
        await container.get(IdentityNormalizer),
        prefix=settings.nats_prefix,
    )
    workers: dict[str, object] = {
        "signal_consumer": consumer,
        "scheduler": scheduler,
        "fallbacks": fallbacks,
        "parked_statuses": parked,
        "segment_timers": segment_timers,
        "send_responder": responder,
    }
    dispatcher = await _dispatcher(container) if settings.dispatch else None
    if dispatcher is not None:
        workers["dispatcher"] = dispatcher
    bell = await container.get(CommitBell)
    outbound = Projector(await _outbound_runner(container, nc, settings), bell)
    workers["outbound_events"] = outbound
    projector = matcher = None
    if settings.projections:
        read_side, triggers = _split(await container.get(ProjectionRunner))
        read_side.on_applied = _both(triggers.wake, outbound.runner.wake)
        triggers.on_applied = outbound.runner.wake  # entries, exits and firings go out at once
        projector = Projector(read_side, bell)
        matcher = Projector(triggers, bell)
        workers["projections"] = projector
        workers["triggers"] = matcher
    try:
        await consumer.start()
        await scheduler.start()
        await fallbacks.start()
        await parked.start()
        await segment_timers.start()
        await responder.start()
        if dispatcher is not None:
            await dispatcher.start()
        if projector is not None and matcher is not None:
            await projector.start()
            await matcher.start()
        await outbound.start()
        app = create_app(container, settings, nats=nc, workers=workers)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        server = _Server(config)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, setattr, server, "should_exit", True)
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110 (uvicorn has no started event)
            await asyncio.sleep(0.05)
        if server.started:
            log.info("serving", url=f"http://{settings.host}:{settings.port}")
            if on_ready is not None:
                await on_ready()
        await serving
    finally:
        for follower in (projector, matcher, outbound):
            if follower is not None:
                with contextlib.suppress(Exception):
                    await follower.stop()
        if dispatcher is not None:
            with contextlib.suppress(Exception):
                await dispatcher.stop()
        with contextlib.suppress(Exception):
            await responder.stop()
        with contextlib.suppress(Exception):
            await scheduler.stop()
        with contextlib.suppress(Exception):
            await fallbacks.stop()
        with contextlib.suppress(Exception):
            await parked.stop()
        with contextlib.suppress(Exception):
            await segment_timers.stop()
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await nc.drain()
        await container.close()
        log.info("stopped")
