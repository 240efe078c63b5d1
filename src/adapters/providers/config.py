"""Provider accounts as configuration: a list of providers, read from JSON or TOML.

Each provider names its `type` (`smtp`, `email_api`, `twilio`, `whatsapp_cloud`, `fcm`), that
type's connection settings and credentials, its `priority` within its channel (lower is tried
first), its limits, its breaker and its price. Credentials are `Secret`s: repr, str, logs and
`dump_config` show them as `***`. Errors say where, as a JSON path: `... - at
`$.providers[1].timeout_seconds``. See docs/providers.md.
"""

from __future__ import annotations

import hmac
import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Final, Literal, final

import msgspec

from domain.policy.vocabulary import Channel

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ENV_VARIABLE",
    "BreakerSettings",
    "EmailApiSettings",
    "FcmSettings",
    "Name",
    "PriceSettings",
    "ProviderConfigError",
    "ProviderSettings",
    "ProvidersConfig",
    "Secret",
    "SmtpSettings",
    "TwilioSettings",
    "WhatsAppCloudSettings",
    "dump_config",
    "enc_hook",
    "load_provider_config",
    "parse_provider_config",
    "provider_config_from_env",
]

ENV_VARIABLE: Final = "CHORUS_PROVIDERS"
_MASK: Final = "***"


@final
class Secret:
    """A credential. Only `reveal()` gives it; repr, str, logs and msgspec show `***`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a secret is a string")
        self._value = value

    def reveal(self) -> str:
        """The credential itself, for the one place that sends it to the provider."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __structlog__(self) -> str:  # structlog's JSON renderer asks for this first
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


def enc_hook(value: object) -> object:
    """msgspec's `enc_hook` for configurations: a Secret is encoded as `***`."""
    if isinstance(value, Secret):
        return _MASK
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


def _dec_hook(kind: type, value: object) -> object:
    if kind is Secret:
        if not isinstance(value, str) or not value:
            raise TypeError("Expected a non-empty `str` (a secret)")
        return Secret(value)
    raise NotImplementedError


Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
"""Lower-case letters, digits, `_`, `.` and `-`: it is a path segment of the webhook URL."""
Text = Annotated[str, msgspec.Meta(min_length=1)]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/]+[^\s]*$")]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
Prefix = Annotated[str, msgspec.Meta(pattern=r"^\+[0-9]{1,15}$")]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]


class ProviderConfigError(ValueError):
    """The provider configuration is invalid; the message says where, as a JSON path."""


class BreakerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Open after `failure_threshold` consecutive retryable failures; try again after `reset_seconds`."""

    failure_threshold: Annotated[int, msgspec.Meta(ge=1)] = 5
    reset_seconds: Seconds = 30.0


def _non_negative(amount: Decimal, where: str) -> None:
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{where} must be a non-negative decimal")


class PriceSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one message costs: `amount`, or the amount of the longest matching number prefix."""

    amount: Decimal
    currency: Currency
    prefixes: dict[Prefix, Decimal] = {}

    def __post_init__(self) -> None:
        _non_negative(self.amount, "amount")
        for prefix, amount in self.prefixes.items():
            _non_negative(amount, f"the amount for {prefix}")


class _Provider(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"
):
    """What every provider has, whatever its type."""

    CHANNEL: ClassVar[Channel]

    name: Name
    priority: Annotated[int, msgspec.Meta(ge=0)] = 100
    timeout_seconds: Seconds = 10.0
    max_concurrency: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 16
    rate_per_second: Seconds | None = None
    breaker: BreakerSettings = msgspec.field(default_factory=BreakerSettings)
    price: PriceSettings | None = None
    enabled: bool = True

    @property
    def channel(self) -> Channel:
        """The channel this type of provider carries."""
        return self.CHANNEL


class SmtpSettings(_Provider, frozen=True, kw_only=True, tag="smtp"):
    """An SMTP server; `use_tls` is TLS from the start (465), `start_tls` upgrades (587)."""

    CHANNEL = Channel.EMAIL

    host: Text
    sender: Text
    port: Port = 587
    username: str | None = None
    password: Secret | None = None
    use_tls: bool = False
    start_tls: bool = False
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 4

    def __post_init__(self) -> None:
        if self.use_tls and self.start_tls:
            raise ValueError("use_tls and start_tls are mutually exclusive")


