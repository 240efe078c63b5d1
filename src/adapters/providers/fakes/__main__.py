"""Runs fake providers in a process of their own until SIGTERM or SIGINT.

    python -m adapters.providers.fakes --fakes twilio,email_api \\
        --callback-url 'http://127.0.0.1:8000/v1/webhooks/{name}' --status delivered
    python -m adapters.providers.fakes --config fakes.json   # or the JSON itself
    python -m adapters.providers.fakes --parent-pid 1234     # stops when process 1234 dies
    CHORUS_FAKES_CLOCK_FROM="$DATABASE_URL" python -m adapters.providers.fakes  # its clock

A configuration file is JSON:
`{"fakes": [{"type": "twilio", "name": "sms-fake", "port": 0, "status": "failed"}],
  "host": "127.0.0.1", "callback_url": "http://.../{name}", "status": "delivered",
  "delay_seconds": 0, "clock_from": null}`; flags given on the command line win over its
top-level values. The times the fakes report are the wall's, or with `clock_from` (a
PostgreSQL URL, `--clock-from` or CHORUS_FAKES_CLOCK_FROM, which keeps its password off the
command line) those of the manual clock Chorus keeps there (`CHORUS_CLOCK=manual`), so that a
service on the manual clock reads its providers' times on its own clock.
`{name}` and `{type}` in a callback URL become each fake's provider name and type.

When every fake listens, one JSON line goes to stdout: `{"fakes": {name: {"type", "base_url"
(or "host" and "port" for SMTP)}}, "providers": [...]}`, where `providers` is a Chorus provider
configuration (`CHORUS_PROVIDERS`) pointing at these fakes with their made-up credentials.
On exit, one JSON line on stderr says what each fake received and how its webhooks ended.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from adapters.postgres.manual_clock import FollowedClock
from adapters.providers.config import Name
from adapters.providers.fakes.email_api_server import FakeEmailApi
from adapters.providers.fakes.fcm_server import FakeFcm
from adapters.providers.fakes.smtp_server import FakeSmtpServer
from adapters.providers.fakes.twilio_server import FakeTwilio
from adapters.providers.fakes.webhooks import FINAL_STATUSES, FinalStatus, StatusCallbacks
from adapters.providers.fakes.whatsapp_server import FakeWhatsApp
from adapters.system.clock import SystemClock
from adapters.system.lifetime import end_with_parent

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adapters.providers.fakes.http_fake import HttpFake
    from ports.clock import Clock

__all__ = ["CLOCK_FROM_VARIABLE", "FakeSpec", "FakesConfig", "main", "run"]

CLOCK_FROM_VARIABLE = "CHORUS_FAKES_CLOCK_FROM"
"""The environment variable that may give `clock_from`, as `--clock-from` does."""

FakeType = Literal["twilio", "whatsapp_cloud", "email_api", "fcm", "smtp"]
FAKE_TYPES: tuple[FakeType, ...] = ("twilio", "whatsapp_cloud", "email_api", "fcm", "smtp")
_SENDER = "Chorus <noreply@chorus.example>"
_FROM_NUMBER = "+15005550001"
# Every fake has a price, so the cost report has a currency on every line of what was sent
# (the email API and Twilio fakes also answer one of their own, which wins).
_EMAIL = {"amount": "0.0008", "currency": "USD"}
_FREE = {"amount": "0", "currency": "USD"}


class FakeSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One fake: its type, its provider name (the type by default), its port (0: any free)."""

    type: FakeType
    name: Name | None = None
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    callback_url: str | None = None
    status: FinalStatus | None = None
    delay_seconds: Annotated[float, msgspec.Meta(ge=0)] | None = None

    @property
    def provider_name(self) -> str:
        """The name Chorus knows this fake by."""
        return self.name or self.type


class FakesConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which fakes to run, and how they call back unless a fake says otherwise."""

    fakes: list[FakeSpec] = msgspec.field(
        default_factory=lambda: [FakeSpec(type=kind) for kind in FAKE_TYPES]
    )
    host: str = "127.0.0.1"
    callback_url: str | None = None
    status: FinalStatus = "delivered"
    delay_seconds: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    clock_from: str | None = None
    """A PostgreSQL URL: report on the manual clock Chorus keeps there, not the wall's."""

    def __post_init__(self) -> None:
        names = [spec.provider_name for spec in self.fakes]
        if len(set(names)) != len(names):
            raise ValueError("two fakes have the same name; give them a `name` each")

    def callbacks(self, spec: FakeSpec) -> StatusCallbacks:
        """The fake's status callbacks, its own settings first."""
        template = spec.callback_url or self.callback_url
        url = (
            template.replace("{name}", spec.provider_name).replace("{type}", spec.type)
            if template
            else None
        )
        return StatusCallbacks(
            url=url,
            status=spec.status or self.status,
            delay_seconds=self.delay_seconds if spec.delay_seconds is None else spec.delay_seconds,
        )


class _Running:
    """A started fake: what to print about it, and how to stop it."""

    def __init__(self, spec: FakeSpec, fake: HttpFake | FakeSmtpServer, provider: dict[str, Any]):
        self.spec = spec
        self.fake = fake
        self.provider = provider

    def summary(self) -> dict[str, Any]:
        if isinstance(self.fake, FakeSmtpServer):
            return {"received": len(self.fake.received)}
        return {
            "received": len(self.fake.received),
            "duplicates": self.fake.duplicates,
            "webhooks": self.fake.poster.counts(),
        }


