"""Signals committed per second over HTTP batches and over NATS, against raw `executemany`.

Order of a run: `chorus serve` starts on a fresh database and one HTTP pass creates every
customer. Then come `rounds` rounds, each of them the raw baseline (the service idle), an HTTP
pass and a NATS pass of signals about those known customers, in an order that turns by one
each round; a figure is the median of its rounds and a ratio the median of the rounds' ratios, so that the machine drifting during a run
(its speed here moves by a third within minutes) weighs on both sides alike. Last come one pass
of one signal a NATS message and the one-box pass.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from bench.ingest_http import post_batches
from bench.ingest_nats import (
    NatsRun,
    delete_streams,
    horizon,
    publish_and_wait,
    recorded,
    wait_for,
)
from bench.ingest_raw import raw_executemany
from bench.service import ChorusService, ProjectionWorker, tail
from bench.signals import (
    SignalFactory,
    batches,
    http_bodies,
    nats_batch_messages,
    nats_messages,
    raw_rows,
)
from domain.signals.aggregate import signal_id_for
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bench.servers import Servers

__all__ = [
    "TARGET_ATTRIBUTED_RATIO",
    "TARGET_RATIO",
    "TARGET_SIGNALS_PER_S",
    "IngestConfig",
    "run_ingest",
]

TARGET_SIGNALS_PER_S = 10_000
TARGET_RATIO = 0.5
# The worker alone putting known customers' signals on them, against the same raw rate.
TARGET_ATTRIBUTED_RATIO = 0.2


@dataclass(frozen=True, slots=True)
class IngestConfig:
    customers: int = 10_000
    known_signals: int = 50_000
    nats_signals: int = 50_000
    nats_batch_size: int = 100  # signals per NATS message in the headline NATS pass
    nats_single_signals: int = 20_000  # one signal per message
    batch_size: int = 1000
    http_clients: int = 3
    rounds: int = 3  # raw, HTTP and NATS each; figures are medians of rounds


def _meets(rate: float, ratio: float) -> bool:
    return rate >= TARGET_SIGNALS_PER_S and ratio >= TARGET_RATIO


async def _registered(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM events WHERE topic LIKE '%:Customer.Registered'"
        )
        return count
    finally:
        await conn.close()


async def _signals_recorded(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await recorded(conn)
    finally:
        await conn.close()


async def _raw(dsn: str, signals: list[dict[str, Any]], config: IngestConfig) -> float:
    """Rows per second of `executemany` of the rows of `signals`."""
    count, seconds = await raw_executemany(
        dsn, batches(raw_rows(signals), config.batch_size), config.http_clients
    )
    return count / seconds


@dataclass(frozen=True, slots=True)
class _Pass:
    signals: int
    seconds: float  # until the last answer: every signal committed
    attributed_seconds: float  # worker resumed (or first request) until every one is recorded
    # The worker's CPU time meanwhile (None without one, or where /proc is not): unlike the
    # rate, barely moved by what else the machine runs.
    worker_cpu_seconds: float | None = None

    @property
    def attributed_per_s(self) -> float:
        return self.signals / self.attributed_seconds

    @property
    def worker_cpu_us_per_signal(self) -> float | None:
        if self.worker_cpu_seconds is None:
            return None
        return self.worker_cpu_seconds / self.signals * 1e6


@dataclass(frozen=True, slots=True)
class _Round:
    raw_rows_per_s: float
    http: _Pass
    nats: NatsRun

    @property
    def http_per_s(self) -> float:
        return self.http.signals / self.http.seconds

    @property
    def nats_per_s(self) -> float:
        return self.nats.signals / self.nats.commit_seconds

    @property
    def attributed_ratio(self) -> float:
        """The HTTP pass's signals (known customers) attributed by the worker alone, a second,
        by this round's raw rate."""
        return self.http.attributed_per_s / self.raw_rows_per_s


@dataclass(frozen=True, slots=True)
class _Passes:
    new: _Pass
    rounds: list[_Round]
    nats_single: NatsRun
    same_box: _Pass
    subject: str


