"""Read models: rebuilding every one from a large event store, against reading the raw log.

One function per part, each returning its own section of `projections.json`:

* `seed_store`: fills a fresh database with a production-like log (not measured).
* `measure_rebuild`: `ProjectionRunner.rebuild(name)` of every registered read model, timed,
  beside a raw asyncpg read of the whole log in the same pages; the read models must equal
  the live ones (built by a plain catch-up first) afterwards.

`run_projections` runs the parts in order on one database and merges their sections: a part
is an async function returning a dict with its own `meets_target` (and a `*ratio` field beside
each figure's raw baseline), stored under its name in `parts`; the file's `meets_target` is
all of them. Trigger latency and segment membership lag are to be added as parts the same way.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import asyncpg

from adapters.postgres.codec import EventCodec
from adapters.postgres.event_store import READ_LOG, LogPosition
from bench.profiling import profiled
from bench.projections_live import LiveConfig, run_live
from bench.servers import fresh_database
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.customer.identities import Identity, IdentityClaim, Verification
from domain.policy.vocabulary import Channel, Purpose
from domain.signals.aggregate import Signal, SignalReport
from entrypoints.ioc import make_container
from entrypoints.pipeline import LANES, every_projection
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from eventsourcing.domain import CanMutateAggregate

    from bench.servers import Servers

__all__ = ["TARGET_REBUILD_EVENTS_PER_S", "ProjectionsConfig", "run_projections"]

TARGET_REBUILD_EVENTS_PER_S = 50_000

_EVENT_COLUMNS = (
    "stream_id",
    "version",
    "topic",
    "class_version",
    "occurred_at",
    "subject_id",
    "payload",
)
# Order-independent, and cheap next to string_agg over a million rows: a row that differs
# changes the sum unless two 64-bit hashes collide just so.
_CHECKSUM = "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {} t"


@dataclass(frozen=True, slots=True)
class ProjectionsConfig:
    events: int = 1_000_000  # at least this many in the store
    customers: int = 50_000
    days: int = 60
    merges: int = 500  # pairs of customers merged
    transaction_events: int = 20_000  # events per seeding transaction
    raw_passes: int = 2  # raw log reads: one before the rebuilds, one after
    seed: int = 20261127


# --- seeding -------------------------------------------------------------------------------

_END = datetime(2026, 11, 1, tzinfo=UTC)
_FIRST_NAMES = ("Ana", "Bo", "Chen", "Dara", "Eli", "Femi", "Gus", "Hana", "Ivo", "Jo", "Kai")
_LAST_NAMES = ("Lima", "Smith", "Okafor", "Novak", "Garcia", "Tanaka", "Berg", "Rossi", "Khan")
_PLACES = (
    ("en-GB", "GB", "Europe/London"),
    ("de-DE", "DE", "Europe/Berlin"),
    ("fr-FR", "FR", "Europe/Paris"),
    ("en-US", "US", "America/New_York"),
    ("en-US", "US", "America/Los_Angeles"),
    ("pt-BR", "BR", "America/Sao_Paulo"),
    ("ja-JP", "JP", "Asia/Tokyo"),
    ("en-AU", "AU", "Australia/Sydney"),
)
_PLANS = ("free", "basic", "pro", "team")
_SOURCES = ("web", "ios", "android", "backend")


def _page(n: int, r: float) -> dict[str, Any]:
    return {"path": f"/p/{n % 997}", "referrer": "search" if r < 0.3 else "direct"}


def _product(n: int, r: float) -> dict[str, Any]:
    return {"sku": f"SKU-{n % 4999:04d}", "price": round(5 + 200 * r, 2)}


def _search(n: int, r: float) -> dict[str, Any]:
    return {"query": f"term {n % 313}", "results": int(r * 40)}


def _cart(n: int, r: float) -> dict[str, Any]:
    return {"sku": f"SKU-{n % 4999:04d}", "quantity": 1 + int(r * 3)}


def _order(n: int, r: float) -> dict[str, Any]:
    return {"order_id": f"o-{n}", "total": round(10 + 490 * r, 2), "currency": "EUR", "items": 1}


def _message(n: int, r: float) -> dict[str, Any]:
    return {"campaign": f"c-{n % 40}", "message_id": f"m-{n}"}


def _plain(n: int, r: float) -> dict[str, Any]:
    return {"device": "mobile" if r < 0.6 else "desktop"}


# (type, share of signals, properties); none of them changes the customer (signal_effects).
_SIGNAL_TYPES: tuple[tuple[str, float, Callable[[int, float], dict[str, Any]]], ...] = (
    ("page.viewed", 0.36, _page),
    ("product.viewed", 0.16, _product),
    ("search.performed", 0.08, _search),
    ("cart.added", 0.08, _cart),
    ("session.started", 0.08, _plain),
    ("email.opened", 0.09, _message),
    ("email.clicked", 0.04, _message),
    ("push.opened", 0.04, _message),
    ("app.opened", 0.04, _plain),
    ("order.placed", 0.03, _order),
)


@dataclass(slots=True)
class _People:
    """The customers' aggregates and when each was registered (seconds from the start)."""

    ids: list[uuid.UUID]
    registered: list[float]
    aggregates: list[Customer | None]
    merged_at: dict[int, float] = field(default_factory=dict)
    survivor: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SeededStore:
    events: int
    customer_events: int
    signals: int
    customers: int
    merges: int
    identities: int
    first_at: datetime
    last_at: datetime
    seconds: float


