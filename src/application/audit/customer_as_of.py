"""A customer as Chorus knew them at an instant, replayed from their streams' events."""

from __future__ import annotations

import copy
import dataclasses
import gc
import hashlib
import inspect
import io
import marshal
import pickle
import pkgutil
import sys
from collections import OrderedDict, deque
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime  # views are rendered by their run-time type hints
from functools import cache
from importlib import import_module
from importlib.metadata import version as package_version
from types import ModuleType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import DecoratedFuncCaller, decorated_funcs

from application.audit.refusals import AuditQueryRefused
from domain.customer.aggregate import Customer
from domain.segments.aggregate import Membership
from domain.shared.errors import NotFound
from domain.shared.topics import events_of
from ports.audit import KeptReplay, Unopened

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from eventsourcing.domain import CanMutateAggregate

    from domain.customer.identities import Identity, IdentityClaim, Verification
    from ports.audit import AuditLog, CustomerHistory
    from ports.clock import Clock

__all__ = [
    "AuditedConsent",
    "AuditedIdentity",
    "AuditedMembership",
    "AuditedMerge",
    "AuditedSuppression",
    "Checkpoints",
    "CustomerAsOf",
    "CustomerAsOfView",
    "CustomerNotKnownAt",
    "replay_customer",
]


_EVENTS = events_of(Customer)
_REGISTERED = _EVENTS["Registered"]
_ABSORBED = _EVENTS["Absorbed"]
_MERGED_INTO = _EVENTS["MergedInto"]
_SUPPRESSION_ADDED = _EVENTS["SuppressionAdded"]
_SUPPRESSION_LIFTED = _EVENTS["SuppressionLifted"]
_IDENTITY_LINKED = _EVENTS["IdentityLinked"]


class CustomerNotKnownAt(NotFound):
    """No customer had that id at that instant: never, or not yet."""


@dataclass(frozen=True, slots=True)
class AuditedIdentity:
    type: str
    value: str
    verification: str
    since: datetime  # when it was linked at this level of verification


@dataclass(frozen=True, slots=True)
class AuditedConsent:
    """A consent with its proof: where it came from and when it was recorded."""

    channel: str
    purpose: str | None  # None: the whole channel (an opt-out such as STOP)
    granted: bool
    source: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AuditedSuppression:
    channel: str  # "*": every channel
    reason: str
    since: datetime


@dataclass(frozen=True, slots=True)
class AuditedMembership:
    segment_id: UUID
    segment_key: str
    segment_version: int
    entered_at: datetime


@dataclass(frozen=True, slots=True)
class AuditedMerge:
    """One side of a merge: the other customer, when, and why."""

    customer_id: UUID
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class CustomerAsOfView:
    id: UUID
    as_of: datetime
    version: int  # of the customer's stream at the instant, decisions counted
    created_at: datetime
    changed_at: datetime  # the last change to what this view shows
    profile: dict[str, str | None]
    attributes: dict[str, Any]
    effective_time_zone: str | None
    identities: list[AuditedIdentity]
    consents: list[AuditedConsent]
    suppressions: list[AuditedSuppression]
    segments: list[AuditedMembership]
    merged_into: AuditedMerge | None  # set once the customer was merged into a survivor
    absorbed: list[AuditedMerge]  # the customers merged into this one, oldest first
    # When the customer was erased, if they had been by the instant; and whether their personal
    # data is erased now (whatever the instant): then it reads `[erased]` at every instant.
    erased_at: datetime | None = None
    personal_data_erased: bool = False


@dataclass(slots=True)
class _Replay:
    """What the aggregate's state does not keep: when each fact began, and the merges."""

    identities: dict[Identity, tuple[Verification, datetime]]
    suppressed_since: dict[Any, datetime]
    absorbed: list[AuditedMerge]
    merged_into: AuditedMerge | None = None


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    """The replay as it stood after one version of the stream: the events up to there never
    change, so it holds for any instant at which the stream had reached that version."""

    version: int
    recorded_at: datetime  # of the event at `version`
    customer: Customer
    replay: _Replay
    erased: bool  # whether the customer was erased when it was kept: else it holds what is gone