async def _http_pass(
    base_url: str,
    key: str,
    dsn: str,
    signals: list[dict[str, Any]],
    config: IngestConfig,
    worker: ProjectionWorker | None = None,
) -> _Pass:
    """POSTs the signals, then waits until attribution has recorded every one of them; with a
    `worker`, that worker is paused while the signals go in and resumed after the last answer."""
    conn = await asyncpg.connect(dsn)
    try:
        since = await horizon(conn)
        expected = await recorded(conn, since) + len(signals)
        tail = [signal_id_for(s["id"]) for s in signals[-500:]]
        bodies = http_bodies(signals, config.batch_size)
        if worker is not None:
            worker.pause()
        started = time.perf_counter()
        count, seconds = await post_batches(base_url, key, bodies, config.http_clients)
        cpu = None
        if worker is not None:
            cpu = worker.cpu_seconds()
            started = time.perf_counter()
            worker.resume()
        await wait_for(conn, expected, tail, recorded, since)
        attributed = time.perf_counter() - started
        used = None if worker is None else worker.cpu_seconds()
        return _Pass(
            count, seconds, attributed, None if cpu is None or used is None else used - cpu
        )
    finally:
        await conn.close()


async def _nats_pass(
    servers: Servers,
    dsn: str,
    subject: str,
    messages: list[tuple[str, bytes]],
    signals: list[dict[str, Any]],
    worker: ProjectionWorker,
) -> NatsRun:
    worker.pause()
    return await publish_and_wait(
        servers.nats_url, dsn, subject, messages, [s["id"] for s in signals], worker.resume
    )


def _turned(steps: tuple[str, ...], turn: int) -> list[str]:
    """The steps begun at a different one each round, so that what one pass leaves behind
    (autovacuum, a checkpoint) does not always fall on the same next one."""
    shift = turn % len(steps)
    return [*steps[shift:], *steps[:shift]]


@dataclass
class _Signals:
    """Every signal a run sends, made up front so that making them is never timed."""

    new: list[dict[str, Any]]
    rounds: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]  # (HTTP, NATS)
    one_by_one: list[dict[str, Any]]
    same_box: list[dict[str, Any]]
    warmup: list[dict[str, Any]]  # for the raw table only

    @classmethod
    def make(cls, factory: SignalFactory, config: IngestConfig) -> _Signals:
        return cls(
            factory.first_pass(),
            [
                (factory.known(config.known_signals), factory.known(config.nats_signals))
                for _ in range(config.rounds)
            ],
            factory.known(config.nats_single_signals),
            factory.known(config.known_signals),
            factory.known(2 * config.batch_size),
        )

    @property
    def through_service(self) -> int:
        rounds = sum(len(http) + len(nats) for http, nats in self.rounds)
        return len(self.new) + rounds + len(self.one_by_one) + len(self.same_box)


