"""The configured providers, built and guarded: by name, and by channel in failover order."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from adapters.providers.config import (
    EmailApiSettings,
    FcmSettings,
    SmtpSettings,
    TwilioSettings,
    WhatsAppCloudSettings,
)
from adapters.providers.email_api import EmailApiProvider
from adapters.providers.fcm_push import FcmPushProvider
from adapters.providers.guarded import GuardedProvider, Limits
from adapters.providers.smtp import SmtpProvider
from adapters.providers.twilio_sms import TwilioSmsProvider
from adapters.providers.whatsapp_cloud import WhatsAppCloudProvider

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from decimal import Decimal

    from adapters.providers.config import PriceSettings, ProvidersConfig, ProviderSettings
    from adapters.providers.guarded import BreakerState
    from domain.policy.vocabulary import Channel
    from ports.providers import Provider

__all__ = ["ConfiguredProvider", "ConfiguredProviderDirectory", "PriceTable", "build_providers"]


@dataclass(frozen=True, slots=True)
class PriceTable:
    """A price per message; phone numbers may have their own, by longest matching prefix."""

    amount: Decimal
    currency: str
    prefixes: tuple[tuple[str, Decimal], ...] = ()  # digits without the "+", longest first

    @classmethod
    def from_settings(cls, settings: PriceSettings) -> Self:
        """The table for a provider's `price` settings."""
        by_length = sorted(settings.prefixes.items(), key=lambda item: -len(item[0]))
        return cls(
            settings.amount,
            settings.currency,
            tuple((prefix.removeprefix("+"), amount) for prefix, amount in by_length),
        )

    def price_for(self, recipient: str) -> tuple[Decimal, str]:
        """The price of one message to `recipient` (`+447...`, a WhatsApp id, an address)."""
        digits = recipient.removeprefix("+")
        if digits.isdigit():
            for prefix, amount in self.prefixes:
                if digits.startswith(prefix):
                    return amount, self.currency
        return self.amount, self.currency


@dataclass(frozen=True, slots=True)
class ConfiguredProvider:
    """One provider as configured: the guarded adapter, its place in failover, its price."""

    settings: ProviderSettings  # secrets stay masked when this is shown
    provider: GuardedProvider
    prices: PriceTable | None

    @property
    def name(self) -> str:
        """The provider's configured name."""
        return self.settings.name

    @property
    def channel(self) -> Channel:
        """The channel it carries."""
        return self.settings.channel

    @property
    def priority(self) -> int:
        """Its place in its channel's failover order: lower is tried first."""
        return self.settings.priority

    @property
    def enabled(self) -> bool:
        """Whether sends go to it; a disabled provider still parses its webhooks."""
        return self.settings.enabled

    @property
    def limits(self) -> Limits:
        """Its timeout, concurrency and rate limits and breaker settings."""
        return self.provider.limits

    def price_for(self, recipient: str) -> tuple[Decimal, str] | None:
        """What one message to `recipient` costs, if a price is configured."""
        return self.prices.price_for(recipient) if self.prices is not None else None


def _limits(settings: ProviderSettings) -> Limits:
    return Limits(
        timeout_seconds=settings.timeout_seconds,
        max_concurrency=settings.max_concurrency,
        rate_per_second=settings.rate_per_second,
        failure_threshold=settings.breaker.failure_threshold,
        reset_seconds=settings.breaker.reset_seconds,
    )