class Checkpoints:
    """Replays kept in memory by customer, a few along each stream, least recently used
    customers forgotten first: a later instant replays from the nearest one before it."""

    def __init__(self, customers: int = 200, every: int = 500) -> None:
        self.customers = customers
        self.every = every
        self._kept: OrderedDict[UUID, list[_Checkpoint]] = OrderedDict()

    def before(self, customer_id: UUID, as_of: datetime) -> _Checkpoint | None:
        """The latest checkpoint whose event was recorded at or before `as_of` (a clock that
        went back can still make it too late: the caller checks it against the stream)."""
        kept = self._kept.get(customer_id)
        if not kept:
            return None
        self._kept.move_to_end(customer_id)
        usable = [c for c in kept if c.recorded_at <= as_of]
        return usable[-1] if usable else None

    def keep(self, customer_id: UUID, checkpoint: _Checkpoint) -> bool:
        """Keeps it; False when one at its version was kept already."""
        kept = self._kept.setdefault(customer_id, [])
        self._kept.move_to_end(customer_id)
        if any(c.version == checkpoint.version for c in kept):
            return False
        kept.append(checkpoint)
        kept.sort(key=lambda c: c.version)
        while len(self._kept) > self.customers:
            self._kept.popitem(last=False)
        return True


@cache
def replay_code() -> str:
    """Names the code that replays a customer: kept replays are read back only by the same
    code. Any change to the domain (the aggregate and every value it holds) or to this
    replay is another name."""
    versions = f"{sys.version_info[:2]} {package_version('eventsourcing')}"
    digest = hashlib.sha256(versions.encode())
    digest.update(_code_of(sys.modules[__name__]))
    domain = import_module("domain")
    for name in sorted(m.name for m in pkgutil.walk_packages(domain.__path__, "domain.")):
        digest.update(_code_of(import_module(name)))
    return digest.hexdigest()[:32]


def _code_of(module: ModuleType) -> bytes:
    """The module's source; its compiled code where it was installed without it."""
    try:
        return inspect.getsource(module).encode()
    except (OSError, TypeError):
        get_code = getattr(getattr(module.__spec__, "loader", None), "get_code", None)
        code = get_code(module.__name__) if get_code is not None else None
        return marshal.dumps(code) if code is not None else module.__name__.encode()


_KEPT_MODULES = ("domain.", "application.audit.", "eventsourcing.")
_KEPT_NAMES = {
    ("uuid", "UUID"),
    ("datetime", "datetime"),
    ("datetime", "timezone"),
    ("datetime", "timedelta"),
    ("collections", "deque"),
    ("collections", "OrderedDict"),
    ("copyreg", "_reconstructor"),
    ("copyreg", "__newobj__"),
    ("builtins", "object"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "getattr"),
    ("zoneinfo", "ZoneInfo"),
}


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Unopened):  # holds a reader and its keys: opened before it is kept
            raise TypeError("a value left sealed is opened before its replay is kept")
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith(_KEPT_MODULES) or (module, name) in _KEPT_NAMES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a kept replay")


def _kept(checkpoint: _Checkpoint) -> KeptReplay:
    """The checkpoint as the log keeps it, its values left sealed opened."""
    customer = _copied(checkpoint.customer)
    shown = _shown(customer.profile.as_dict())
    if shown != customer.profile.as_dict():
        customer.profile = dataclasses.replace(customer.profile, **shown)
    customer.attributes = _shown(customer.attributes)
    state = io.BytesIO()
    _Pickler(state, protocol=pickle.HIGHEST_PROTOCOL).dump((customer, checkpoint.replay))
    return KeptReplay(checkpoint.version, checkpoint.recorded_at, state.getvalue())


def _checkpoint(kept: KeptReplay) -> _Checkpoint | None:
    """The checkpoint kept; None when it does not read back as one (then the replay starts
    from the registration, as without it)."""
    try:
        customer, replay = _Unpickler(io.BytesIO(kept.state)).load()
    except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError, ValueError):
        return None
    if not isinstance(customer, Customer) or not isinstance(replay, _Replay):
        return None
    return _Checkpoint(kept.version, kept.recorded_at, customer, replay, erased=False)


_APPLIERS: dict[type, Callable[[Customer, Any], None]] = {}


def _applier(cls: type) -> Callable[[Customer, Any], None]:
    """How an event of `cls` changes a customer: the method its `@event` decorates, called with
    the event's fields it names, as `event.apply` calls it, without finding that method and
    those names again for each event (a third of the replay's time, else)."""
    func = decorated_funcs.get(cls)
    if func is None or getattr(cls, "apply", None) is not DecoratedFuncCaller.apply:

        def applied(customer: Customer, event: Any) -> None:
            event.apply(customer)

        return applied
    fields = {field.name for field in dataclasses.fields(cls)}
    names = tuple(name for name in inspect.signature(func).parameters if name in fields)

    def called(customer: Customer, event: Any) -> None:
        values = event.__dict__
        func(customer, **{name: values[name] for name in names})

    return called