def _start(spec: FakeSpec, config: FakesConfig, priority: int, clock: Clock) -> _Running:
    name, host = spec.provider_name, config.host
    common: dict[str, Any] = {"name": name, "type": spec.type, "priority": priority}
    if spec.type == "smtp":
        smtp = FakeSmtpServer(host=host, port=spec.port).start()
        provider = {**common, "host": host, "port": smtp.port, "sender": _SENDER, "price": _EMAIL}
        return _Running(spec, smtp, provider)
    callbacks = config.callbacks(spec)
    fake: HttpFake
    if spec.type == "twilio":
        twilio = FakeTwilio(callbacks=callbacks)
        fake, credentials = (
            twilio,
            {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": _FROM_NUMBER,
                "price": {"amount": "0.0079", "currency": "USD"},
            },
        )
    elif spec.type == "whatsapp_cloud":
        whatsapp = FakeWhatsApp(callbacks=callbacks, clock=clock)
        fake, credentials = (
            whatsapp,
            {
                "phone_number_id": whatsapp.phone_number_id,
                "access_token": whatsapp.access_token,
                "app_secret": whatsapp.app_secret,
                "price": {"amount": "0.0050", "currency": "USD"},
            },
        )
    elif spec.type == "email_api":
        email = FakeEmailApi(callbacks=callbacks, clock=clock)
        fake, credentials = (
            email,
            {
                "api_key": email.api_key,
                "webhook_secret": email.webhook_secret,
                "sender": _SENDER,
                "price": _EMAIL,
            },
        )
    else:
        fcm = FakeFcm(callbacks=callbacks)
        fake, credentials = (
            fcm,
            {"project_id": fcm.project_id, "access_token": fcm.access_token, "price": _FREE},
        )
    base_url = fake.start(port=spec.port, host=host)
    return _Running(spec, fake, {**common, "base_url": base_url, **credentials})


def _describe(running: Sequence[_Running]) -> dict[str, Any]:
    fakes: dict[str, Any] = {}
    for item in running:
        entry: dict[str, Any] = {"type": item.spec.type}
        if isinstance(item.fake, FakeSmtpServer):
            entry |= {"host": item.fake.host, "port": item.fake.port}
        else:
            entry |= {"base_url": item.fake.base_url, "control_url": item.fake.base_url + "/_fake"}
            callbacks = item.fake.callbacks
            entry |= {"callback_url": callbacks.url, "status": callbacks.status}
        fakes[item.spec.provider_name] = entry
    return {"fakes": fakes, "providers": [item.provider for item in running]}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m adapters.providers.fakes",
        description="Runs fake providers until SIGTERM or SIGINT; prints their URLs as JSON.",
    )
    parser.add_argument("--config", help="a JSON file, or JSON text, as described in --help")
    parser.add_argument(
        "--fakes",
        help=f"comma-separated types to run (default: all of {','.join(FAKE_TYPES)})",
    )
    parser.add_argument("--host", help="the address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--callback-url", help="where status webhooks go; {name} and {type} are replaced"
    )
    parser.add_argument("--status", choices=FINAL_STATUSES, help="the status every fake reports")
    parser.add_argument("--delay", type=float, help="seconds before a status webhook goes")
    parser.add_argument(
        "--parent-pid", type=int, help="stop when this process dies, even by kill -9"
    )
    parser.add_argument(
        "--clock-from",
        help="a PostgreSQL URL: report times on the manual clock Chorus keeps there",
    )
    return parser


def _config(args: argparse.Namespace) -> FakesConfig:
    raw: dict[str, Any] = {}
    if args.config:
        text = args.config
        if not text.lstrip().startswith("{"):
            with open(text, encoding="utf-8") as file:
                text = file.read()
        loaded = msgspec.json.decode(text)
        if not isinstance(loaded, dict):
            raise ValueError("the configuration is a JSON object")
        raw = loaded
    if args.fakes:
        raw["fakes"] = [{"type": kind.strip()} for kind in args.fakes.split(",") if kind.strip()]
    for key, value in (
        ("host", args.host),
        ("callback_url", args.callback_url),
        ("status", args.status),
        ("delay_seconds", args.delay),
        ("clock_from", args.clock_from or os.environ.get(CLOCK_FROM_VARIABLE)),
    ):
        if value is not None:
            raw[key] = value
    return msgspec.convert(raw, FakesConfig)


def run(config: FakesConfig, stop: threading.Event, *, out: Any = None) -> dict[str, Any]:
    """Starts the fakes, prints their JSON line, waits for `stop`, stops them; returns a summary."""
    running: list[_Running] = []
    followed = None if config.clock_from is None else FollowedClock(config.clock_from).start()
    clock = followed or SystemClock()
    try:
        for index, spec in enumerate(config.fakes):
            running.append(_start(spec, config, priority=(index + 1) * 10, clock=clock))
        print(json.dumps(_describe(running)), file=out or sys.stdout, flush=True)
        stop.wait()
    finally:
        # side by side: each may take its grace period, and a killed parent waits for none
        stopping = [threading.Thread(target=item.fake.stop) for item in running]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        if followed is not None:
            followed.stop()
    return {item.spec.provider_name: item.summary() for item in running}


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: 0 once stopped by a signal, 2 for a bad configuration."""
    args = _parser().parse_args(argv)
    try:
        config = _config(args)
    except (OSError, ValueError, msgspec.ValidationError, msgspec.DecodeError) as error:
        print(f"fakes: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def stopping(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    if args.parent_pid is not None:
        end_with_parent(args.parent_pid, signal.SIGTERM)
    summary = run(config, stop)
    print(json.dumps({"stopped": summary}), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
