"""Everything that follows the event log, in one declarative list.

The projection worker runs each lane on a runner of its own; `chorus projections` (status,
rebuild, retry, skip) reads the same list. A new read model or process is one line here and
one provider in `ioc.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from adapters.nats.outages import is_bus_outage
from adapters.postgres.campaign_stats import CampaignStatsProjection
from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.enrollments import EnrollmentListing
from adapters.postgres.inbox import InboxListing
from adapters.postgres.process_ports import ProcessPortsOn
from adapters.postgres.processes import ProcessProjection
from adapters.postgres.projections import PositionsAhead, ProjectionRunner, is_outage
from adapters.postgres.reply_statuses import ReplyStatusProjection
from adapters.postgres.segments import SegmentMembers
from adapters.postgres.signal_activity import SignalActivity
from adapters.postgres.sla_timers import SlaTimerProjection
from adapters.postgres.triggers import TriggerFirings
from application.customer.signals import AttributeSignals
from application.processes.campaign_enrollments import CampaignEnrollments
from application.processes.conversation_threads import ConversationThreads
from application.processes.outbound_events import OutboundEvents
from application.processes.segment_evaluator import SegmentEvaluator
from application.processes.trigger_matcher import TriggerMatcher
from entrypoints.workers.giving_way import GivingWay

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from dishka import AsyncContainer

    from entrypoints.workers.bell import Written
    from ports.projections import Projection

__all__ = ["LANES", "RECORD_EVERY", "UNHURRIED", "Lane", "every_projection", "lane_runners"]

RECORD_EVERY = 1.0
"""Seconds between records of a lane's position moved past other topics' events only; in
between, the lanes of the worker know where it got (`PositionsAhead`)."""
UNHURRIED = 0.05
"""Seconds a wake waits in a lane no one waits on within milliseconds (journeys, NATS events,
SLA timers, stats, replies' statuses): on a busy log it reads a few big pages a second rather
than one small page a commit, each a transaction and a round of queries, and leaves the CPU
to the lanes an inbound message waits on."""


@dataclass(frozen=True, slots=True)
class Lane:
    """Projections and processes one runner applies in order, page by page; lanes run side
    by side. A process runs as a projection, its ports bound to the runner's transaction."""

    name: str
    members: tuple[type[Any], ...]
    # How long a wake waits for more commits, so a burst is read as one page.
    settle: float = 0.005
    # Lanes that read what this one records, woken after each page it applies.
    wakes: tuple[str, ...] = ()
    # Errors that hold the lane up for as long as they last, parking nothing.
    outage: Callable[[BaseException], bool] = is_outage
    # Lanes whose backlog this one waits out, for a while, before each page (see GivingWay).
    gives_way_to: tuple[str, ...] = ()


LANES: tuple[Lane, ...] = (
    # Alone and quick to wake: a signal must not wait behind a round of every read model to
    # reach its customer (trigger p99 at 1,000 signals/s).
    Lane("attribution", (AttributeSignals,), settle=0.001),
    # The evaluator reads the directory and the signal activity before it; the members read
    # model follows what the evaluator records.
    # The lanes after it read what it records: after a burst, they let it go first.
    Lane(
        "read_models",
        (CustomerDirectory, SignalActivity, SegmentEvaluator, SegmentMembers),
        wakes=("triggers", "campaigns", "outbound"),
        gives_way_to=("attribution",),
    ),
    # Signals and the entries and exits the evaluator records are matched in the same round;
    # the firings read model follows what the matcher records.
    Lane(
        "triggers",
        (TriggerMatcher, TriggerFirings),
        settle=0.001,
        wakes=("outbound",),
        gives_way_to=("attribution",),
    ),
    # Journeys in a lane of their own: each send asks the rules and renders its template, which
    # must hold neither a trigger's firing (p99 50 ms) nor the read models; the process reads the
    # directory, signal activity and memberships the read models lane keeps (`follows`).
    Lane(
        "campaigns",
        (CampaignEnrollments, EnrollmentListing),
        settle=UNHURRIED,
        wakes=("outbound",),
        gives_way_to=("attribution",),
    ),
    # Inbound messages into threads, routed, and queues drained as capacity frees: each routing
    # reads the roster and commits on its own, which must hold up neither triggers nor journeys.
    Lane("conversations", (ConversationThreads,), gives_way_to=("attribution",)),
    # While NATS is away its publishes wait out their timeout: that must hold no other lane.
    Lane(
        "outbound",
        (OutboundEvents,),
        settle=UNHURRIED,
        outage=is_bus_outage,
        gives_way_to=("attribution",),
    ),
    # The campaign stats count what the enrollments record and what their messages cost: a
    # read model nothing else reads, so it holds no process up (in `campaigns`, it would wait
    # on every send's rules; in `read_models`, a busy campaign would hold up segments).
    Lane(
        "campaign_stats",
        (CampaignStatsProjection,),
        settle=UNHURRIED,
        gives_way_to=("attribution", "campaigns"),
    ),
    # The inbox alone and quick to wake: an inbound message must be visible in the inbox
    # stream within 250 ms (p99 at 200 messages/s); a lane that records conversation events
    # wakes it (and `sla`).
    Lane("inbox", (InboxListing,), settle=0.001, gives_way_to=("attribution",)),
    # SLA deadlines: a timer run takes this lane's turn while it records a breach, which must
    # hold no inbox page up.
    Lane("sla", (SlaTimerProjection,), settle=UNHURRIED, gives_way_to=("attribution",)),
    # Replies' statuses into their threads: it reads every message's progress (a broadcast's
    # too, undecoded), which must hold up neither the inbound messages' routing nor the inbox.
    Lane("replies", (ReplyStatusProjection,), settle=UNHURRIED, gives_way_to=("attribution",)),
)


async def _members(container: AsyncContainer, lane: Lane) -> list[Projection[Any]]:
    found: list[Projection[Any]] = []
    for member in lane.members:
        made = await container.get(member)
        if not hasattr(made, "apply"):  # a process, not a projection of its own
            ports = await container.get(ProcessPortsOn)
            made = ProcessProjection(made, ports, ports.store.codec)
        found.append(made)
    return found


async def lane_runners(container: AsyncContainer, attempts: int) -> dict[str, ProjectionRunner]:
    """A runner for each lane, wired to wake the lanes that read what it records and those
    whose projections follow one of its own. `container` is one with the outbound bus in its
    context (see `ioc.with_bus`)."""
    pool = await container.get(asyncpg.Pool)
    ahead = PositionsAhead()
    runners = {
        lane.name: ProjectionRunner(
            pool,
            await _members(container, lane),
            settle=lane.settle,
            attempts=attempts,
            outage=lane.outage,
            record_every=RECORD_EVERY,
            ahead=ahead,
        )
        for lane in LANES
    }
    for lane in LANES:
        runner = runners[lane.name]
        woken = [runners[name].wake for name in lane.wakes]
        if woken:
            runner.on_applied = _telling(woken)
        followers = [other for other in runners.values() if _follows(other, runner)]
        if followers:
            # Woken by what its followers read too, so that it passes those events at once
            # and then wakes them: they read no further than it has got.
            read = (p.topics for f in followers for p in f.projections.values())
            runner.woken_by = runner.woken_by.union(*read)
            runner.on_moved = _calling([f.wake for f in followers])
        if lane.gives_way_to:
            runners[lane.name].before_page = GivingWay(
                _backlogged([runners[name] for name in lane.gives_way_to])
            )
    return runners


async def every_projection(
    container: AsyncContainer, attempts: int = 3, lanes: Iterable[Lane] = LANES
) -> ProjectionRunner:
    """One runner over every member of every lane, for the commands that look at or settle
    them by name; an outage of either server holds it up."""
    pool = await container.get(asyncpg.Pool)
    members = [member for lane in lanes for member in await _members(container, lane)]
    return ProjectionRunner(pool, members, attempts=attempts, outage=is_bus_outage)


def _follows(follower: ProjectionRunner, runner: ProjectionRunner) -> bool:
    """Whether a projection of another runner follows one of `runner`'s."""
    return follower is not runner and any(
        name in runner.projections
        for projection in follower.projections.values()
        for name in getattr(projection, "follows", ())
    )


def _backlogged(ahead: list[ProjectionRunner]) -> Callable[[], bool]:
    return lambda: any(runner.backlogged for runner in ahead)


def _telling(
    calls: Sequence[Callable[[Written], None]],
) -> Callable[[Written], None]:
    def tell(topics: Written) -> None:
        for each in calls:
            each(topics)

    return tell


def _calling(calls: Sequence[Callable[[], None]]) -> Callable[[], None]:
    def call() -> None:
        for each in calls:
            each()

    return call
