"""Runs the chosen benchmarks on one set of servers, writes their JSON and prints a summary."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TYPE_CHECKING, Any, TypeVar

from bench.append import AppendConfig, run_append
from bench.assistant import run_assistant
from bench.audit import AuditConfig, run_audit
from bench.audit_verify import AuditVerifyConfig, run_audit_verify
from bench.campaigns import CampaignsConfig, run_campaigns
from bench.conversations import ConversationsConfig, run_conversations
from bench.dispatch import DispatchConfig, run_dispatch
from bench.ingest import IngestConfig, run_ingest
from bench.machine import describe, now
from bench.profiling import profiled, top
from bench.projections import ProjectionsConfig, run_projections
from bench.projections_live import LiveConfig
from bench.report import RESULTS_DIR, read, summary, write
from bench.rules import RulesConfig, run_rules
from bench.servers import fresh_database, running_servers
from entrypoints.event_loop import loop_factory

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence

    from bench.servers import Servers

__all__ = ["main"]

T = TypeVar("T")

BENCHMARKS = (
    "ingest", "append", "rules", "dispatch", "projections", "campaigns", "assistant", "audit",
    "audit-verify", "conversations",
)  # fmt: skip
QUICK_APPEND = AppendConfig(duration=1.0, warmup=0.3, rounds=1)
QUICK_INGEST = IngestConfig(
    customers=2_000, known_signals=5_000, nats_signals=5_000, nats_single_signals=2_000
)
QUICK_PROJECTIONS = ProjectionsConfig(events=100_000, customers=5_000, merges=50)
QUICK_LIVE = LiveConfig(burst_signals=10_000, customers=1_000, steady_seconds=3.0)
QUICK_RULES = RulesConfig(passes=4, runs=3, duration=1.0, warmup=0.3, rounds=1)
QUICK_AUDIT = AuditConfig(queries=100, cold_queries=40, warmup=2, other_customers=100)
QUICK_AUDIT_VERIFY = AuditVerifyConfig(events=100_000)
QUICK_CAMPAIGNS = CampaignsConfig(customers=2_000, waiters=1_000, single_sends=300)
QUICK_CONVERSATIONS = ConversationsConfig(open_conversations=300, seconds=3.0, queued=200)
QUICK_DISPATCH = DispatchConfig(
    messages=2_000, rounds=1, customers=200, isolation_messages=2_000, hung_messages=2_000,
    isolation_rounds=1, warmup_posts=300,
)  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar=(
            "{ingest,append,rules,dispatch,projections,campaigns,assistant,audit,audit-verify,"
            "conversations}"
        ),
        help="default: all of them",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the append, rules and dispatch benchmarks' process, the projections "
        "benchmark's rebuilds, the campaigns benchmark's broadcast and the ingest service; "
        "writes bench/results/<name>.prof and prints the top functions",
    )
    return parser


async def _run(
    servers: Servers, names: Sequence[str], quick: bool, profiling: bool
) -> dict[str, dict[str, Any]]:
    info = await describe(servers)
    info["machine"]["event_loop"] = "uvloop" if loop_factory() else "asyncio"
    info["quick"] = quick
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        profile = RESULTS_DIR / f"{name}.prof" if profiling else None
        started = now()
        async with fresh_database(servers.database_url) as dsn:
            if name == "append":
                with profiled(profile):
                    result = await run_append(dsn, QUICK_APPEND if quick else AppendConfig())
            elif name == "rules":
                with profiled(profile):
                    result = await run_rules(dsn, QUICK_RULES if quick else RulesConfig())
            elif name == "dispatch":
                with profiled(profile):
                    result = await run_dispatch(dsn, QUICK_DISPATCH if quick else DispatchConfig())
            elif name == "assistant":
                result = await asyncio.to_thread(run_assistant, quick)
            elif name == "audit":
                result = await run_audit(dsn, QUICK_AUDIT if quick else AuditConfig())
            elif name == "audit-verify":
                verify = QUICK_AUDIT_VERIFY if quick else AuditVerifyConfig()
                result = await run_audit_verify(dsn, verify)
            elif name == "campaigns":
                config = QUICK_CAMPAIGNS if quick else CampaignsConfig()
                result = await run_campaigns(dsn, config, profile=profile)
            elif name == "conversations":
                config = QUICK_CONVERSATIONS if quick else ConversationsConfig()
                result = await run_conversations(servers, dsn, config, quick=quick)
            elif name == "projections":
                projections = QUICK_PROJECTIONS if quick else ProjectionsConfig()
                live = QUICK_LIVE if quick else LiveConfig()
                result = await run_projections(servers, dsn, projections, live, profile=profile)
            else:
                config = QUICK_INGEST if quick else IngestConfig()
                result = await run_ingest(servers, dsn, config, profile=profile)
        results[name] = {"timestamp": started, **info, **result}
        if name == "audit-verify":  # its figures go beside the as-of ones, in audit.json
            path = write("audit", {**read("audit", quick), "verify": results[name]}, quick)
        elif name == "audit" and "verify" in (kept := read("audit", quick)):
            path = write(name, {**results[name], "verify": kept["verify"]})  # taken apart
        else:
            path = write(name, results[name])
        print(f"wrote {path}", file=sys.stderr, flush=True)
        if profile is not None:
            print(f"profile in {profile}:\n{top(profile)}", file=sys.stderr, flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = set(args.benchmarks) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    names = [n for n in BENCHMARKS if not args.benchmarks or n in args.benchmarks]
    signal.signal(signal.SIGTERM, _exit)  # until the loop runs: the servers' `finally` runs
    with running_servers() as servers, asyncio.Runner(loop_factory=loop_factory()) as runner:
        try:
            results = runner.run(
                _stopped_by_sigterm(_run(servers, names, args.quick, args.profile))
            )
        except asyncio.CancelledError:
            # A timeout's SIGTERM: the servers are stopped on the way out, then we end as killed.
            print("stopped by SIGTERM", file=sys.stderr, flush=True)
            results = None
    if results is None:
        sys.exit(128 + signal.SIGTERM)
    print(summary(results))


def _exit(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


async def _stopped_by_sigterm(work: Coroutine[Any, Any, T]) -> T:
    """Runs `work`, cancelled by SIGTERM as Ctrl-C would, so every `finally` on the way runs."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await work
