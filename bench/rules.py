"""Send decisions: the pure policy engine on one core, and audited decisions committed.

`pure`: `decide(...)` in a tight loop in this process, no I/O, over a fixed mix of customers,
contact ledgers and requests. A pure function has no raw counterpart, so it has no baseline and
no ratio; it is held to an absolute target.

`audited`: 16 concurrent workers each run `RequestMessage` on their own pre-created customer
(cached after a first call). Every call decides, appends one `MessageAllowed`/`...Deferred`/
`...Suppressed` event and writes the `decisions` index row in the same transaction. The baseline
is bench/append.py's: one `INSERT` per commit at the same concurrency and pool size, alternating.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from adapters.postgres.customer_records import PostgresCustomerRecords
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from adapters.system.rule_sets import DefaultRuleSets
from application.customer.upsert_customer import UpsertCustomer
from application.messages.request_message import RequestMessage
from bench.append import _RAW_TABLE, AppendConfig, _interleaved, _raw_commit
from domain.customer.identities import Identity, IdentityClaim
from domain.policy.decision import ConsentState, ContactRecord, CustomerFacts, SendRequest
from domain.policy.defaults import default_rule_set
from domain.policy.engine import decide
from domain.policy.rules import FrequencyCap, OnExceed, RuleSet
from domain.policy.vocabulary import Channel, Purpose

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["TARGET_DECISIONS_PER_S", "TARGET_RATIO", "RulesConfig", "run_rules"]

TARGET_DECISIONS_PER_S = 50_000
TARGET_RATIO = 0.5

_ZONES = (
    None,  # falls back to the rule set's UTC
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Asia/Tokyo",
)
_TEAMS = ("growth", "billing", "support", "product")
_CHANNELS = tuple(Channel)
_PURPOSES = tuple(Purpose)
# Decision times: ordinary days, and both sides of the 2026 US, EU and AU DST changes, at every
# hour of the day so that quiet hours fire in some zones and not in others.
_DAYS = (
    datetime(2026, 3, 8, tzinfo=UTC),  # US spring forward
    datetime(2026, 3, 29, tzinfo=UTC),  # EU spring forward
    datetime(2026, 4, 5, tzinfo=UTC),  # AU fall back
    datetime(2026, 6, 17, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC),  # EU fall back
    datetime(2026, 11, 1, tzinfo=UTC),  # US fall back
    datetime(2026, 11, 24, tzinfo=UTC),
)


@dataclass(frozen=True, slots=True)
class RulesConfig:
    # pure
    customers: int = 200
    cases: int = 5_000  # (request, customer, ledger, now) combinations, decided in order
    passes: int = 20  # over the cases, per run
    runs: int = 5  # the median is reported
    seed: int = 7
    # audited
    concurrency: int = 16
    duration: float = 5.0  # per side, split over `rounds`
    warmup: float = 1.0
    rounds: int = 2


def bench_rule_set() -> RuleSet:
    """The default rules plus two extra caps: SMS marketing and a per-team daily budget."""
    rules = default_rule_set()
    extra = (
        FrequencyCap(
            id="cap.sms.marketing.weekly",
            limit=2,
            window=timedelta(days=7),
            channel=Channel.SMS,
            purpose=Purpose.MARKETING,
            on_exceed=OnExceed.SUPPRESS,
        ),
        FrequencyCap(
            id="cap.team.daily",
            limit=2,
            window=timedelta(days=1),
            per_team=True,
            reserved=1,
            reserved_priority=5,
        ),
    )
    return RuleSet(
        version=rules.version,
        default_time_zone=rules.default_time_zone,
        channels=rules.channels,
        quiet_hours=rules.quiet_hours,
        caps=(*rules.caps, *extra),
        dedup=rules.dedup,
        team_priorities=rules.team_priorities,
    )


def _facts(rng: random.Random, base: datetime) -> CustomerFacts:
    # Drawn in _CHANNELS order, never a set's: string hashes, hence set order, vary per process.
    reachable = [c for c in _CHANNELS if c is Channel.EMAIL or rng.random() < 0.6]
    verified = [c for c in reachable if rng.random() < 0.5]
    consents: dict[tuple[Channel, Purpose], ConsentState] = {}
    for channel in reachable:
        for purpose in _PURPOSES:
            roll = rng.random()
            if roll < 0.45:  # granted; otherwise nothing on record (missing), or withdrawn
                at = base - timedelta(days=rng.randint(1, 400))
                consents[(channel, purpose)] = ConsentState(True, "signup_form", at)
            elif roll < 0.55:
                at = base - timedelta(days=rng.randint(1, 60))
                consents[(channel, purpose)] = ConsentState(False, "preference_centre", at)
    opted_out = {
        channel: ConsentState(False, "STOP", base - timedelta(days=rng.randint(1, 90)))
        for channel in reachable
        if rng.random() < 0.08
    }
    suppressed: dict[Channel | None, str] = {}
    if rng.random() < 0.03:
        suppressed[Channel.EMAIL] = "hard bounce"
    last_inbound: dict[Channel, datetime] = {}
    if Channel.WHATSAPP in reachable and rng.random() < 0.6:
        # Half inside the 24 h customer-service window, half outside it.
        last_inbound[Channel.WHATSAPP] = base - timedelta(hours=rng.uniform(0, 48))
    return CustomerFacts(
        time_zone=rng.choice(_ZONES),
        reachable=frozenset(reachable),
        verified=frozenset(verified),
        consents=consents,
        opted_out=opted_out,
        suppressed=suppressed,
        last_inbound=last_inbound,
    )


def _ledger(rng: random.Random, now: datetime) -> tuple[ContactRecord, ...]:
    records = [
        ContactRecord(
            at=now - timedelta(minutes=rng.randint(1, 7 * 24 * 60)),
            channel=rng.choice(_CHANNELS),
            purpose=rng.choice(_PURPOSES),
            team=rng.choice(_TEAMS),
            priority=rng.randint(0, 9),
            dedup_key=f"campaign-{rng.randint(0, 9)}" if rng.random() < 0.3 else None,
        )
        for _ in range(rng.randint(0, 20))
    ]
    return tuple(sorted(records, key=lambda r: r.at))


def _request(rng: random.Random, now: datetime) -> SendRequest:
    return SendRequest(
        team=rng.choice(_TEAMS),
        purpose=rng.choice(_PURPOSES),
        channels=tuple(rng.sample(_CHANNELS, rng.randint(1, 3))),
        priority=rng.randint(0, 9),
        dedup_key=f"campaign-{rng.randint(0, 9)}" if rng.random() < 0.3 else None,
        expires_at=now + timedelta(hours=rng.choice((1, 6, 48))) if rng.random() < 0.3 else None,
        approved_template=rng.random() < 0.5,
        sensitive=rng.random() < 0.05,
    )


Case = tuple[SendRequest, CustomerFacts, tuple[ContactRecord, ...], datetime]


def mix(config: RulesConfig) -> list[Case]:
    """A fixed, seeded mix of requests to decide."""
    rng = random.Random(config.seed)
    customers = [_facts(rng, rng.choice(_DAYS)) for _ in range(config.customers)]
    cases: list[Case] = []
    for _ in range(config.cases):
        now = rng.choice(_DAYS) + timedelta(minutes=rng.randint(0, 24 * 60 - 1))
        cases.append((_request(rng, now), rng.choice(customers), _ledger(rng, now), now))
    return cases


def _shares(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values())
    return {str(key): round(n / total, 3) for key, n in counts.most_common()}


def run_pure(config: RulesConfig) -> dict[str, Any]:
    """Decisions per second of `decide` alone, on this process's one core."""
    rules = bench_rule_set()
    cases = mix(config)
    outcomes: Counter[str] = Counter()
    fired: Counter[str] = Counter()
    for request, facts, ledger, now in cases:
        decision = decide(request, facts, ledger, rules, now)
        outcomes[decision.outcome] += 1
        fired.update(rule.rule_id.split(".")[0] for rule in decision.fired)
    rates = []
    for _ in range(config.runs):
        started = time.perf_counter()
        for _ in range(config.passes):
            for request, facts, ledger, now in cases:
                decide(request, facts, ledger, rules, now)
        rates.append(config.passes * len(cases) / (time.perf_counter() - started))
    rate = statistics.median(rates)
    ledgers = [len(ledger) for _, _, ledger, _ in cases]
    return {
        "function": "decide(request, customer_facts, ledger, rules, now)",
        "baseline": None,
        "baseline_note": "a pure, in-process function has no raw counterpart: absolute target",
        "rules": "default_rule_set() + cap.sms.marketing.weekly (2/7 days, suppress) "
        "+ cap.team.daily (2/day per team, 1 reserved for priority >= 5)",
        "mix": {
            "cases": len(cases),
            "customers": config.customers,
            "time_zones": [z or "none (rule set default)" for z in _ZONES],
            "ledger_length_min_mean_max": [
                min(ledgers),
                round(statistics.mean(ledgers), 1),
                max(ledgers),
            ],
            "channels_per_request": "1-3",
            "purposes": [str(p) for p in _PURPOSES],
            "decision_days": [d.date().isoformat() for d in _DAYS],
        },
        "outcomes": _shares(outcomes),
        "fired_rule_kinds": _shares(fired),
        "runs": config.runs,
        "decisions_per_run": config.passes * len(cases),
        "runs_decisions_per_s": [round(r) for r in rates],
        "decisions_per_s": round(rate),
        "us_per_decision": round(1e6 / rate, 2),
        "target_decisions_per_s": TARGET_DECISIONS_PER_S,
        "meets_target": rate >= TARGET_DECISIONS_PER_S,
    }