def _claims(n: int, rng: random.Random) -> tuple[IdentityClaim, ...]:
    claims = [IdentityClaim(Identity("email", f"user{n}@example.org"), Verification.VERIFIED)]
    if rng.random() < 0.5:
        claims.append(IdentityClaim(Identity("phone", f"+4477{n:08d}")))
    if rng.random() < 0.3:
        claims.append(
            IdentityClaim(Identity("account_id", f"acct-{n}"), Verification.AUTHENTICATED)
        )
    return tuple(claims)


def _customer_actions(
    config: ProjectionsConfig, rng: random.Random, registered: list[float], span: float
) -> list[tuple[float, int, str, int, Any]]:
    """(time, seq, kind, customer, argument): registrations, profile and consent changes, merges."""
    seq = itertools.count()
    actions: list[tuple[float, int, str, int, Any]] = []

    def later(n: int) -> float:
        return registered[n] + rng.random() * (span - registered[n])

    for n, at in enumerate(registered):
        actions.append((at, next(seq), "register", n, None))
        if rng.random() < 0.7:
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
            locale, country, zone = rng.choice(_PLACES)
            profile = {"first_name": first, "last_name": last, "locale": locale}
            profile |= {"country": country, "time_zone": zone}
            attributes: dict[str, Any] = {"plan": rng.choice(_PLANS)}
            attributes["signup_source"] = rng.choice(_SOURCES)
            actions.append((min(at + 60 * rng.random(), span), next(seq), "profile", n, (
                profile, attributes)))  # fmt: skip
        if rng.random() < 0.25:
            attributes = {"plan": rng.choice(_PLANS), "ltv": rng.randrange(5000)}
            attributes |= {"vip": rng.random() < 0.1, "signup_source": None}
            actions.append((later(n), next(seq), "profile", n, ({}, attributes)))
        if rng.random() < 0.5:
            grant = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, True, "signup form")
            actions.append((min(at + 1, span), next(seq), "consent", n, grant))
            if rng.random() < 0.2:
                withdraw = ConsentRecord(Channel.EMAIL, Purpose.MARKETING, False, "unsubscribe")
                actions.append((later(n), next(seq), "consent", n, withdraw))
        if rng.random() < 0.15:
            grant = ConsentRecord(Channel.SMS, Purpose.SERVICE, True, "checkout")
            actions.append((later(n), next(seq), "consent", n, grant))
        if rng.random() < 0.04:
            stop = ConsentRecord(Channel.SMS, None, False, "STOP")
            actions.append((later(n), next(seq), "consent", n, stop))
    pairs = rng.sample(range(len(registered)), 2 * config.merges)
    for a, b in zip(pairs[::2], pairs[1::2], strict=True):
        survivor, merged = (a, b) if registered[a] <= registered[b] else (b, a)
        start = registered[merged] + 3600
        if start < span:
            actions.append((start + rng.random() * (span - start), next(seq), "merge", merged,
                            survivor))  # fmt: skip
    actions.sort()
    return actions


