"""Stopping a running service: SIGINT ends it within seconds, even while a client holds a live
stream open and never goes (requests under way get `GRACEFUL_SHUTDOWN_SECONDS`)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from entrypoints.service import GRACEFUL_SHUTDOWN_SECONDS

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e


async def test_a_stop_ends_a_live_stream_its_client_keeps_open(chorus: ChorusProcess) -> None:
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    async with (
        httpx.AsyncClient(base_url=chorus.base_url, headers=headers, timeout=60) as http,
        http.stream("GET", "/v1/conversations/stream") as stream,
    ):
        assert stream.status_code == 200
        started = time.monotonic()
        code = await asyncio.to_thread(chorus.stop)
        took = time.monotonic() - started
    assert code == 0
    # The stream's grace, and a few seconds for everything behind HTTP to stop.
    assert took < GRACEFUL_SHUTDOWN_SECONDS + 10