def _adapter(settings: ProviderSettings) -> Provider:
    """The adapter for one provider's settings.

    An HTTP adapter keeps alive as many connections as the provider may use at once.
    """
    name, timeout = settings.name, settings.timeout_seconds
    connections = settings.max_concurrency
    if isinstance(settings, SmtpSettings):
        return SmtpProvider(
            name,
            host=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password.reveal() if settings.password else None,
            use_tls=settings.use_tls,
            start_tls=settings.start_tls,
            sender=settings.sender,
            timeout=timeout,
            max_connections=min(settings.max_connections, settings.max_concurrency),
        )
    adapter: Provider
    match settings:
        case EmailApiSettings():
            adapter = EmailApiProvider(
                name,
                base_url=settings.base_url,
                api_key=settings.api_key.reveal(),
                webhook_secret=settings.webhook_secret.reveal(),
                sender=settings.sender,
                timeout=timeout,
                max_connections=connections,
            )
        case TwilioSettings():
            adapter = TwilioSmsProvider(
                name,
                base_url=settings.base_url,
                account_sid=settings.account_sid,
                auth_token=settings.auth_token.reveal(),
                from_number=settings.from_number,
                status_callback_url=settings.status_callback_url,
                timeout=timeout,
                max_connections=connections,
            )
        case WhatsAppCloudSettings():
            adapter = WhatsAppCloudProvider(
                name,
                base_url=settings.base_url,
                phone_number_id=settings.phone_number_id,
                access_token=settings.access_token.reveal(),
                app_secret=settings.app_secret.reveal(),
                timeout=timeout,
                max_connections=connections,
            )
        case FcmSettings():
            adapter = FcmPushProvider(
                name,
                base_url=settings.base_url,
                project_id=settings.project_id,
                access_token=settings.access_token.reveal(),
                timeout=timeout,
                max_connections=connections,
            )
    return adapter


def build_providers(
    config: ProvidersConfig,
    *,
    clock: Callable[[], float] = time.monotonic,
    on_breaker: Callable[[str, BreakerState], None] | None = None,
) -> list[ConfiguredProvider]:
    """Every configured provider, enabled or not, each behind its guards, in listed order;
    `on_breaker` hears each change of a breaker (see `GuardedProvider`)."""
    built: list[ConfiguredProvider] = []
    for settings in config.providers:
        guarded = GuardedProvider(
            _adapter(settings), _limits(settings), clock=clock, on_breaker=on_breaker
        )
        prices = PriceTable.from_settings(settings.price) if settings.price else None
        built.append(ConfiguredProvider(settings, guarded, prices))
    return built


class ConfiguredProviderDirectory:
    """The `ProviderDirectory` port over built providers; it closes them all on `close`."""

    def __init__(self, configured: Iterable[ConfiguredProvider]) -> None:
        self._all = tuple(configured)
        self._by_name = {c.name: c for c in self._all}
        if len(self._by_name) != len(self._all):
            raise ValueError("provider names must be unique")
        order = sorted((c for c in self._all if c.enabled), key=lambda c: c.priority)
        self._by_channel: dict[Channel, tuple[GuardedProvider, ...]] = {}
        for configured_provider in order:
            channel = configured_provider.channel
            self._by_channel[channel] = (
                *self._by_channel.get(channel, ()),
                configured_provider.provider,
            )

    @classmethod
    def from_config(
        cls,
        config: ProvidersConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_breaker: Callable[[str, BreakerState], None] | None = None,
    ) -> Self:
        """Builds every provider of `config`."""
        return cls(build_providers(config, clock=clock, on_breaker=on_breaker))

    def __iter__(self) -> Iterator[ConfiguredProvider]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    @property
    def channels(self) -> frozenset[Channel]:
        """The channels at least one enabled provider carries."""
        return frozenset(self._by_channel)

    def for_channel(self, channel: Channel) -> Sequence[GuardedProvider]:
        """The enabled providers of `channel`: lowest priority first, ties in listed order."""
        return self._by_channel.get(channel, ())

    def get(self, name: str) -> GuardedProvider | None:
        """The provider of that name, enabled or not."""
        configured = self._by_name.get(name)
        return configured.provider if configured is not None else None

    def configured(self, name: str) -> ConfiguredProvider | None:
        """The provider of that name with its settings and prices."""
        return self._by_name.get(name)

    def price(self, provider_name: str, recipient: str) -> tuple[Decimal, str] | None:
        """The configured price of one message to `recipient` through that provider."""
        configured = self._by_name.get(provider_name)
        return configured.price_for(recipient) if configured is not None else None

    async def close(self) -> None:
        """Closes every provider and its HTTP client."""
        for configured in self._all:
            await configured.provider.close()
