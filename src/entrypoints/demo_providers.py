"""Fake providers for `chorus demo`, in a process of their own, calling back the demo's webhooks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

from adapters.providers.fakes.__main__ import CLOCK_FROM_VARIABLE

__all__ = ["DEMO_FAKES", "DemoProviders"]

# Two SMS providers, so that failover can be seen: a second Twilio account (the same wire
# format on another fake) takes over when the first fails (`POST <control url>/fail`).
DEMO_FAKES: list[dict[str, str]] = [
    {"type": "twilio"},
    {"type": "twilio", "name": "twilio-backup"},
    {"type": "whatsapp_cloud"},
    {"type": "email_api"},
    {"type": "fcm"},
    {"type": "smtp"},
]

# The credential each type signs its webhooks with.
_WEBHOOK_SECRETS = {
    "twilio": "auth_token",
    "whatsapp_cloud": "app_secret",
    "email_api": "webhook_secret",
}


class DemoProviders:
    """Runs the demo's fakes (two Twilio SMS, WhatsApp Cloud, email API, FCM push, SMTP) until
    stopped; each reports `delivered` to Chorus a moment after accepting a message."""

    def __init__(
        self, base_url: str, *, delay_seconds: float = 2.0, clock_from: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.delay_seconds = delay_seconds
        # The database of a demo on the manual clock: the fakes report on its time.
        self.clock_from = clock_from
        self.process: subprocess.Popen[str] | None = None
        self.described: dict[str, Any] = {}

    def start(self) -> str:
        """Starts the fakes; returns the CHORUS_PROVIDERS configuration that points at them."""
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapters.providers.fakes",
                "--config",
                json.dumps({"fakes": DEMO_FAKES}),
                "--callback-url",
                f"{self.base_url}/v1/webhooks/{{name}}",
                "--status",
                "delivered",
                "--delay",
                str(self.delay_seconds),
                "--parent-pid",  # a kill -9 of the demo takes the fakes along
                str(os.getpid()),
            ],
            # Not on the command line, where anyone may read a password in the URL.
            env=os.environ
            if self.clock_from is None
            else {**os.environ, CLOCK_FROM_VARIABLE: self.clock_from},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            raise SystemExit("chorus: the demo's fake providers did not start")
        self.described = json.loads(line)
        return json.dumps(self.described["providers"])

    def control_urls(self) -> dict[str, str]:
        """Where each HTTP fake takes its knobs (fail, hang, rate_limit, reset, stats)."""
        return {
            name: fake["control_url"]
            for name, fake in self.described.get("fakes", {}).items()
            if "control_url" in fake
        }

    def environment(self) -> dict[str, str]:
        """For `.chorus/env`: each fake's control URL, and the secret its webhooks are signed
        with, so a user can sign a test webhook (`FAKE_<NAME>_CONTROL_URL`, `..._WEBHOOK_SECRET`)."""
        found: dict[str, str] = {}
        for name, url in self.control_urls().items():
            found[f"FAKE_{_variable(name)}_CONTROL_URL"] = url
        for provider in self.described.get("providers", []):
            secret = _WEBHOOK_SECRETS.get(provider["type"])
            if secret is not None:
                found[f"FAKE_{_variable(provider['name'])}_WEBHOOK_SECRET"] = provider[secret]
        return found

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def _variable(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())