async def _through_service(
    servers: Servers,
    dsn: str,
    run: str,
    signals: _Signals,
    config: IngestConfig,
    profile: Path | None,
) -> _Passes:
    """The ingest tier alone (`chorus serve` with CHORUS_PROJECTIONS=false, its projection
    worker paused while signals go in): HTTP new customers, then rounds of raw, HTTP and NATS
    batches about known customers, then single NATS messages; last, `chorus serve` as one box
    runs it, worker included, for one HTTP pass."""
    # Our own subjects and streams, so that nothing else on a shared NATS clashes with them.
    prefix = f"bench_{run}"
    stream = f"BENCH_{run.upper()}_SIGNALS"
    subject = f"{prefix}.signals.bench"
    settings = {"CHORUS_SIGNAL_STREAM": stream, "CHORUS_NATS_PREFIX": prefix}
    with tempfile.TemporaryDirectory(prefix="chorus-bench-service-") as tmp:
        service = ChorusService(
            dsn,
            servers.nats_url,
            Path(tmp) / "chorus.log",
            {**settings, "CHORUS_PROJECTIONS": "false"},
            profile_path=profile,
        )
        worker = ProjectionWorker(
            service,
            Path(tmp) / "worker.log",
            profile_path=None if profile is None else profile.with_name("ingest-worker.prof"),
        )
        key = service.create_admin_key()
        try:
            async with service:
                worker.start()
                try:
                    await _raw(dsn, signals.warmup, config)
                    first = await _http_pass(
                        service.base_url, key, dsn, signals.new, config, worker
                    )
                    rounds = []
                    for turn, (via_http, via_nats) in enumerate(signals.rounds):
                        raw: float | None = None
                        http: _Pass | None = None
                        nats: NatsRun | None = None
                        for step in _turned(("raw", "http", "nats"), turn):
                            if step == "raw":
                                raw = await _raw(dsn, via_http, config)
                            elif step == "http":
                                http = await _http_pass(
                                    service.base_url, key, dsn, via_http, config, worker
                                )
                            else:
                                messages = nats_batch_messages(via_nats, config.nats_batch_size)
                                nats = await _nats_pass(
                                    servers, dsn, subject, messages, via_nats, worker
                                )
                        assert raw is not None
                        assert http is not None
                        assert nats is not None
                        rounds.append(_Round(raw, http, nats))
                    one_by_one = signals.one_by_one
                    single = await _nats_pass(
                        servers, dsn, subject, nats_messages(one_by_one), one_by_one, worker
                    )
                finally:
                    worker.stop()
            one_box = ChorusService(dsn, servers.nats_url, Path(tmp) / "one-box.log", settings)
            async with one_box:
                together = await _http_pass(one_box.base_url, key, dsn, signals.same_box, config)
        except Exception as error:
            logs = service.log_tail() + "\nworker:\n" + tail(worker.log_path)
            raise RuntimeError(f"{error}\nservice log:\n{logs}") from error
        finally:
            dead_letters = Settings(signal_stream=stream).dead_letter_stream
            await delete_streams(servers.nats_url, stream, dead_letters)
    return _Passes(first, rounds, single, together, subject)