def _copied(customer: Customer) -> Customer:
    """A copy with containers of its own and the values in them shared: every value the
    aggregate keeps in a container is immutable (frozen dataclasses, enums, text, numbers,
    times), so this is as good as a deep copy, at a fraction of its cost."""
    twin = copy.copy(customer)
    for name, value in vars(customer).items():
        if isinstance(value, (dict, list, set, deque)):
            setattr(twin, name, value.copy())
    return twin


def _copied_replay(replay: _Replay) -> _Replay:
    return _Replay(
        dict(replay.identities),
        dict(replay.suppressed_since),
        list(replay.absorbed),
        replay.merged_into,
    )


def replay_customer(
    history: CustomerHistory,
    as_of: datetime,
    start: _Checkpoint | None = None,
    keep: Callable[[_Checkpoint], None] | None = None,
    every: int = 500,
) -> CustomerAsOfView | None:
    """The customer built from their events, as the aggregate builds itself, and what began
    when beside it, from the start of the stream or from a checkpoint, whose copy goes on;
    every `every` events a copy is given to `keep`. None when the history holds no customer."""
    events = iter(history.events)  # each decoded as it comes, maybe: read once, in order
    if start is not None:
        customer, replay = _copied(start.customer), _copied_replay(start.replay)
    else:
        first = next(events, None)
        if first is None or not isinstance(first, _REGISTERED):
            return None
        created = first.mutate(None)
        assert isinstance(created, Customer)
        customer, replay = created, _Replay({}, {}, [])
        _note_identities(customer, replay, vars(first)["identities"], first.timestamp)
    appliers = _APPLIERS
    for n, event in enumerate(events, 1):
        # The decisions between these events are left out of the history, so the versions
        # have gaps that `mutate` would refuse: each event's own change is applied instead.
        kind = type(event)
        apply = appliers.get(kind)
        if apply is None:
            apply = appliers[kind] = _applier(kind)
        apply(customer, event)
        customer.modified_on = event.timestamp
        _note(event, customer, replay)
        if keep is not None and n % every == 0:
            at = event.timestamp
            keep(
                _Checkpoint(
                    event.originator_version,
                    at,
                    _copied(customer),
                    _copied_replay(replay),
                    history.erased,
                )
            )
    return _view(customer, replay, history, as_of)


def _note(event: Any, customer: Customer, replay: _Replay) -> None:
    at = event.timestamp
    fields = vars(event)  # the event classes @event makes are not visible to the type checker
    if isinstance(event, _IDENTITY_LINKED):
        _note_identities(customer, replay, (fields["identity"],), at)
    elif isinstance(event, _ABSORBED):
        _note_identities(customer, replay, fields["identities"], at)
        replay.absorbed.append(AuditedMerge(fields["merged_id"], at, fields["reason"]))
    elif isinstance(event, _MERGED_INTO):
        replay.identities.clear()
        replay.merged_into = AuditedMerge(fields["survivor_id"], at, fields["reason"])
    elif isinstance(event, _SUPPRESSION_ADDED):
        replay.suppressed_since[fields["channel"]] = at
    elif isinstance(event, _SUPPRESSION_LIFTED):
        replay.suppressed_since.pop(fields["channel"], None)


def _note_identities(
    customer: Customer, replay: _Replay, claims: Iterable[IdentityClaim], at: datetime
) -> None:
    """Since when each claimed identity holds the level the customer now gives it: only the
    claims of the event are looked at, so a customer with many identities replays in linear
    time."""
    known = replay.identities
    for claim in claims:
        level = customer.identities.get(claim.identity)
        if level is not None and known.get(claim.identity, (None,))[0] != level:
            known[claim.identity] = (level, at)


def _segments(facts: list[CanMutateAggregate[UUID]]) -> list[AuditedMembership]:
    members: dict[UUID, AuditedMembership] = {}
    for fact in facts:
        if isinstance(fact, Membership.Entered):
            members[fact.segment_id] = AuditedMembership(
                fact.segment_id, fact.segment_key, fact.segment_version, fact.timestamp
            )
        elif isinstance(fact, Membership.Exited):
            members.pop(fact.segment_id, None)
    return sorted(members.values(), key=lambda m: m.segment_key)


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    """The values, each one the read left sealed (`Unopened`) opened."""
    return {
        name: value.opened() if isinstance(value, Unopened) else value
        for name, value in values.items()
    }


