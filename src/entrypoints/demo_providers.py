"""Fake providers for `chorus demo`, in a process of their own, calling back the demo's webhooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

__all__ = ["DemoProviders"]


class DemoProviders:
    """Runs every fake (Twilio SMS, WhatsApp Cloud, email API, FCM push, SMTP) until stopped;
    each reports `delivered` to Chorus a moment after accepting a message."""

    def __init__(self, base_url: str, *, delay_seconds: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.delay_seconds = delay_seconds
        self.process: subprocess.Popen[str] | None = None
        self.described: dict[str, Any] = {}

    def start(self) -> str:
        """Starts the fakes; returns the CHORUS_PROVIDERS configuration that points at them."""
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapters.providers.fakes",
                "--callback-url",
                f"{self.base_url}/v1/webhooks/{{name}}",
                "--status",
                "delivered",
                "--delay",
                str(self.delay_seconds),
                "--parent-pid",  # a kill -9 of the demo takes the fakes along
                str(os.getpid()),
            ],
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