def _play(
    actions: list[tuple[float, int, str, int, Any]],
    people: _People,
    start: datetime,
    rng: random.Random,
) -> list[tuple[float, int, CanMutateAggregate[uuid.UUID], uuid.UUID]]:
    """Runs the actions on real aggregates, in time order: (time, seq, event, subject)."""
    out: list[tuple[float, int, CanMutateAggregate[uuid.UUID], uuid.UUID]] = []
    seq = itertools.count()

    def current(n: int) -> Customer:
        while n in people.survivor:  # a command about a merged customer goes to its survivor
            n = people.survivor[n]
        found = people.aggregates[n]
        assert found is not None
        return found

    for at, _, kind, n, argument in actions:
        when = start + timedelta(seconds=at)
        touched: list[Customer]
        if kind == "register":
            customer = Customer.register(people.ids[n], when, _claims(n, rng))
            people.aggregates[n] = customer
            touched = [customer]
        elif kind == "profile":
            customer = current(n)
            customer.update_profile(when, *argument)
            touched = [customer]
        elif kind == "consent":
            customer = current(n)
            customer.change_consent(argument, when)
            touched = [customer]
        else:
            survivor, merged = current(argument), current(n)
            if survivor is merged:
                continue
            survivor.absorb(merged, when, "a signal named identities of both")
            people.merged_at[n] = at
            people.survivor[n] = argument  # each customer is in one merge at most
            touched = [survivor, merged]
        for customer in touched:
            for event in customer.collect_events():
                out.append((at, next(seq), event, customer.id))
    return out


def _signal_plan(
    config: ProjectionsConfig, rng: random.Random, people: _People, count: int, span: float
) -> list[tuple[float, int, int, int]]:
    """(time, seq, customer, type): sessions of a few signals by customers picked by activity,
    each after its customer registered; sorted by time."""
    order = sorted(range(len(people.ids)), key=people.registered.__getitem__)
    registered = [people.registered[n] for n in order]
    activity = list(itertools.accumulate(min(rng.paretovariate(1.3), 50.0) for _ in order))
    type_weights = list(itertools.accumulate(share for _, share, _ in _SIGNAL_TYPES))
    day = 86_400.0
    plan: list[tuple[float, int, int, int]] = []
    seq = 0
    per_day = count / config.days
    for d in range(config.days):
        day_start, day_end = d * day, min(span, (d + 1) * day)
        # Customers who have registered an hour before the day ends, each after that.
        eligible = max(1, bisect.bisect_left(registered, day_end - 3600))
        wanted = int(per_day * (d + 1)) - int(per_day * d)
        picks = rng.choices(order[:eligible], cum_weights=activity[:eligible], k=wanted)
        made = 0
        for customer in picks:
            if made >= wanted:
                break
            since = max(day_start, people.registered[customer])
            at = since + rng.random() * (day_end - since)
            for _ in range(min(1 + int(rng.expovariate(0.25)), wanted - made)):
                kind = bisect.bisect_left(type_weights, rng.random() * type_weights[-1])
                plan.append((min(at, span), seq, customer, min(kind, len(_SIGNAL_TYPES) - 1)))
                seq += 1
                made += 1
                at += 2 + rng.expovariate(1 / 40)
    plan.sort()
    return plan


def _rows(
    codec: EventCodec,
    start: datetime,
    people: _People,
    customer_events: list[tuple[float, int, CanMutateAggregate[uuid.UUID], uuid.UUID]],
    signals: list[tuple[float, int, int, int]],
    rng: random.Random,
) -> Iterator[tuple[Any, ...]]:
    """Every event as an `events` row, customers' and signals' interleaved in time order."""
    tagged: Iterator[tuple[float, int, int, Any, Any]] = heapq.merge(
        ((at, 0, seq, event, subject) for at, seq, event, subject in customer_events),
        ((at, 1, seq, n, kind) for at, seq, n, kind in signals),
    )
    claim = ()  # producers' identities are not part of the stored event
    for at, source, seq, first, second in tagged:
        when = start + timedelta(seconds=at)
        if source == 0:
            event, subject = first, second
        else:
            n, kind = first, second
            merged_at = people.merged_at.get(n)
            while merged_at is not None and at >= merged_at:  # ingest resolves to the survivor
                n = people.survivor[n]
                merged_at = people.merged_at.get(n)
            name, _, properties = _SIGNAL_TYPES[kind]
            report = SignalReport(
                f"bench-{seq}",
                name,
                when - timedelta(seconds=rng.random() * 5),
                claim,
                properties(seq, rng.random()),
                _SOURCES[seq % len(_SOURCES)],
            )
            subject = people.ids[n]
            event = Signal.recorded(report, subject, when)
        e = codec.encode(event)
        yield (e.stream_id, e.version, e.topic, e.class_version, e.occurred_at, subject, e.payload)