def _view(
    customer: Customer, replay: _Replay, history: CustomerHistory, as_of: datetime
) -> CustomerAsOfView:
    return CustomerAsOfView(
        id=customer.id,
        as_of=as_of,
        version=history.version,
        created_at=customer.created_on,
        changed_at=customer.modified_on,
        profile=_shown(customer.profile.as_dict()),
        attributes=_shown(customer.attributes),
        effective_time_zone=customer.facts().time_zone,
        identities=[
            AuditedIdentity(identity.type, identity.value, level.value, since)
            for identity, (level, since) in sorted(replay.identities.items())
        ],
        consents=[
            AuditedConsent(channel.value, purpose.value, state.granted, state.source, state.at)
            for (channel, purpose), state in sorted(customer.consents.items())
        ]
        + [
            AuditedConsent(channel.value, None, False, state.source, state.at)
            for channel, state in sorted(customer.opted_out.items())
        ],
        suppressions=sorted(
            (
                AuditedSuppression(
                    channel.value if channel else "*",
                    reason,
                    replay.suppressed_since.get(channel, customer.created_on),
                )
                for channel, reason in customer.suppressed.items()
            ),
            key=lambda s: s.channel,
        ),
        segments=_segments(history.memberships),
        merged_into=replay.merged_into,
        absorbed=replay.absorbed,
        erased_at=customer.erased_at,
        personal_data_erased=history.erased,
    )


@contextmanager
def _uncollected() -> Iterator[None]:
    """No garbage collection while a replay is read back or made, with no await in between:
    each makes thousands of objects at once, most gone by the end (events, decoded fields),
    the rest alive until the answer is given. A collection in the middle finds them all
    alive and moves them to the older generations, and a full collection of those every few
    questions cost one question in ten 30 to 50 ms. The collector runs as ever after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class CustomerAsOf:
    """Rebuilds a customer from the event log as it stood at an instant; never from a read
    model, and never from anything recorded after the instant. Replays are checkpointed in
    memory along each stream, so asking about the same customer again reads and replays only
    what follows the nearest checkpoint."""

    def __init__(self, log: AuditLog, clock: Clock, checkpoints: Checkpoints | None = None) -> None:
        self.log = log
        self.clock = clock
        self.checkpoints = checkpoints or Checkpoints()

    async def __call__(self, customer_id: UUID, as_of: datetime | None = None) -> CustomerAsOfView:
        now = self.clock.now()
        if as_of is None:
            as_of = now
        elif as_of > now:
            raise AuditQueryRefused("as_of", f"is in the future: it is {now.isoformat()} now")
        checkpoints = self.checkpoints
        start = checkpoints.before(customer_id, as_of)
        kept = (
            None
            if start is not None
            else await self.log.kept_replay(customer_id, as_of, replay_code())
        )
        after = start.version if start is not None else kept.version if kept is not None else 0
        history = await self.log.customer_history(customer_id, as_of, after)
        if kept is not None:
            # Read back only now, with the events after it in hand: its objects are made
            # and replayed on with no await in between (`_uncollected`).
            with _uncollected():
                start = _checkpoint(kept)
            if start is None:
                history = await self.log.customer_history(customer_id, as_of)
            else:
                checkpoints.keep(customer_id, start)
        if start is not None and (
            history.version < start.version or start.erased != history.erased
        ):
            # An event before the checkpoint was recorded after the instant (a clock that
            # went back): the checkpoint holds more than Chorus knew then. Or the customer was
            # erased since it was kept: it holds personal values that are gone.
            start, history = None, await self.log.customer_history(customer_id, as_of)
        fresh: list[_Checkpoint] = []

        def keep(checkpoint: _Checkpoint) -> None:
            if checkpoints.keep(customer_id, checkpoint):
                fresh.append(checkpoint)

        with _uncollected():
            view = replay_customer(history, as_of, start, keep=keep, every=checkpoints.every)
        if fresh and not history.erased:
            # For any process to start from, the next time: kept by the log, sealed.
            await self.log.keep_replays(
                customer_id, replay_code(), [_kept(checkpoint) for checkpoint in fresh]
            )
        if view is not None:
            return view
        registered = await self.log.registered_at(customer_id)
        if registered is not None:
            raise CustomerNotKnownAt(
                f"customer {customer_id} did not exist yet at {as_of.isoformat()}: "
                f"registered at {registered.isoformat()}"
            )
        raise CustomerNotKnownAt(f"no customer {customer_id}")
