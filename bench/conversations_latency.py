"""The conversations bench's latency part alone, at a rate of your choosing, for comparing two
versions of the code on a shared machine: `python -m bench.conversations_latency --rate 50`.

Each run gets a fresh database and its own service, as in `python -m bench conversations`, and
prints the latency figures as JSON (nothing is written to `bench/results/`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.conversations import ConversationsConfig, latency_on_service
from bench.servers import fresh_database, running_servers
from entrypoints.event_loop import loop_factory

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.conversations_latency", description=__doc__
    )
    parser.add_argument("--rate", type=int, default=50, help="inbound messages a second")
    parser.add_argument("--seconds", type=float, default=6.0, help="how long the rate is kept")
    parser.add_argument("--open", type=int, default=300, help="conversations open before")
    parser.add_argument("--runs", type=int, default=1, help="runs one after the other")
    parser.add_argument("--logs", type=Path, help="keep the services' logs in this folder")
    return parser


async def _runs(config: ConversationsConfig, runs: int, logs: Path | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with running_servers() as servers, tempfile.TemporaryDirectory(prefix="chorus-lat-") as tmp:
        folder = logs or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(runs):
            load = os.getloadavg()[0]
            async with fresh_database(servers.database_url) as dsn:
                result = await latency_on_service(servers, dsn, folder, config)
            found.append({"load_average_1m_at_start": load, **result})
            print(json.dumps(_brief(found[-1])), file=sys.stderr, flush=True)
    return found


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    names = (
        "load_average_1m_at_start", "offered_messages_per_s", "routed_ms_p50", "routed_ms_p99",
        "raw_committed_ms_p50", "raw_committed_ms_p99", "cpu_ms_per_message",
        "cpu_ms_per_message_by_part", "transactions_per_message", "rows_written_per_message",
    )  # fmt: skip
    return {name: result[name] for name in names}


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    config = ConversationsConfig(open_conversations=args.open, rate=args.rate, seconds=args.seconds)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        results = runner.run(_runs(config, args.runs, args.logs))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