async def seed_store(dsn: str, config: ProjectionsConfig) -> SeededStore:
    """A production-like log of at least `config.events` events, bulk-loaded with COPY in
    transactions of `config.transaction_events`, with the identities and merges tables as the
    live service would have left them."""
    started = time.perf_counter()
    rng = random.Random(config.seed)
    span = config.days * 86_400.0
    start = _END - timedelta(days=config.days)
    # A backfill brings 40% of the customers in on the first morning; the rest sign up later.
    registered = [
        rng.random() * 6 * 3600 if rng.random() < 0.4 else rng.random() * (span - 86_400)
        for _ in range(config.customers)
    ]
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in registered]
    people = _People(ids, registered, [None] * config.customers)
    actions = _customer_actions(config, rng, registered, span)
    customer_events = _play(actions, people, start, rng)
    signals = _signal_plan(config, rng, people, config.events - len(customer_events), span)
    codec = EventCodec()
    rows = _rows(codec, start, people, customer_events, signals, rng)
    identities = [
        (identity.type, identity.value, customer.id)
        for customer in people.aggregates
        if customer is not None
        for identity in customer.identities
    ]
    merges = [(ids[merged], ids[survivor]) for merged, survivor in people.survivor.items()]
    conn = await asyncpg.connect(dsn)
    total = 0
    try:
        while chunk := list(itertools.islice(rows, config.transaction_events)):
            async with conn.transaction():
                await conn.copy_records_to_table("events", records=chunk, columns=_EVENT_COLUMNS)
            total += len(chunk)
        async with conn.transaction():
            await conn.copy_records_to_table(
                "identities", records=identities, columns=("type", "value", "customer_id")
            )
            await conn.copy_records_to_table(
                "customer_merges", records=merges, columns=("merged_id", "survivor_id")
            )
        await conn.execute("VACUUM ANALYZE events")
        span_row = await conn.fetchrow("SELECT min(occurred_at), max(occurred_at) FROM events")
        assert span_row is not None
        first, last = span_row
    finally:
        await conn.close()
    return SeededStore(
        events=total,
        customer_events=len(customer_events),
        signals=len(signals),
        customers=config.customers,
        merges=len(merges),
        identities=len(identities),
        first_at=first,
        last_at=last,
        seconds=time.perf_counter() - started,
    )


# --- rebuild -------------------------------------------------------------------------------


async def _raw_log_read(conn: asyncpg.Connection, page_size: int) -> tuple[int, float]:
    """The whole log in the runner's order and page size, rows fetched, nothing decoded."""
    position = LogPosition()
    count = 0
    started = time.perf_counter()
    while rows := await conn.fetch(
        READ_LOG, str(position.transaction_id), position.position, page_size
    ):
        count += len(rows)
        position = LogPosition(rows[-1]["transaction_id"], rows[-1]["position"])
    return count, time.perf_counter() - started


