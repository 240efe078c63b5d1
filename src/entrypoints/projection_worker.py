"""The projection worker: signal attribution, the read models, the trigger matcher and the
outbound publisher follow the event log in a process of their own, beside the API.

Intake answers as soon as signals are committed; everything derived from them is work for this
process. It runs at a lower CPU priority (nice 10), so on a busy machine producers' requests are
answered first and the derived state catches up behind them; on an idle one it has a core to
itself. Commits made in other processes reach it over NATS (`<prefix>.internal.commits`), its own
through the in-process bell, each with the topics it wrote: a lane reads when a commit wrote one
of its topics, and otherwise polls the log every 0.1 s, so a commit no bell told of is read too.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from typing import TYPE_CHECKING

import nats
import nats.errors
import nats.js.errors
import structlog

from adapters.nats.publisher import JetStreamPublisher, ensure_stream
from entrypoints import event_loop
from entrypoints.heap import settle_heap
from entrypoints.ioc import make_container, with_bus
from entrypoints.logs import configure_logging
from entrypoints.metrics_directory import forget_process
from entrypoints.pipeline import lane_runners
from entrypoints.tracing import configure_tracing
from entrypoints.workers.bell import CommitBell, Written
from entrypoints.workers.projector import Projector

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.process import BaseProcess
    from multiprocessing.synchronize import Event as EventType

    from dishka import AsyncContainer
    from nats.aio.client import Client as NATS
    from nats.aio.msg import Msg

    from entrypoints.settings import Settings

__all__ = [
    "BellRelay",
    "Followers",
    "ProjectionProcess",
    "bus",
    "commits_subject",
    "follow_log",
    "written_in",
]

log = structlog.get_logger("chorus.projections")
WORKER_NICENESS = 10


def commits_subject(settings: Settings) -> str:
    return f"{settings.nats_prefix}.internal.commits"


async def bus(nc: NATS, settings: Settings) -> JetStreamPublisher:
    """The outbound stream's publisher, the stream made if it is missing."""
    js = nc.jetstream()
    await ensure_stream(js, settings.outbound_stream, f"{settings.nats_prefix}.out.>")
    return JetStreamPublisher(js, stream=settings.outbound_stream)


class Followers:
    """Every lane of the pipeline on a runner of its own (see `entrypoints.pipeline`)."""

    def __init__(self, container: AsyncContainer, nc: NATS, settings: Settings) -> None:
        self.container = container
        self.nc = nc
        self.settings = settings
        self.projectors: list[Projector] = []
        self._stack = contextlib.AsyncExitStack()  # the container with the bus, while started

    @property
    def running(self) -> bool:
        return bool(self.projectors) and all(p.running for p in self.projectors)

    @property
    def problem(self) -> str | None:
        """What keeps a projection from moving, for /ready's detail (which reads failing and
        parked projections from the database, wherever they run)."""
        found = [p.problem for p in self.projectors if p.problem]
        return "; ".join(found) or None

    async def start(self) -> None:
        container, nc, settings = self.container, self.nc, self.settings
        bell = await container.get(CommitBell)
        scoped = await self._stack.enter_async_context(with_bus(container, await bus(nc, settings)))
        runners = await lane_runners(scoped, settings.projection_attempts)
        self.projectors = [Projector(runner, bell) for runner in runners.values()]

        async def rang(msg: Msg) -> None:
            # Not `bell.ring()`: in the service's own process the bell also relays commits
            # over NATS, and ringing it from what NATS relayed would relay it again, forever.
            topics = written_in(msg.data)
            for projector in self.projectors:
                projector.runner.wake(topics)

        await nc.subscribe(commits_subject(settings), cb=rang)
        for projector in self.projectors:
            await projector.start()
        log.info("following the event log", projections=_names(self.projectors))

    async def stop(self) -> None:
        for projector in self.projectors:
            with contextlib.suppress(Exception):
                await projector.stop()
        with contextlib.suppress(Exception):
            await self._stack.aclose()