async def run_ingest(
    servers: Servers, dsn: str, config: IngestConfig, *, profile: Path | None = None
) -> dict[str, Any]:
    """Runs every pass on the database `dsn`; `profile` runs the service under cProfile."""
    run = uuid.uuid4().hex[:8]
    factory = SignalFactory(run, config.customers)
    signals = _Signals.make(factory, config)
    passes = await _through_service(servers, dsn, run, signals, config, profile)

    customers = await _registered(dsn)
    total = await _signals_recorded(dsn)
    expected = signals.through_service
    if customers != config.customers or total != expected:
        raise RuntimeError(f"{customers} customers and {total} signals; expected {expected}")
    return _result(config, signals.rounds[0][0][0], passes)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _median_of(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def _result(config: IngestConfig, example: dict[str, Any], passes: _Passes) -> dict[str, Any]:
    rounds, new, same_box = passes.rounds, passes.new, passes.same_box
    median = statistics.median
    raw_rate = median(r.raw_rows_per_s for r in rounds)
    http_known = median(r.http_per_s for r in rounds)
    nats_rate = median(r.nats_per_s for r in rounds)
    http_ratio = median(r.http_per_s / r.raw_rows_per_s for r in rounds)
    nats_ratio = median(r.nats_per_s / r.raw_rows_per_s for r in rounds)
    attributed_ratio = median(r.attributed_ratio for r in rounds)
    http_new = new.signals / new.seconds
    single = passes.nats_single
    single_rate = single.signals / single.commit_seconds
    return {
        "benchmark": "ingest",
        "config": asdict(config),
        "signal_example": example,
        "deployment": "ingest tier alone: `chorus serve` with CHORUS_PROJECTIONS=false and "
        "`chorus projections run` beside it, paused (SIGSTOP) while signals go in, as if it had "
        "cores of its own; *_attributed_*: that worker alone, resumed after the last commit, "
        "until every Signal.Recorded is in the log. same_box_*: `chorus serve` as the demo runs "
        "it, worker included, timed from the first request",
        "method": f"{config.rounds} rounds of: the raw baseline, the HTTP pass, the NATS pass, "
        "each with signals of its own; http_known_* and nats_* are the medians of the rounds, "
        "http_ratio, nats_ratio and attributed_ratio (http_attributed_signals_per_s: the worker "
        "alone, known customers) the medians of each round's quotient by that round's raw rate",
        "http": "POST /v1/events (subprocess service), bodies encoded beforehand, timed until "
        "the last answer (every signal committed)",
        "nats": f"publish_async to {passes.subject}, {config.nats_batch_size} signals a message "
        '(`{"signals": [...]}`, Nats-Msg-Id = batch id); single: one signal a message '
        "(Nats-Msg-Id = signal id). Timed from the first publish until the log holds every "
        "Signal.Received (committed); attributed: every Signal.Recorded",
        "baseline": "asyncpg executemany INSERT INTO bench_signals_raw (text PK, jsonb columns) "
        "of the round's HTTP signals, one transaction per batch of "
        f"{config.batch_size}, {config.http_clients} connections, the service idle",
        "rounds": [
            {
                "raw_executemany_rows_per_s": round(r.raw_rows_per_s, 1),
                "http_signals_per_s": round(r.http_per_s, 1),
                "http_ratio": round(r.http_per_s / r.raw_rows_per_s, 3),
                "http_attributed_signals_per_s": round(r.http.attributed_per_s, 1),
                "attributed_ratio": round(r.attributed_ratio, 3),
                "http_attributed_worker_cpu_us_per_signal": _rounded(
                    r.http.worker_cpu_us_per_signal
                ),
                "nats_signals_per_s": round(r.nats_per_s, 1),
                "nats_ratio": round(r.nats_per_s / r.raw_rows_per_s, 3),
                "nats_attributed_signals_per_s": round(r.nats.attributed_per_s, 1),
                "nats_publish_seconds": round(r.nats.publish_seconds, 3),
                "nats_left_after_publish": r.nats.left_after_publish,
            }
            for r in rounds
        ],
        "http_known_signals_per_s": round(http_known, 1),
        "http_known_attributed_signals_per_s": round(
            median(r.http.attributed_per_s for r in rounds), 1
        ),
        "http_new_customers_signals_per_s": round(http_new, 1),
        "http_new_customers_seconds": round(new.seconds, 3),
        "http_new_customers_attributed_signals_per_s": round(new.attributed_per_s, 1),
        "nats_signals_per_s": round(nats_rate, 1),
        "nats_attributed_signals_per_s": round(median(r.nats.attributed_per_s for r in rounds), 1),
        "nats_single_message_signals_per_s": round(single_rate, 1),
        "nats_single_message_seconds": round(single.commit_seconds, 3),
        "nats_single_message_attributed_signals_per_s": round(single.attributed_per_s, 1),
        "nats_single_message_publish_per_s": round(single.messages / single.publish_seconds, 1),
        "nats_single_message_ratio": round(single_rate / raw_rate, 3),
        "same_box_http_signals_per_s": round(same_box.signals / same_box.seconds, 1),
        "same_box_http_attributed_signals_per_s": round(same_box.attributed_per_s, 1),
        "same_box_http_ratio": round(same_box.signals / same_box.seconds / raw_rate, 3),
        "raw_executemany_rows_per_s": round(raw_rate, 1),
        "http_ratio": round(http_ratio, 3),
        "http_new_customers_ratio": round(http_new / raw_rate, 3),
        "nats_ratio": round(nats_ratio, 3),
        "attributed_ratio": round(attributed_ratio, 3),
        "http_attributed_worker_cpu_us_per_signal": _rounded(
            _median_of(r.http.worker_cpu_us_per_signal for r in rounds)
        ),
        "target_attributed_ratio": TARGET_ATTRIBUTED_RATIO,
        "attributed_meets_target": attributed_ratio >= TARGET_ATTRIBUTED_RATIO,
        "target_signals_per_s": TARGET_SIGNALS_PER_S,
        "target_ratio": TARGET_RATIO,
        "http_meets_target": _meets(http_known, http_ratio),
        "nats_meets_target": _meets(nats_rate, nats_ratio),
        "meets_target": _meets(http_known, http_ratio) and _meets(nats_rate, nats_ratio),
    }