async def _checksums(conn: asyncpg.Connection, tables: Sequence[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for table in tables:
        row = await conn.fetchrow(_CHECKSUM.format(table))
        assert row is not None
        found[table] = [row[0], row[1]]
    return found


async def measure_rebuild(
    dsn: str, config: ProjectionsConfig, events: int, profile: Path | None = None
) -> dict[str, Any]:
    """Catches every read model up (the live ones), then rebuilds each, timed, between two raw
    reads of the whole log; checks that each rebuilt read model equals the live one."""
    # The service's own runner and read models, wired as `chorus projections rebuild` does.
    container = make_container(Settings(database_url=dsn))
    try:
        # Everything but the outbound publisher, which owns no tables and needs NATS.
        runner = await every_projection(
            container, lanes=[lane for lane in LANES if lane.name != "outbound"]
        )
        pool = runner.pool
        # A projection without tables records facts (the segment evaluator): not a read model.
        models = [name for name, p in runner.projections.items() if p.tables]
        await runner.setup()
        started = time.perf_counter()
        caught_up = await runner.catch_up()
        catch_up_seconds = time.perf_counter() - started
        tables = [t for name in models for t in runner.projections[name].tables]
        async with pool.acquire() as proxy:
            conn = cast("asyncpg.Connection", proxy)
            live = await _checksums(conn, tables)
            handled = {
                name: await conn.fetchval(
                    "SELECT count(*) FROM events WHERE topic = ANY($1::text[])", list(p.topics)
                )
                for name, p in runner.projections.items()
                if name in models
            }
        raw: list[tuple[int, float]] = []
        per_projection: dict[str, dict[str, Any]] = {}

        async def raw_pass() -> None:
            async with pool.acquire() as proxy:
                conn = cast("asyncpg.Connection", proxy)
                raw.append(await _raw_log_read(conn, runner.rebuild_page_size))

        await raw_pass()
        with profiled(profile):
            for name in models:
                print(f"  rebuilding {name} ...", file=sys.stderr, flush=True)
                started = time.perf_counter()
                await runner.rebuild(name)
                seconds = time.perf_counter() - started
                per_projection[name] = {
                    "seconds": round(seconds, 3),
                    "events_handled": handled[name],
                    "log_events_per_s": round(events / seconds, 1),
                    "handled_events_per_s": round(handled[name] / seconds, 1),
                }
        for _ in range(config.raw_passes - 1):
            await raw_pass()
        async with pool.acquire() as proxy:
            conn = cast("asyncpg.Connection", proxy)
            rebuilt = await _checksums(conn, tables)
        not_rebuilt = [name for name in runner.projections if name not in models]
    finally:
        await container.close()
    if rebuilt != live:
        raise RuntimeError(f"rebuilt read models differ from the live ones: {rebuilt} != {live}")
    if any(count != events for count, _ in raw):
        raise RuntimeError(f"the raw read saw {[c for c, _ in raw]} events, not {events}")
    total_seconds = sum(p["seconds"] for p in per_projection.values())
    rate = events / total_seconds
    raw_rates = [count / seconds for count, seconds in raw]
    raw_rate = statistics.median(raw_rates)
    return {
        "method": "runner = await every_projection(make_container(Settings(database_url=dsn))) without the outbound lane"
        "; await runner.catch_up() builds the live read models; then "
        "`await runner.rebuild(name)` for each read model (projection with tables), timed",
        "baseline": "asyncpg conn.fetch of the whole log in pages by (transaction_id, position), "
        "same ORDER BY, horizon and page size as the rebuild, no topic filter, nothing decoded",
        "page_size": runner.rebuild_page_size,
        "events_in_store": events,
        "projections": per_projection,
        "not_rebuilt": {name: "no tables of its own: it records facts" for name in not_rebuilt},
        "rebuild_seconds": round(total_seconds, 3),
        "rebuild_events_per_s": round(rate, 1),
        "raw_log_read_events_per_s": round(raw_rate, 1),
        "raw_log_read_passes_events_per_s": [round(r, 1) for r in raw_rates],
        "rebuild_raw_ratio": round(rate / raw_rate, 4),
        "catch_up_events_applied": caught_up,
        "catch_up_seconds": round(catch_up_seconds, 3),
        "catch_up_events_per_s": round(events / catch_up_seconds, 1),
        "catch_up_page_size": runner.page_size,
        "check": "count(*) and sum(hashtextextended(row::text, 0)) of every table, live vs "
        "rebuilt: equal",
        "tables": {table: {"rows": rows} for table, (rows, _) in rebuilt.items()},
        "target_events_per_s": TARGET_REBUILD_EVENTS_PER_S,
        "meets_target": rate >= TARGET_REBUILD_EVENTS_PER_S,
    }


# --- the whole benchmark -------------------------------------------------------------------


async def run_projections(
    servers: Servers,
    dsn: str,
    config: ProjectionsConfig,
    live: LiveConfig,
    *,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Seeds the store, then runs each part; `profile` profiles the rebuilds only. The live
    parts (trigger latency, segment lag) run `chorus serve` on a database of their own."""
    print(f"  seeding {config.events:,} events ...", file=sys.stderr, flush=True)
    store = await seed_store(dsn, config)
    print(f"  seeded in {store.seconds:.1f} s", file=sys.stderr, flush=True)
    parts: dict[str, dict[str, Any]] = {}
    parts["rebuild"] = await measure_rebuild(dsn, config, store.events, profile)
    print("  trigger latency and segment lag on a running service ...", file=sys.stderr, flush=True)
    async with fresh_database(servers.database_url) as live_dsn:
        parts.update(await run_live(servers, live_dsn, live))
    return {
        "benchmark": "projections",
        "config": asdict(config),
        "store": {
            **{k: v for k, v in asdict(store).items() if k not in ("first_at", "last_at")},
            "first_at": store.first_at.isoformat(),
            "last_at": store.last_at.isoformat(),
            "seconds": round(store.seconds, 1),
            "signal_types": [name for name, _, _ in _SIGNAL_TYPES],
        },
        **parts,
        "meets_target": all(part["meets_target"] for part in parts.values()),
    }
