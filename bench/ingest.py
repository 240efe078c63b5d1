"""Signals committed per second over HTTP batches and over NATS, against raw `executemany`.

Order of a run: the raw baseline first (no service running), then `chorus serve` starts on the
same database: one HTTP pass that creates every customer, one HTTP pass of signals about those
known customers, then the NATS pass (also known customers) through the service's consumer.
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
from bench.ingest_nats import NatsRun, delete_streams, publish_and_wait, recorded, wait_for
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
    from bench.servers import Servers

__all__ = ["TARGET_RATIO", "TARGET_SIGNALS_PER_S", "IngestConfig", "run_ingest"]

TARGET_SIGNALS_PER_S = 10_000
TARGET_RATIO = 0.5


@dataclass(frozen=True, slots=True)
class IngestConfig:
    customers: int = 10_000
    known_signals: int = 50_000
    nats_signals: int = 50_000
    nats_batch_size: int = 100  # signals per NATS message in the headline NATS pass
    nats_single_signals: int = 20_000  # one signal per message
    batch_size: int = 1000
    http_clients: int = 3
    raw_repeats: int = 5


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


async def _raw_baseline(
    dsn: str, factory: SignalFactory, known: list[dict[str, Any]], config: IngestConfig
) -> list[float]:
    """Rows per second of each repetition: the HTTP pass's rows first, then fresh ones alike."""
    size = config.batch_size
    warmup = batches(raw_rows(factory.known(2 * size)), size)
    rates: list[float] = []
    for repeat in range(config.raw_repeats):
        signals = known if repeat == 0 else factory.known(len(known))
        count, seconds = await raw_executemany(
            dsn,
            batches(raw_rows(signals), size),
            config.http_clients,
            warmup=warmup if repeat == 0 else (),
        )
        rates.append(count / seconds)
    return rates


@dataclass(frozen=True, slots=True)
class _Pass:
    signals: int
    seconds: float  # until the last answer: every signal committed
    attributed_seconds: float  # worker resumed (or first request) until every one is recorded


@dataclass(frozen=True, slots=True)
class _Passes:
    new: _Pass
    known: _Pass
    nats: NatsRun
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
        expected = await recorded(conn) + len(signals)
        tail = [signal_id_for(s["id"]) for s in signals[-500:]]
        bodies = http_bodies(signals, config.batch_size)
        if worker is not None:
            worker.pause()
        started = time.perf_counter()
        count, seconds = await post_batches(base_url, key, bodies, config.http_clients)
        if worker is not None:
            started = time.perf_counter()
            worker.resume()
        await wait_for(conn, expected, tail, recorded)
        return _Pass(count, seconds, time.perf_counter() - started)
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


async def _through_service(
    servers: Servers,
    dsn: str,
    run: str,
    signals: tuple[
        list[dict[str, Any]],
        list[dict[str, Any]],
        list[dict[str, Any]],
        list[dict[str, Any]],
        list[dict[str, Any]],
    ],
    config: IngestConfig,
    profile: Path | None,
) -> _Passes:
    """The ingest tier alone (`chorus serve` with CHORUS_PROJECTIONS=false, its projection
    worker paused while signals go in): HTTP new and known customers, NATS batches and single
    messages; then `chorus serve` as one box runs it, worker included, for one HTTP pass."""
    new, known, via_nats, one_by_one, same_box = signals
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
        worker = ProjectionWorker(service, Path(tmp) / "worker.log")
        key = service.create_admin_key()
        try:
            async with service:
                worker.start()
                try:
                    first = await _http_pass(service.base_url, key, dsn, new, config, worker)
                    again = await _http_pass(service.base_url, key, dsn, known, config, worker)
                    nats = await _nats_pass(
                        servers,
                        dsn,
                        subject,
                        nats_batch_messages(via_nats, config.nats_batch_size),
                        via_nats,
                        worker,
                    )
                    single = await _nats_pass(
                        servers, dsn, subject, nats_messages(one_by_one), one_by_one, worker
                    )
                finally:
                    worker.stop()
            one_box = ChorusService(dsn, servers.nats_url, Path(tmp) / "one-box.log", settings)
            async with one_box:
                together = await _http_pass(one_box.base_url, key, dsn, same_box, config)
        except Exception as error:
            logs = service.log_tail() + "\nworker:\n" + tail(worker.log_path)
            raise RuntimeError(f"{error}\nservice log:\n{logs}") from error
        finally:
            dead_letters = Settings(signal_stream=stream).dead_letter_stream
            await delete_streams(servers.nats_url, stream, dead_letters)
    return _Passes(first, again, nats, single, together, subject)


