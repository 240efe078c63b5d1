"""Settings from the environment, validated at start-up."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import msgspec

__all__ = ["Settings"]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything Chorus reads from its environment."""

    database_url: str | None = None
    nats_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    clock: Literal["system", "manual"] = "system"
    default_region: str | None = None
    admin_key: str | None = None
    data_dir: Path = Path(".chorus")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    signal_stream: str = "CHORUS_SIGNALS"
    nats_prefix: str = "chorus"
    # Whether every NATS message that acts for a client (send and conversation commands,
    # signals) must carry an API key (ADR 0022, third amendment); without, NATS's own accounts
    # and subject permissions are the boundary, and a key, when sent, is checked.
    nats_require_key: bool = False
    secret: str | None = None
    # Wraps each customer's data key (ADR 0019); unset: a fixed development key.
    master_key: str | None = None
    public_url: str | None = None
    providers: str | None = None  # JSON text, or the path of a JSON or TOML file
    dispatch: bool = True  # run dispatch workers in this process
    dispatch_lease_seconds: float = 30.0
    projections: bool = True  # follow the event log with the read models in this process
    outbound_stream: str = "CHORUS_OUT"  # JetStream stream of `<prefix>.out.>` domain events
    # Rounds a page of a projection fails (outages aside) before the events that fail alone
    # are parked, and how long (seconds) a parked event keeps /ready at 503 (ADR 0007).
    projection_attempts: Annotated[int, msgspec.Meta(ge=1)] = 3
    ready_parked_age: Annotated[float, msgspec.Meta(ge=0)] = 900.0
    render_operations: Annotated[int, msgspec.Meta(ge=1)] = 100_000  # per render (templates.md)
    render_seconds: Annotated[float, msgspec.Meta(gt=0)] = 0.25  # CPU seconds one render may take
    render_threads: Annotated[int, msgspec.Meta(ge=1)] = 1  # renders at once, off the event loop
    # Processes that decide a broadcast's sends beside the schedule worker (ADR 0028), started
    # at the first big one; 0: the schedule worker decides them itself. Each holds connections.
    broadcast_processes: Annotated[int, msgspec.Meta(ge=0, le=64)] = 2
    # What classifies inbound messages for routing: the trained intent model (trained on first
    # use, about a minute on one core, then loaded in seconds; off the event loop), or keyword
    # lists for a light installation (six intents, English words only; docs/assistant.md).
    classifier: Literal["keywords", "model"] = "model"
    # Where the intent model is kept; unset: `<data_dir>/assistant`. Services sharing it train
    # it once between them (docs/operations.md).
    model_dir: Path | None = None
    # Requests a minute per API key and route class, and how many at once (ADR 0015); per
    # process: with N services behind a balancer, a key gets up to N times these.
    rate_limits: bool = True
    rate_limit_ingest: Annotated[int, msgspec.Meta(ge=1)] = 60_000
    rate_limit_ingest_burst: Annotated[int, msgspec.Meta(ge=1)] = 2_000
    rate_limit_send: Annotated[int, msgspec.Meta(ge=1)] = 12_000
    rate_limit_send_burst: Annotated[int, msgspec.Meta(ge=1)] = 1_000
    rate_limit_read: Annotated[int, msgspec.Meta(ge=1)] = 30_000
    rate_limit_read_burst: Annotated[int, msgspec.Meta(ge=1)] = 1_000
    rate_limit_admin: Annotated[int, msgspec.Meta(ge=1)] = 1_200
    rate_limit_admin_burst: Annotated[int, msgspec.Meta(ge=1)] = 200

    @property
    def base_url(self) -> str:
        """Where customers reach this service, for links in messages."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def intent_model_dir(self) -> Path:
        """Where the intent model is kept: `model_dir`, or `assistant` under the data."""
        return self.model_dir or self.data_dir / "assistant"

    @property
    def dead_letter_stream(self) -> str:
        return self.signal_stream.removesuffix("SIGNALS").rstrip("_") + "_DEAD_LETTERS"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        names = {
            "database_url": "DATABASE_URL",
            "nats_url": "NATS_URL",
            "host": "CHORUS_HOST",
            "port": "CHORUS_PORT",
            "clock": "CHORUS_CLOCK",
            "default_region": "CHORUS_DEFAULT_REGION",
            "admin_key": "CHORUS_ADMIN_KEY",
            "data_dir": "CHORUS_DATA_DIR",
            "log_level": "CHORUS_LOG_LEVEL",
            "signal_stream": "CHORUS_SIGNAL_STREAM",
            "nats_prefix": "CHORUS_NATS_PREFIX",
            "nats_require_key": "CHORUS_NATS_REQUIRE_KEY",
            "secret": "CHORUS_SECRET",
            "master_key": "CHORUS_MASTER_KEY",
            "public_url": "CHORUS_PUBLIC_URL",
            "providers": "CHORUS_PROVIDERS",
            "dispatch": "CHORUS_DISPATCH",
            "dispatch_lease_seconds": "CHORUS_DISPATCH_LEASE_SECONDS",
            "projections": "CHORUS_PROJECTIONS",
            "outbound_stream": "CHORUS_OUTBOUND_STREAM",
            "projection_attempts": "CHORUS_PROJECTION_ATTEMPTS",
            "ready_parked_age": "CHORUS_READY_PARKED_AGE",
            "render_operations": "CHORUS_RENDER_OPERATIONS",
            "render_seconds": "CHORUS_RENDER_SECONDS",
            "render_threads": "CHORUS_RENDER_THREADS",
            "broadcast_processes": "CHORUS_BROADCAST_PROCESSES",
            "classifier": "CHORUS_CLASSIFIER",
            "model_dir": "CHORUS_MODEL_DIR",
            "rate_limits": "CHORUS_RATE_LIMITS",
            "rate_limit_ingest": "CHORUS_RATE_LIMIT_INGEST",
            "rate_limit_ingest_burst": "CHORUS_RATE_LIMIT_INGEST_BURST",
            "rate_limit_send": "CHORUS_RATE_LIMIT_SEND",
            "rate_limit_send_burst": "CHORUS_RATE_LIMIT_SEND_BURST",
            "rate_limit_read": "CHORUS_RATE_LIMIT_READ",
            "rate_limit_read_burst": "CHORUS_RATE_LIMIT_READ_BURST",
            "rate_limit_admin": "CHORUS_RATE_LIMIT_ADMIN",
            "rate_limit_admin_burst": "CHORUS_RATE_LIMIT_ADMIN_BURST",
        }
        raw = {field: env[name] for field, name in names.items() if env.get(name)}
        try:
            return msgspec.convert(raw, cls, strict=False, dec_hook=_from_text)
        except msgspec.ValidationError as error:
            field = str(error).rpartition("$.")[2]
            variable = names.get(field.split(".")[0].rstrip("`"), field)
            raise SystemExit(f"chorus: bad setting {variable}: {error}") from None

    def with_servers(self, database_url: str, nats_url: str) -> Settings:
        return msgspec.structs.replace(self, database_url=database_url, nats_url=nats_url)


def _from_text(kind: type, value: object) -> object:
    """Environment values are text; msgspec converts the rest, this the paths."""
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(kind)
