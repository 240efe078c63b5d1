"""Signal batches POSTed to `/v1/events` of a running service by a few concurrent clients."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import msgspec

from bench.timing import run_all

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["post_batches"]


class _Answer(msgspec.Struct):
    accepted: int
    duplicates: int


_decode = msgspec.json.Decoder(_Answer).decode


async def post_batches(
    base_url: str, api_key: str, bodies: Sequence[tuple[int, bytes]], clients: int
) -> tuple[int, float]:
    """POSTs every body; returns (signals committed, seconds). Anything but all accepted fails."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=300, limits=limits
    ) as client:

        async def post(item: tuple[int, bytes]) -> int:
            count, body = item
            response = await client.post("/v1/events", content=body)
            if response.status_code != 202:
                raise RuntimeError(f"POST /v1/events: {response.status_code} {response.text[:500]}")
            answer = _decode(response.content)
            if answer.accepted != count:
                raise RuntimeError(f"{answer.accepted} of {count} signals accepted")
            return answer.accepted

        return await run_all(bodies, clients, post)