async def follow_log(
    settings: Settings, stop: asyncio.Event, on_following: Callable[[], None] | None = None
) -> None:
    """Follows the log with every projection and the outbound publisher until `stop`."""
    container = make_container(settings)
    nc = await nats.connect(settings.nats_url or "nats://127.0.0.1:4222", name="chorus-worker")
    followers = Followers(container, nc, settings)
    try:
        await followers.start()
        settle_heap()
        if on_following is not None:
            on_following()
        await stop.wait()
    finally:
        await followers.stop()
        with contextlib.suppress(Exception):
            await nc.drain()
        await container.close()


def _names(followers: list[Projector]) -> list[str]:
    return [name for follower in followers for name in follower.runner.projections]


async def _until_stopped(settings: Settings, parent: int, following: EventType) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async def orphaned() -> None:
        # Killed with -9, the API cannot stop us: a worker outliving it would keep going.
        while os.getppid() == parent:  # noqa: ASYNC110 (no event tells of a parent gone)
            await asyncio.sleep(0.5)
        log.warning("the service process is gone; stopping")
        stop.set()

    watch = asyncio.create_task(orphaned())
    try:
        await follow_log(settings, stop, following.set)
    finally:
        watch.cancel()


def _main(settings: Settings, parent: int, following: EventType) -> None:
    os.nice(WORKER_NICENESS)
    configure_logging(settings.log_level)
    configure_tracing("chorus-projections")
    event_loop.run(_until_stopped(settings, parent, following))


class ProjectionProcess:
    """The worker process as `chorus serve` runs it: started with it, stopped with it."""

    def __init__(self, settings: Settings, restart_after: float = 1.0) -> None:
        self.settings = settings
        self.restart_after = restart_after
        self._process: BaseProcess | None = None
        self._following: EventType | None = None
        self._watch: asyncio.Task[None] | None = None
        self._exits = 0

    @property
    def running(self) -> bool:
        """Up and following the log (so /ready waits for its start-up, ~1-2 s)."""
        return (
            self._process is not None
            and self._process.is_alive()
            and self._following is not None
            and self._following.is_set()
        )

    @property
    def problem(self) -> str | None:
        if self._exits:
            return f"the projection worker exited {self._exits} time(s) and was restarted"
        return None

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._following = context.Event()
        self._process = context.Process(
            target=_main,
            args=(self.settings, os.getpid(), self._following),
            name="chorus-projections",
            daemon=True,
        )
        self._process.start()

    async def start(self) -> None:
        self._spawn()
        self._watch = asyncio.create_task(self._supervise(), name="projection-worker-watch")

    async def _supervise(self) -> None:
        """Starts the worker again when it dies (a crash, the database away at its start)."""
        while True:
            await asyncio.sleep(self.restart_after)
            process = self._process
            if process is not None and not process.is_alive():
                self._exits += 1
                log.error("projection worker exited; restarting", exitcode=process.exitcode)
                if process.pid is not None:
                    forget_process(process.pid)
                self._spawn()

    async def stop(self, grace: float = 10.0) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        process, self._process = self._process, None
        if process is None or not process.is_alive():
            return
        process.terminate()
        await asyncio.to_thread(process.join, grace)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, 5.0)
        if process.pid is not None:
            forget_process(process.pid)


class BellRelay:
    """Rings the worker's bell over NATS after commits here, once per loop turn at most, with
    the topics those commits wrote (one a line; none: topics unknown)."""

    def __init__(self, nc: NATS, subject: str) -> None:
        self.nc = nc
        self.subject = subject
        self._pending = False
        self._topics: set[str] | None = set()

    def __call__(self, topics: Written = None) -> None:
        if self._topics is not None:
            if topics is None:
                self._topics = None
            else:
                self._topics.update(topics)
        if self._pending:
            return
        self._pending = True
        asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        topics, self._topics = self._topics, set()
        self._pending = False
        data = b"" if topics is None else "\n".join(sorted(topics)).encode()
        task = asyncio.ensure_future(self.nc.publish(self.subject, data))
        task.add_done_callback(_quiet)


def written_in(data: bytes) -> Written:
    """The topics a relayed commit wrote (None: unknown, as from a relay that sent none)."""
    return frozenset(data.decode().split("\n")) if data else None


def _quiet(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("commit bell not relayed", error=repr(task.exception()))
