"""Provider configuration: what it accepts, how it says what is wrong, and that secrets stay hidden."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import structlog

from adapters.providers.config import (
    EmailApiSettings,
    FcmSettings,
    ProviderConfigError,
    ProvidersConfig,
    Secret,
    SmtpSettings,
    TwilioSettings,
    WhatsAppCloudSettings,
    dump_config,
    enc_hook,
    load_provider_config,
    parse_provider_config,
    provider_config_from_env,
)
from adapters.providers.directory import ConfiguredProviderDirectory, PriceTable, build_providers
from adapters.providers.email_api import EmailApiProvider
from adapters.providers.fcm_push import FcmPushProvider
from adapters.providers.guarded import GuardedProvider, Limits
from adapters.providers.smtp import SmtpProvider
from adapters.providers.twilio_sms import TwilioSmsProvider
from adapters.providers.whatsapp_cloud import WhatsAppCloudProvider
from domain.policy.vocabulary import Channel

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from ports.providers import ProviderDirectory

SECRETS = (
    "twilio-auth-SECRET",
    "wa-access-SECRET",
    "wa-app-SECRET",
    "email-key-SECRET",
    "email-hook-SECRET",
    "smtp-password-SECRET",
    "fcm-token-SECRET",
)


def example() -> dict[str, Any]:
    return {
        "providers": [
            {
                "name": "twilio-main",
                "type": "twilio",
                "priority": 10,
                "account_sid": "AC0123",
                "auth_token": "twilio-auth-SECRET",
                "from_number": "+15005550001",
                "timeout_seconds": 5,
                "max_concurrency": 32,
                "rate_per_second": 50,
                "breaker": {"failure_threshold": 3, "reset_seconds": 20},
                "price": {"amount": "0.0079", "currency": "USD", "prefixes": {"+44": "0.04"}},
            },
            {
                "name": "twilio-backup",
                "type": "twilio",
                "priority": 20,
                "account_sid": "AC4567",
                "auth_token": "twilio-auth-SECRET",
                "from_number": "+15005550002",
            },
            {
                "name": "whatsapp",
                "type": "whatsapp_cloud",
                "phone_number_id": "1065",
                "access_token": "wa-access-SECRET",
                "app_secret": "wa-app-SECRET",
            },
            {
                "name": "email-api",
                "type": "email_api",
                "priority": 1,
                "base_url": "https://mail.example.com",
                "api_key": "email-key-SECRET",
                "webhook_secret": "email-hook-SECRET",
                "sender": "Chorus <news@chorus.example>",
            },
            {
                "name": "smtp",
                "type": "smtp",
                "priority": 2,
                "host": "smtp.example.com",
                "port": 465,
                "use_tls": True,
                "username": "chorus",
                "password": "smtp-password-SECRET",
                "sender": "Chorus <news@chorus.example>",
            },
            {
                "name": "push",
                "type": "fcm",
                "project_id": "chorus-app",
                "access_token": "fcm-token-SECRET",
                "enabled": False,
            },
        ]
    }


def parse(document: Any) -> ProvidersConfig:
    return parse_provider_config(json.dumps(document))


def with_provider(index: int, **changes: Any) -> dict[str, Any]:
    document = example()
    document["providers"][index].update(changes)
    return document


def error_of(document: Any) -> str:
    with pytest.raises(ProviderConfigError) as raised:
        parse(document)
    return str(raised.value)


@pytest.fixture
async def directory() -> AsyncIterator[ConfiguredProviderDirectory]:
    built = ConfiguredProviderDirectory.from_config(parse(example()))
    yield built
    await built.close()


class TestParsing:
    def test_each_type_reads_into_its_own_settings(self) -> None:
        config = parse(example())
        assert [type(p) for p in config.providers] == [
            TwilioSettings,
            TwilioSettings,
            WhatsAppCloudSettings,
            EmailApiSettings,
            SmtpSettings,
            FcmSettings,
        ]
        twilio = config.providers[0]
        assert isinstance(twilio, TwilioSettings)
        assert twilio.auth_token.reveal() == "twilio-auth-SECRET"
        assert (twilio.timeout_seconds, twilio.max_concurrency, twilio.rate_per_second) == (
            5.0,
            32,
            50.0,
        )
        assert (twilio.breaker.failure_threshold, twilio.breaker.reset_seconds) == (3, 20.0)
        assert twilio.price is not None
        assert twilio.price.amount == Decimal("0.0079")
        assert twilio.price.prefixes == {"+44": Decimal("0.04")}

    def test_what_is_left_out_has_defaults(self) -> None:
        [whatsapp] = parse([example()["providers"][2]]).providers
        assert isinstance(whatsapp, WhatsAppCloudSettings)
        assert whatsapp.base_url == "https://graph.facebook.com"
        assert (whatsapp.priority, whatsapp.enabled, whatsapp.price) == (100, True, None)
        assert (whatsapp.timeout_seconds, whatsapp.max_concurrency) == (10.0, 16)
        assert whatsapp.rate_per_second is None
        assert (whatsapp.breaker.failure_threshold, whatsapp.breaker.reset_seconds) == (5, 30.0)

    def test_a_bare_list_is_the_list_of_providers(self) -> None:
        assert parse(example()["providers"]) == parse(example())

    def test_no_providers_is_a_valid_configuration(self) -> None:
        assert parse({}).providers == ()

    def test_failover_order_is_priority_then_listed_order_and_skips_disabled(self) -> None:
        config = parse(example())
        assert [p.name for p in config.for_channel(Channel.EMAIL)] == ["email-api", "smtp"]
        assert [p.name for p in config.for_channel(Channel.SMS)] == [
            "twilio-main",
            "twilio-backup",
        ]
        assert config.for_channel(Channel.PUSH) == []


class TestErrors:
    @pytest.mark.parametrize(
        ("document", "expected"),
        [
            (with_provider(0, type="pigeon"), "Invalid value 'pigeon' - at `$.providers[0].type`"),
            (
                with_provider(1, timeout_seconds=0),
                "Expected `float` > 0.0 - at `$.providers[1].timeout_seconds`",
            ),
            (
                with_provider(2, max_concurrency="many"),
                "Expected `int`, got `str` - at `$.providers[2].max_concurrency`",
            ),
            (
                with_provider(0, breaker={"failure_threshold": 0}),
                "Expected `int` >= 1 - at `$.providers[0].breaker.failure_threshold`",
            ),
            (
                with_provider(0, price={"amount": "cheap", "currency": "USD"}),
                "Invalid decimal string - at `$.providers[0].price.amount`",
            ),
            (
                with_provider(0, price={"amount": "1", "currency": "usd"}),
                "at `$.providers[0].price.currency`",
            ),
            (
                with_provider(0, price={"amount": "1", "currency": "USD", "prefixes": {"44": "1"}}),
                "at `key` in `$.providers[0].price.prefixes`",
            ),
            (
                with_provider(0, price={"amount": "-0.01", "currency": "USD"}),
                "amount must be a non-negative decimal - at `$.providers[0].price`",
            ),
            (with_provider(3, colour="blue"), "unknown field `colour` - at `$.providers[3]`"),
            (with_provider(4, start_tls=True), "mutually exclusive - at `$.providers[4]`"),
            (with_provider(5, name="Push Main"), "at `$.providers[5].name`"),
            (with_provider(3, base_url="mail.example.com"), "at `$.providers[3].base_url`"),
            (
                with_provider(2, access_token=""),
                "a non-empty `str` (a secret) - at `$.providers[2].access_token`",
            ),
            (
                with_provider(2, app_secret=12345),
                "a non-empty `str` (a secret) - at `$.providers[2].app_secret`",
            ),
            (
                {"providers": [{"name": "x", "type": "twilio"}]},
                "missing required field `account_sid` - at `$.providers[0]`",
            ),
            (with_provider(1, name="twilio-main"), "already taken by providers[0]"),
        ],
    )
    def test_an_invalid_configuration_says_what_and_where(
        self, document: Any, expected: str
    ) -> None:
        message = error_of(document)
        assert message.startswith("CHORUS_PROVIDERS: ")
        assert expected in message

    def test_a_duplicate_name_is_pointed_at(self) -> None:
        message = error_of(with_provider(1, name="twilio-main"))
        assert message.endswith("- at `$.providers[1].name`")

    def test_malformed_json_is_a_configuration_error(self) -> None:
        with pytest.raises(ProviderConfigError, match="CHORUS_PROVIDERS: JSON is malformed"):
            parse_provider_config('{"providers": [,]}')
        with pytest.raises(ProviderConfigError, match="CHORUS_PROVIDERS: Input data was truncated"):
            parse_provider_config('{"providers": [')

    def test_an_error_never_shows_a_secret(self) -> None:
        document = with_provider(0, auth_token=["twilio-auth-SECRET"])
        message = error_of(document)
        assert "$.providers[0].auth_token" in message
        assert "SECRET" not in message


class TestSources:
    def test_json_text_or_a_json_or_toml_file(self, tmp_path: Path) -> None:
        expected = parse(example())
        as_json = tmp_path / "providers.json"
        as_json.write_text(json.dumps(example()))
        as_toml = tmp_path / "providers.toml"
        as_toml.write_text(TOML)
        assert load_provider_config(json.dumps(example())) == expected
        assert load_provider_config(as_json) == expected
        assert load_provider_config(str(as_json)) == expected
        assert load_provider_config(as_toml) == parse(
            {"providers": [example()["providers"][0], example()["providers"][4]]}
        )

    def test_a_file_names_itself_in_errors(self, tmp_path: Path) -> None:
        path = tmp_path / "providers.toml"
        path.write_text('[[providers]]\nname = "x"\ntype = "fcm"\nproject_id = 7\n')
        with pytest.raises(ProviderConfigError) as raised:
            load_provider_config(path)
        assert str(raised.value).startswith(f"{path}: ")
        assert "at `$.providers[0]" in str(raised.value)
        with pytest.raises(ProviderConfigError, match="cannot be read"):
            load_provider_config(tmp_path / "missing.json")
        path.write_text("[[providers]\n")
        with pytest.raises(ProviderConfigError, match=str(path)):
            load_provider_config(path)

    def test_the_environment_holds_json_or_a_path(self, tmp_path: Path) -> None:
        path = tmp_path / "providers.json"
        path.write_text(json.dumps(example()))
        assert provider_config_from_env({}) is None
        assert provider_config_from_env({"CHORUS_PROVIDERS": "  "}) is None
        assert provider_config_from_env({"CHORUS_PROVIDERS": str(path)}) == parse(example())
        assert provider_config_from_env(
            {"CHORUS_PROVIDERS": json.dumps(example()["providers"])}
        ) == parse(example())
        with pytest.raises(ProviderConfigError, match=r"^CHORUS_PROVIDERS: .*providers\[0\]"):
            provider_config_from_env({"CHORUS_PROVIDERS": '[{"name": "x"}]'})


TOML = """
[[providers]]
name = "twilio-main"
type = "twilio"
priority = 10
account_sid = "AC0123"
auth_token = "twilio-auth-SECRET"
from_number = "+15005550001"
timeout_seconds = 5
max_concurrency = 32
rate_per_second = 50
breaker = { failure_threshold = 3, reset_seconds = 20 }
price = { amount = "0.0079", currency = "USD", prefixes = { "+44" = "0.04" } }