class EmailApiSettings(_Provider, frozen=True, kw_only=True, tag="email_api"):
    """The JSON email API (see `adapters.providers.email_api`)."""

    CHANNEL = Channel.EMAIL

    base_url: Url
    api_key: Secret
    webhook_secret: Secret
    sender: Text


class TwilioSettings(_Provider, frozen=True, kw_only=True, tag="twilio"):
    """One Twilio account and sending number; webhooks are signed with the auth token."""

    CHANNEL = Channel.SMS

    account_sid: Text
    auth_token: Secret
    from_number: Text
    base_url: Url = "https://api.twilio.com"
    status_callback_url: Url | None = None


class WhatsAppCloudSettings(_Provider, frozen=True, kw_only=True, tag="whatsapp_cloud"):
    """One WhatsApp business number; webhooks are signed with the app secret."""

    CHANNEL = Channel.WHATSAPP

    phone_number_id: Text
    access_token: Secret
    app_secret: Secret
    base_url: Url = "https://graph.facebook.com"


class FcmSettings(_Provider, frozen=True, kw_only=True, tag="fcm"):
    """One Firebase project, with an OAuth 2.0 access token for FCM's HTTP v1 API."""

    CHANNEL = Channel.PUSH

    project_id: Text
    access_token: Secret
    base_url: Url = "https://fcm.googleapis.com"


ProviderSettings = (
    SmtpSettings | EmailApiSettings | TwilioSettings | WhatsAppCloudSettings | FcmSettings
)


class ProvidersConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Every configured provider; names are unique."""

    providers: tuple[ProviderSettings, ...] = ()

    def __post_init__(self) -> None:
        seen: dict[str, int] = {}
        for index, provider in enumerate(self.providers):
            if provider.name in seen:
                raise ValueError(
                    f"the name {provider.name!r} is already taken by providers"
                    f"[{seen[provider.name]}] - at `$.providers[{index}].name`"
                )
            seen[provider.name] = index

    def for_channel(self, channel: Channel) -> list[ProviderSettings]:
        """The enabled providers of `channel` in failover order: priority, then listed order."""
        enabled = [p for p in self.providers if p.enabled and p.channel is channel]
        return sorted(enabled, key=lambda p: p.priority)  # sorted() keeps ties in listed order


def _convert(raw: object, source: str) -> ProvidersConfig:
    if isinstance(raw, list):
        raw = {"providers": raw}
    try:
        return msgspec.convert(raw, ProvidersConfig, dec_hook=_dec_hook)
    except msgspec.ValidationError as error:
        raise ProviderConfigError(f"{source}: {error}") from None


def parse_provider_config(
    text: str | bytes,
    *,
    format: Literal["json", "toml"] = "json",
    source: str = ENV_VARIABLE,
) -> ProvidersConfig:
    """Parses `{"providers": [...]}` (or just the list, in JSON); raises ProviderConfigError."""
    if format == "toml":
        try:
            raw: object = tomllib.loads(text.decode() if isinstance(text, bytes) else text)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ProviderConfigError(f"{source}: {error}") from None
    else:
        try:
            raw = msgspec.json.decode(text)
        except msgspec.DecodeError as error:
            raise ProviderConfigError(f"{source}: {error}") from None
    return _convert(raw, source)


def load_provider_config(
    source: str | os.PathLike[str], *, name: str = ENV_VARIABLE
) -> ProvidersConfig:
    """JSON text as it is (errors then start with `name`), or the path of a `.json` or `.toml` file."""
    if isinstance(source, str) and source.lstrip().startswith(("{", "[")):
        return parse_provider_config(source, source=name)
    path = Path(source)
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ProviderConfigError(f"{path}: cannot be read ({error.strerror})") from None
    kind: Literal["json", "toml"] = "toml" if path.suffix.lower() == ".toml" else "json"
    return parse_provider_config(content, format=kind, source=str(path))


def provider_config_from_env(
    environ: Mapping[str, str] | None = None, variable: str = ENV_VARIABLE
) -> ProvidersConfig | None:
    """The configuration in `CHORUS_PROVIDERS` (JSON text or a file path); None when unset."""
    value = (os.environ if environ is None else environ).get(variable, "").strip()
    if not value:
        return None
    return load_provider_config(value, name=variable)


def dump_config(config: ProvidersConfig) -> bytes:
    """The configuration as JSON, secrets shown as `***`: safe for logs and API answers."""
    return msgspec.json.encode(config, enc_hook=enc_hook)