async def _customers(store: PostgresUnitsOfWork, count: int) -> list[uuid.UUID]:
    upsert = UpsertCustomer(store, SystemClock(), RandomIds())
    ids = []
    for _ in range(count):
        claim = IdentityClaim(Identity("email", f"rules-{uuid.uuid4().hex}@example.org"))
        ids.append((await upsert((claim,), {}, {})).customer_id)
    return ids


def _decider(
    request_message: RequestMessage, customer_id: uuid.UUID, outcomes: Counter[str]
) -> Callable[[], Awaitable[None]]:
    request = SendRequest(team="bench", purpose=Purpose.SERVICE, channels=(Channel.EMAIL,))

    async def run() -> None:
        decided = await request_message(customer_id, request)
        assert decided.decision is not None
        outcomes[decided.decision.outcome] += 1

    return run


async def run_audited(dsn: str, config: RulesConfig) -> dict[str, Any]:
    """`RequestMessage` against raw single-row commits, both at `config.concurrency`."""
    concurrency = config.concurrency
    # Caps out of the way so that (nearly) every decision is a send and appends one event.
    rules = RuleSet(version=1, channels=default_rule_set().channels)
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    outcomes: Counter[str] = Counter()
    try:
        await pool.execute(_RAW_TABLE)
        raw = [_raw_commit(pool) for _ in range(concurrency)]
        store = PostgresUnitsOfWork(pool)
        request_message = RequestMessage(
            store,
            DefaultRuleSets(rules),
            SystemClock(),
            RandomIds(),
            customers=PostgresCustomerRecords(pool),
        )
        deciders = [
            _decider(request_message, cid, outcomes) for cid in await _customers(store, concurrency)
        ]
        for decider in deciders:  # the aggregate cache holds each customer from here on
            await decider()
        sides = AppendConfig((concurrency,), config.duration, config.warmup, config.rounds)
        raw_rate, audited_rate = await _interleaved((raw, deciders), sides)
        per_stream = await pool.fetchval(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM decisions GROUP BY customer_id) c"
        )
    finally:
        await pool.close()
    ratio = audited_rate / raw_rate
    return {
        "command": "RequestMessage(PostgresUnitsOfWork(pool), DefaultRuleSets(rules), "
        "SystemClock(), RandomIds())(customer_id, SendRequest(team='bench', "
        "purpose=Purpose.SERVICE, channels=(Channel.EMAIL,)))",
        "rules": "RuleSet(version=1, channels=default_rule_set().channels): no caps, "
        "quiet hours or dedup",
        "writes_per_decision": "survivor lookup; BEGIN; INSERT decisions; INSERT events; COMMIT",
        "baseline": "pool.execute(INSERT INTO bench_raw (id, stream, n, payload) ...) "
        "one row per commit, ~170-byte payload",
        "concurrency": concurrency,
        "pool_size": concurrency,
        "duration_s": config.duration,
        "warmup_s": config.warmup,
        "rounds": config.rounds,
        "audited_decisions_per_s": round(audited_rate, 1),
        "raw_commits_per_s": round(raw_rate, 1),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "outcomes": {str(key): n for key, n in outcomes.most_common()},
        "max_decisions_per_customer": per_stream,
    }


async def run_rules(dsn: str, config: RulesConfig) -> dict[str, Any]:
    """The pure figure first (no servers busy), then the audited one on the database `dsn`."""
    pure = run_pure(config)
    audited = await run_audited(dsn, config)
    return {
        "benchmark": "rules",
        "meets_target": pure["meets_target"] and audited["meets_target"],
        "pure": pure,
        "audited": audited,
    }