async def run_ingest(
    servers: Servers, dsn: str, config: IngestConfig, *, profile: Path | None = None
) -> dict[str, Any]:
    """Runs every pass on the database `dsn`; `profile` runs the service under cProfile."""
    run = uuid.uuid4().hex[:8]
    factory = SignalFactory(run, config.customers)
    signals = (
        factory.first_pass(),
        factory.known(config.known_signals),
        factory.known(config.nats_signals),
        factory.known(config.nats_single_signals),
        factory.known(config.known_signals),
    )
    raw_rates = await _raw_baseline(dsn, factory, signals[1], config)
    passes = await _through_service(servers, dsn, run, signals, config, profile)

    customers = await _registered(dsn)
    total = await _signals_recorded(dsn)
    expected = sum(len(s) for s in signals)
    if customers != config.customers or total != expected:
        raise RuntimeError(f"{customers} customers and {total} signals; expected {expected}")
    return _result(config, signals[1][0], passes, raw_rates)


def _result(
    config: IngestConfig, example: dict[str, Any], passes: _Passes, raw_rates: list[float]
) -> dict[str, Any]:
    raw_rate = statistics.median(raw_rates)
    known, new, nats, same_box = passes.known, passes.new, passes.nats, passes.same_box
    http_known = known.signals / known.seconds
    http_new = new.signals / new.seconds
    nats_rate = nats.signals / nats.commit_seconds
    single_rate = passes.nats_single.signals / passes.nats_single.commit_seconds
    http_ratio = http_known / raw_rate
    nats_ratio = nats_rate / raw_rate
    return {
        "benchmark": "ingest",
        "config": asdict(config),
        "signal_example": example,
        "deployment": "ingest tier alone: `chorus serve` with CHORUS_PROJECTIONS=false and "
        "`chorus projections run` beside it, paused (SIGSTOP) while signals go in, as if it had "
        "cores of its own; *_attributed_*: that worker alone, resumed after the last commit, "
        "until every Signal.Recorded is in the log. same_box_*: `chorus serve` as the demo runs "
        "it, worker included, timed from the first request",
        "http": "POST /v1/events (subprocess service), bodies encoded beforehand, timed until "
        "the last answer (every signal committed)",
        "nats": f"publish_async to {passes.subject}, {config.nats_batch_size} signals a message "
        '(`{"signals": [...]}`, Nats-Msg-Id = batch id); single: one signal a message '
        "(Nats-Msg-Id = signal id). Timed from the first publish until the log holds every "
        "Signal.Received (committed); attributed: every Signal.Recorded",
        "baseline": "asyncpg executemany INSERT INTO bench_signals_raw (text PK, jsonb columns), "
        f"one transaction per batch of {config.batch_size}, {config.http_clients} connections, "
        f"median of {config.raw_repeats} runs of {config.known_signals} rows",
        "http_known_signals_per_s": round(http_known, 1),
        "http_known_seconds": round(known.seconds, 3),
        "http_known_attributed_signals_per_s": round(known.signals / known.attributed_seconds, 1),
        "http_known_attributed_seconds": round(known.attributed_seconds, 3),
        "http_new_customers_signals_per_s": round(http_new, 1),
        "http_new_customers_seconds": round(new.seconds, 3),
        "http_new_customers_attributed_signals_per_s": round(
            new.signals / new.attributed_seconds, 1
        ),
        "nats_signals_per_s": round(nats_rate, 1),
        "nats_seconds": round(nats.commit_seconds, 3),
        "nats_attributed_signals_per_s": round(nats.signals / nats.attributed_seconds, 1),
        "nats_attributed_seconds": round(nats.attributed_seconds, 3),
        "nats_single_message_signals_per_s": round(single_rate, 1),
        "nats_single_message_seconds": round(passes.nats_single.commit_seconds, 3),
        "nats_single_message_attributed_signals_per_s": round(
            passes.nats_single.signals / passes.nats_single.attributed_seconds, 1
        ),
        "nats_single_message_publish_per_s": round(
            passes.nats_single.messages / passes.nats_single.publish_seconds, 1
        ),
        "nats_single_message_ratio": round(single_rate / raw_rate, 3),
        "nats_publish_per_s": round(nats.signals / nats.publish_seconds, 1),
        "nats_publish_seconds": round(nats.publish_seconds, 3),
        "nats_left_after_publish": nats.left_after_publish,
        "nats_after_publish_signals_per_s": round(
            nats.left_after_publish / nats.seconds_after_publish, 1
        ),
        "same_box_http_signals_per_s": round(same_box.signals / same_box.seconds, 1),
        "same_box_http_attributed_signals_per_s": round(
            same_box.signals / same_box.attributed_seconds, 1
        ),
        "same_box_http_ratio": round(same_box.signals / same_box.seconds / raw_rate, 3),
        "raw_executemany_rows_per_s": round(raw_rate, 1),
        "raw_executemany_repeats_rows_per_s": [round(r, 1) for r in raw_rates],
        "http_ratio": round(http_ratio, 3),
        "http_new_customers_ratio": round(http_new / raw_rate, 3),
        "nats_ratio": round(nats_ratio, 3),
        "target_signals_per_s": TARGET_SIGNALS_PER_S,
        "target_ratio": TARGET_RATIO,
        "http_meets_target": _meets(http_known, http_ratio),
        "nats_meets_target": _meets(nats_rate, nats_ratio),
        "meets_target": _meets(http_known, http_ratio) and _meets(nats_rate, nats_ratio),
    }
