from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

import nats
import pytest

from tests.e2e.service import ChorusProcess

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


async def _delete_streams(service: ChorusProcess) -> None:
    nc = await nats.connect(service.nats_url)
    try:
        js = nc.jetstream()
        for name in (service.signal_stream, service.dead_letter_stream, service.outbound_stream):
            with contextlib.suppress(Exception):
                await js.delete_stream(name)
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def running_chorus(
    database_url: str, nats_url: str, log_path: Path
) -> AsyncIterator[ChorusProcess]:
    """A service on its own database and streams, with an admin key as `admin_key`."""
    service = ChorusProcess(database_url, nats_url, f"E2E_{uuid.uuid4().hex[:8].upper()}", log_path)
    service.admin_key = service.chorus("keys", "create", "--role", "admin")  # type: ignore[attr-defined]
    service.start()
    try:
        yield service
    finally:
        service.stop()
        await _delete_streams(service)


@pytest.fixture
async def chorus(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[ChorusProcess]:
    """A running service with a fresh database and streams; `chorus.admin_key` is an admin key."""
    async with running_chorus(database_url, nats_url, tmp_path / "chorus.log") as service:
        yield service
