"""What the figures were measured on."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from bench.servers import Servers

__all__ = ["describe", "now"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def describe(servers: Servers) -> dict[str, Any]:
    conn = await asyncpg.connect(servers.database_url)
    try:
        settings = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
        }
    finally:
        await conn.close()
    return {
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            # Other work on the machine skews figures; this says how busy it was at the start.
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
            "postgres_version": settings.pop("server_version"),
            "postgres_settings": settings,
            "postgres": servers.postgres,
            "nats": servers.nats,
        },
    }
