"""What every HTTP provider adapter shares: its name, its client, and transport failures."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from domain.policy.vocabulary import Channel
from ports.providers import ProviderError

__all__ = ["HttpProvider"]


class HttpProvider:
    """Owns the HTTP client unless one is given; timeouts and unreachable hosts are retryable."""

    CHANNEL: ClassVar[Channel]
    LABEL: ClassVar[str]  # how errors name the provider's API, e.g. "twilio"

    def __init__(self, name: str, *, timeout: float, client: httpx.AsyncClient | None) -> None:
        self._name = name
        self._timeout = httpx.Timeout(timeout)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=self._timeout)

    @property
    def name(self) -> str:
        """The configured provider's name."""
        return self._name

    @property
    def channel(self) -> Channel:
        """The channel this provider carries."""
        return self.CHANNEL

    async def _post(self, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.post(url, timeout=self._timeout, **kwargs)
        except httpx.TimeoutException:
            raise ProviderError(f"{self.LABEL} timed out", retryable=True) from None
        except httpx.TransportError as error:
            raise ProviderError(
                f"{self.LABEL} unreachable: {type(error).__name__}", retryable=True
            ) from None

    async def close(self) -> None:
        """Closes the HTTP client if this provider made it."""
        if self._owns_client:
            await self._client.aclose()
