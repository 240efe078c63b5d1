"""The running service: HTTP API, NATS consumers and schedulers in one process, the projection
worker in another, stopped cleanly together."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

import nats
import structlog
import uvicorn

from adapters.postgres.campaign_enrollments import EnrollmentTimers
from adapters.postgres.campaign_schedules import ScheduleTimers
from adapters.postgres.segment_evaluator import SegmentTimers
from adapters.postgres.sla_timers import SlaTimerRuns
from application.conversations.lifecycle import WakeSnoozedConversations
from application.customer.signals import AcceptSignals
from application.delivery.dispatch import DispatchMessages
from application.delivery.fall_back import FallBackDue
from application.delivery.webhooks import ApplyParkedStatuses
from application.messages.redecide_due import RedecideDueMessages
from application.messages.request_message import RequestMessage
from application.queries.customers import CustomerQueries
from application.queries.decisions import DecisionQueries
from domain.customer.identities import IdentityNormalizer
from domain.policy.vocabulary import Channel
from domain.signals.document import SignalReader
from entrypoints.conversation_commands import ConversationDesk
from entrypoints.heap import settle_heap
from entrypoints.http.app import create_app
from entrypoints.http.rate_limits import limiter_from
from entrypoints.http.server_protocol import ProblemHttpProtocol
from entrypoints.ioc import make_container
from entrypoints.projection_worker import (
    BellRelay,
    Followers,
    ProjectionProcess,
    commits_subject,
)
from entrypoints.provider_record import record_provider_configuration
from entrypoints.workers.bell import CommitBell, OutboxBell
from entrypoints.workers.command_responder import SendCommandResponder
from entrypoints.workers.conversation_responder import ConversationCommandResponder
from entrypoints.workers.dispatcher import Dispatcher
from entrypoints.workers.parked_statuses import TracedParkedStatuses
from entrypoints.workers.scheduler import DueWorkScheduler
from entrypoints.workers.signal_consumer import SignalConsumer
from ports.api_keys import ApiKeyStore
from ports.clock import Clock
from ports.providers import ProviderDirectory
from ports.staff import StaffDirectory

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from dishka import AsyncContainer

    from entrypoints.settings import Settings

__all__ = ["GRACEFUL_SHUTDOWN_SECONDS", "run_service"]

log = structlog.get_logger("chorus")

GRACEFUL_SHUTDOWN_SECONDS = 5
"""How long a stop waits for the requests under way (a live stream waits for its client)."""


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
        list(Channel),
        bell=await container.get(OutboxBell),
    )


async def run_service(
    settings: Settings, *, on_ready: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Serves until SIGINT/SIGTERM, then drains consumers and closes connections."""
    container = make_container(settings)
    nc = await nats.connect(settings.nats_url or "nats://127.0.0.1:4222", name="chorus")
    # One limiter for HTTP and NATS: a key's requests and messages share its budget (ADR 0022).
    limiter = limiter_from(settings)
    keys = await container.get(ApiKeyStore)
    clock = await container.get(Clock)
    consumer = SignalConsumer(
        nc.jetstream(),
        await container.get(AcceptSignals),
        await container.get(SignalReader),
        stream_name=settings.signal_stream,
        subjects=f"{settings.nats_prefix}.signals.>",
        dead_letter_stream=settings.dead_letter_stream,
        dead_letter_subjects=f"{settings.nats_prefix}.dlq.>",
        dead_letter_subject=f"{settings.nats_prefix}.dlq.signals",
        keys=keys,
        clock=clock,
        limiter=limiter,
        require_key=settings.nats_require_key,
    )
    scheduler = DueWorkScheduler(await container.get(RedecideDueMessages), name="scheduler")
    fallbacks = DueWorkScheduler(await container.get(FallBackDue), name="fallbacks")
    segment_timers = DueWorkScheduler(
        await container.get(SegmentTimers), name="segment_timers", poll_every=1.0, batch=500
    )
    enrollment_timers = DueWorkScheduler(
        await container.get(EnrollmentTimers), name="enrollment_timers", poll_every=1.0, batch=500
    )
    schedule_timers = DueWorkScheduler(
        await container.get(ScheduleTimers), name="schedule_timers", poll_every=1.0, batch=10
    )
    sla_timers = DueWorkScheduler(
        await container.get(SlaTimerRuns), name="sla_timers", poll_every=1.0, batch=200
    )
    parked = DueWorkScheduler(
        TracedParkedStatuses(await container.get(ApplyParkedStatuses)),
        name="parked_statuses",
        poll_every=0.2,
    )
    responder = SendCommandResponder(
        nc,
        await container.get(RequestMessage),
        await container.get(DecisionQueries),
        await container.get(CustomerQueries),
        await container.get(IdentityNormalizer),
        keys=keys,
        clock=clock,
        require_key=settings.nats_require_key,
        limiter=limiter,
        prefix=settings.nats_prefix,
    )
    snoozes = DueWorkScheduler(
        await container.get(WakeSnoozedConversations), name="snooze_timers", poll_every=1.0
    )
    conversation_responder = ConversationCommandResponder(
        nc,
        await container.get(ConversationDesk),
        await container.get(StaffDirectory),
        keys=keys,
        clock=clock,
        limiter=limiter,
        require_key=settings.nats_require_key,
        prefix=settings.nats_prefix,
    )
    workers: dict[str, object] = {
        "signal_consumer": consumer,
        "scheduler": scheduler,
        "fallbacks": fallbacks,
        "parked_statuses": parked,
        "segment_timers": segment_timers,
        "enrollment_timers": enrollment_timers,
        "schedule_timers": schedule_timers,
        "sla_timers": sla_timers,
        "send_responder": responder,
        "conversation_responder": conversation_responder,
        "snooze_timers": snoozes,
    }
    dispatcher = await _dispatcher(container) if settings.dispatch else None
    await record_provider_configuration(container, settings)
    if dispatcher is not None:
        workers["dispatcher"] = dispatcher
    # Commits here wake the projection worker, wherever it runs.
    (await container.get(CommitBell)).listen(BellRelay(nc, commits_subject(settings)))
    projections: ProjectionProcess | Followers | None = None
    if settings.projections:
        # Attribution, read models, triggers and outbound events (see projection_worker), in
        # a process of their own; in this one with the manual clock, which they must share.
        projections = (
            Followers(container, nc, settings)
            if settings.clock == "manual"
            else ProjectionProcess(settings)
        )
        workers["projections"] = projections
    try:
        await consumer.start()
        await scheduler.start()
        await fallbacks.start()
        await parked.start()
        await segment_timers.start()
        await enrollment_timers.start()
        await schedule_timers.start()
        await sla_timers.start()
        await responder.start()
        await conversation_responder.start()
        await snoozes.start()
        if dispatcher is not None:
            await dispatcher.start()
        if projections is not None:
            await projections.start()
        app = create_app(container, settings, nats=nc, workers=workers, limiter=limiter)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            http=ProblemHttpProtocol,  # its own refusals (a 100 KB query string) as problems
            # Stopping waits this long for requests under way; then what is still running (a
            # live stream whose client stays) is cancelled, so a stop never hangs on a client.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
        server = _Server(config)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, setattr, server, "should_exit", True)
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110 (uvicorn has no started event)
            await asyncio.sleep(0.05)
        if server.started:
            settle_heap()
            log.info("serving", url=f"http://{settings.host}:{settings.port}")
            if on_ready is not None:
                await on_ready()
        await serving
    finally:
        log.info("stopping")
        with contextlib.suppress(Exception):
            await consumer.stop()
        if dispatcher is not None:
            with contextlib.suppress(Exception):
                await dispatcher.stop()
        with contextlib.suppress(Exception):
            await responder.stop()
        with contextlib.suppress(Exception):
            await conversation_responder.stop()
        with contextlib.suppress(Exception):
            await snoozes.stop()
        with contextlib.suppress(Exception):
            await scheduler.stop()
        with contextlib.suppress(Exception):
            await fallbacks.stop()
        with contextlib.suppress(Exception):
            await parked.stop()
        with contextlib.suppress(Exception):
            await segment_timers.stop()
        with contextlib.suppress(Exception):
            await enrollment_timers.stop()
        with contextlib.suppress(Exception):
            await schedule_timers.stop()
        with contextlib.suppress(Exception):
            await sla_timers.stop()
        if projections is not None:  # last: it follows what the others committed
            log.info("stopping the projections")
            with contextlib.suppress(Exception):
                await projections.stop()
        with contextlib.suppress(Exception):
            await nc.drain()
        await container.close()
        log.info("stopped")