[[providers]]
name = "smtp"
type = "smtp"
priority = 2
host = "smtp.example.com"
port = 465
use_tls = true
username = "chorus"
password = "smtp-password-SECRET"
sender = "Chorus <news@chorus.example>"
"""


class TestSecrets:
    def test_a_secret_shows_as_stars_and_only_reveal_gives_it(self) -> None:
        secret = Secret("hunter2")
        assert str(secret) == "***"
        assert repr(secret) == "Secret('***')"
        assert f"{secret} {secret!r}" == "*** Secret('***')"
        assert secret.reveal() == "hunter2"
        assert secret == Secret("hunter2")
        assert secret != Secret("hunter3")

    def test_repr_and_str_of_the_configuration_hide_every_secret(self) -> None:
        config = parse(example())
        for shown in (repr(config), str(config), repr(config.providers[4])):
            assert "***" in shown
            for secret in SECRETS:
                assert secret not in shown

    def test_a_dump_shows_stars_and_reads_as_the_same_shape(self) -> None:
        dumped = dump_config(parse(example()))
        for secret in SECRETS:
            assert secret.encode() not in dumped
        providers = json.loads(dumped)["providers"]
        assert providers[0]["auth_token"] == "***"
        assert providers[4]["password"] == "***"
        assert providers[0]["price"]["amount"] == "0.0079"
        assert msgspec.json.encode(Secret("x"), enc_hook=enc_hook) == b'"***"'

    def test_msgspec_without_the_hook_refuses_rather_than_leaks(self) -> None:
        with pytest.raises(TypeError):
            msgspec.json.encode(parse(example()))

    @pytest.mark.parametrize(
        "renderer",
        [
            structlog.processors.JSONRenderer(),
            structlog.processors.KeyValueRenderer(),
            structlog.processors.LogfmtRenderer(),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
    )
    def test_log_lines_show_stars(self, renderer: Any) -> None:
        config = parse(example())
        event = {
            "event": "providers loaded",
            "config": config,
            "token": config.providers[0].auth_token,  # type: ignore[union-attr]
            "nested": {"secret": Secret("smtp-password-SECRET")},
        }
        line = str(renderer(None, "info", event))
        assert "***" in line
        for secret in SECRETS:
            assert secret not in line

    def test_structlog_json_renders_a_secret_as_stars(self) -> None:
        line = structlog.processors.JSONRenderer()(None, "info", {"event": "x", "s": Secret("a")})
        assert json.loads(line)["s"] == "***"


class TestBuilding:
    async def test_each_type_gets_its_adapter_behind_its_guards(
        self, directory: ConfiguredProviderDirectory
    ) -> None:
        adapters = {c.name: type(c.provider.inner) for c in directory}
        assert adapters == {
            "twilio-main": TwilioSmsProvider,
            "twilio-backup": TwilioSmsProvider,
            "whatsapp": WhatsAppCloudProvider,
            "email-api": EmailApiProvider,
            "smtp": SmtpProvider,
            "push": FcmPushProvider,
        }
        main = directory.configured("twilio-main")
        assert main is not None
        assert main.limits == Limits(
            timeout_seconds=5.0,
            max_concurrency=32,
            rate_per_second=50.0,
            failure_threshold=3,
            reset_seconds=20.0,
        )
        assert (main.channel, main.priority, main.enabled) == (Channel.SMS, 10, True)

    async def test_the_directory_is_the_port(self, directory: ConfiguredProviderDirectory) -> None:
        port: ProviderDirectory = directory
        assert [p.name for p in port.for_channel(Channel.SMS)] == ["twilio-main", "twilio-backup"]
        assert [p.name for p in port.for_channel(Channel.EMAIL)] == ["email-api", "smtp"]
        assert all(isinstance(p, GuardedProvider) for p in port.for_channel(Channel.SMS))
        assert port.for_channel(Channel.VOICE) == ()
        assert directory.channels == {Channel.SMS, Channel.EMAIL, Channel.WHATSAPP}

    async def test_a_disabled_provider_gets_no_sends_but_still_its_webhooks(
        self, directory: ConfiguredProviderDirectory
    ) -> None:
        assert directory.for_channel(Channel.PUSH) == ()
        push = directory.get("push")
        assert push is not None
        assert push.channel is Channel.PUSH
        assert directory.get("nobody") is None

    async def test_prices_by_longest_prefix(self, directory: ConfiguredProviderDirectory) -> None:
        assert directory.price("twilio-main", "+447700900123") == (Decimal("0.04"), "USD")
        assert directory.price("twilio-main", "+14155550100") == (Decimal("0.0079"), "USD")
        assert directory.price("twilio-backup", "+447700900123") is None
        assert directory.price("nobody", "+447700900123") is None

    def test_a_price_table_matches_numbers_with_or_without_plus(self) -> None:
        table = PriceTable.from_settings(
            parse(
                with_provider(
                    0,
                    price={
                        "amount": "0.01",
                        "currency": "EUR",
                        "prefixes": {"+44": "0.04", "+447": "0.05", "+1": "0.0079"},
                    },
                )
            )
            .providers[0]
            .price  # type: ignore[arg-type]
        )
        assert table.price_for("+447700900123") == (Decimal("0.05"), "EUR")
        assert table.price_for("442079460958") == (Decimal("0.04"), "EUR")  # a WhatsApp id
        assert table.price_for("+14155550100") == (Decimal("0.0079"), "EUR")
        assert table.price_for("+33612345678") == (Decimal("0.01"), "EUR")
        assert table.price_for("ada@example.org") == (Decimal("0.01"), "EUR")

    async def test_building_keeps_the_secrets_out_of_every_repr(self) -> None:
        built = build_providers(parse(example()))
        try:
            for configured in built:
                for shown in (repr(configured), repr(configured.provider)):
                    for secret in SECRETS:
                        assert secret not in shown
        finally:
            for configured in built:
                await configured.provider.close()
