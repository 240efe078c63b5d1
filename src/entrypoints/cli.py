"""The `chorus` command: migrate, serve, demo, keys, projections, assistant, audit, erasure."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import secrets
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from adapters.postgres.migrations import migrate
from entrypoints import event_loop
from entrypoints.audit_cli import add_audit_parser, run_audit
from entrypoints.erasure_cli import add_erasure_parser, run_erasure
from entrypoints.keys_cli import add_keys_parser, run_keys
from entrypoints.logs import configure_logging
from entrypoints.metrics_directory import share_metrics
from entrypoints.settings import Settings
from entrypoints.tracing import configure_tracing
from ports.api_keys import ApiKeyStore, Role

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dishka import AsyncContainer

    from adapters.postgres.projections import ProjectionRunner
    from ports.bus import EventPublisher, OutboundMessage


__all__ = ["main"]


def _need_database(settings: Settings) -> str:
    if not settings.database_url:
        raise SystemExit("chorus: set DATABASE_URL (or run `chorus demo`, which starts its own)")
    return settings.database_url


async def _migrate(settings: Settings) -> None:
    applied = await migrate(_need_database(settings))
    print(
        f"applied {len(applied)} migration(s): {', '.join(applied)}"
        if applied
        else "schema is up to date"
    )


async def _serve(settings: Settings, *, run_migrations: bool) -> None:
    from entrypoints.service import run_service

    _need_database(settings)
    if run_migrations:
        await migrate(settings.database_url or "")
    await run_service(settings)


async def _projections(settings: Settings, args: argparse.Namespace) -> None:
    from adapters.postgres.projections import NotParked, NotRebuildable, UnknownProjection
    from entrypoints.ioc import make_container

    _need_database(settings)
    command = args.projections_command
    if command == "run":
        await _follow(settings)
        return
    async with contextlib.AsyncExitStack() as stack:
        container = make_container(settings)
        stack.push_async_callback(container.close)
        publish = command == "retry" and args.name == OUTBOUND_EVENTS
        runner = await every_projection_runner(container, settings, stack, publish=publish)
        await runner.setup()
        try:
            if command == "rebuild":
                position = await runner.rebuild(args.name)
                print(f"rebuilt {args.name} up to {position.transaction_id}/{position.position}")
            elif command == "retry":
                await _retry_parked(runner, args.name, args.by)
            elif command == "skip":
                if not args.reason.strip():
                    raise SystemExit("chorus: --reason must say why the event is skipped")
                await runner.skip(args.name, args.event, args.reason, args.by)
                print(f"skipped {args.name}'s parked event at position {args.event}")
            else:
                await _print_status(runner)
        except UnknownProjection:
            raise SystemExit(
                f"chorus: no projection {args.name!r}; known: {', '.join(runner.projections)}"
            ) from None
        except (NotRebuildable, NotParked) as error:
            raise SystemExit(f"chorus: {error}") from None


OUTBOUND_EVENTS = "outbound_events"


async def every_projection_runner(
    container: AsyncContainer,
    settings: Settings,
    stack: contextlib.AsyncExitStack,
    *,
    publish: bool,
) -> ProjectionRunner:
    """Every lane's projections on one runner; the outbound publisher connects to NATS only
    to publish (a retry of its parked events)."""
    from entrypoints.ioc import with_bus
    from entrypoints.pipeline import every_projection
    from entrypoints.projection_worker import bus

    publisher: EventPublisher = _Unconnected()
    if publish:
        import nats

        nc = await nats.connect(settings.nats_url or "nats://127.0.0.1:4222", name="chorus-cli")
        stack.push_async_callback(nc.close)
        publisher = await bus(nc, settings)
    scoped = await stack.enter_async_context(with_bus(container, publisher))
    return await every_projection(scoped, settings.projection_attempts)


class _Unconnected:
    """The bus for commands that read or settle outbound events and never publish them."""

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        from ports.bus import PublishFailed

        raise PublishFailed("not connected to NATS")


async def _print_status(runner: ProjectionRunner) -> None:
    # position: the transaction id and the event position it has read up to
    print(
        f"{'projection':<24} {'xid/position':>20} {'events behind':>14} {'seconds behind':>15}"
        f" {'parked':>7}  state"
    )
    for s in await runner.status():
        where = f"{s.position.transaction_id}/{s.position.position}"
        state = (
            f"failing: {s.failing}"
            if s.failing
            else "parked: see below; retry or skip"
            if s.parked
            else "ok"
        )
        print(
            f"{s.name:<24} {where:>20} {s.events_behind:>14} {s.seconds_behind:>15.1f}"
            f" {s.parked:>7}  {state}"
        )
    parked = await runner.parked()
    if parked:
        print("\nparked events (`chorus projections retry NAME`, or `skip NAME EVENT --reason`):")
        print(f"{'projection':<24} {'event':>10} {'parked at':<25} {'topic':<40} error")
        for p in parked:
            print(
                f"{p.projection:<24} {p.position.position:>10}"
                f" {p.parked_at.isoformat(timespec='seconds'):<25} {p.topic:<40} {p.error}"
            )


async def _retry_parked(runner: ProjectionRunner, name: str, by: str) -> None:
    applied, still = await runner.retry(name, by)
    print(f"applied {len(applied)} parked event(s) of {name}; {len(still)} still parked")
    for p in still:
        print(f"  event {p.position.position} ({p.topic}): {p.error}", file=sys.stderr)
    if still:
        raise SystemExit(1)


async def _follow(settings: Settings) -> None:
    """Follows the log until SIGINT/SIGTERM: the projection worker of `chorus serve`, run on
    its own (with CHORUS_PROJECTIONS=false in the services that take requests)."""
    from entrypoints.projection_worker import follow_log

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print("following the event log", flush=True)
    await follow_log(settings, stop)


def _secret(settings: Settings, data_dir: Path) -> str:
    """The demo keeps its signing secret beside its data, so its links survive restarts."""
    if settings.secret:
        return settings.secret
    return _kept(data_dir / "secret")


def _kept(saved: Path) -> str:
    """A secret of the demo's, kept in a file beside its data (made on the first run): the
    signing secret, and the master key its customers' keys are wrapped by."""
    if saved.exists():
        return saved.read_text().strip()
    secret = secrets.token_urlsafe(32)
    saved.write_text(secret + "\n")
    saved.chmod(0o600)
    return secret


def _admin_key(settings: Settings, data_dir: Path) -> str:
    if settings.admin_key:
        return settings.admin_key
    saved = data_dir / "admin_key"
    if saved.exists():
        return saved.read_text().strip()
    key = "chorus_admin_" + secrets.token_urlsafe(24)
    saved.write_text(key + "\n")
    saved.chmod(0o600)
    return key


async def _demo(
    settings: Settings, data_dir: Path, admin_key: str, fakes: dict[str, str] | None = None
) -> None:
    from entrypoints.demo_data import load_demo_data
    from entrypoints.intent_model import ready_intent_model
    from entrypoints.ioc import make_container
    from entrypoints.service import run_service

    await migrate(_need_database(settings))
    if settings.classifier == "model":
        # Before the demo's messages arrive: they are classified by the model, never without.
        await asyncio.to_thread(
            ready_intent_model, settings.intent_model_dir, lambda line: print(line, flush=True)
        )
    container = make_container(settings)
    try:
        keys = await container.get(ApiKeyStore)
        await keys.create(Role.ADMIN, "demo admin", secret=admin_key)
        new = await load_demo_data(container)
    finally:
        await container.close()
    base = f"http://{settings.host}:{settings.port}"

    async def banner() -> None:
        print(
            f"""
Chorus is running at {base}  (data in {data_dir}; {new} new demo signal(s) loaded)
Admin key: {admin_key}

Try:
  curl -s -H 'Authorization: Bearer {admin_key}' '{base}/v1/customers?identity=email:ana@example.org'
  curl -s -X POST -H 'Authorization: Bearer {admin_key}' -H 'Content-Type: application/json' {base}/v1/events \\
    -d '{{"signals":[{{"id":"try-1","type":"page.viewed","occurred_at":"2026-11-27T10:00:00Z","identities":[{{"type":"email","value":"ana@example.org"}}]}}]}}'
  curl -s -X POST -H 'Authorization: Bearer {admin_key}' -H 'Content-Type: application/json' {base}/v1/messages \\
    -d '{{"identity":"email:ana@example.org","team":"orders","purpose":"transactional","channels":["email"],"template":"order-shipped","variables":{{"order_id":"A-1"}}}}'
  curl -s -H 'Authorization: Bearer {admin_key}' {base}/v1/messages/MESSAGE_ID
OpenAPI: {base}/schema   Health: {base}/ready   Stop: Ctrl-C
PostgreSQL: {settings.database_url}   NATS: {settings.nats_url}
  (also in {data_dir / "env"}: `set -a; . {data_dir / "env"}; set +a` lets `chorus keys create` reach them){_fakes_line(fakes)}
""",
            flush=True,
        )

    await run_service(settings, on_ready=banner)


def _fakes_line(fakes: dict[str, str] | None) -> str:
    if not fakes:
        return ""
    listed = "\n".join(f"  {name}: {url}" for name, url in fakes.items())
    return (
        "\nFake providers (they report `delivered` 2 s after a send; POST <url>/fail"
        ' {"count": 3} makes one fail; these URLs and the secrets that sign their webhooks are'
        " in the env file too):\n" + listed
    )


def _write_env(data_dir: Path, settings: Settings, fakes: dict[str, str] | None = None) -> None:
    """The servers' addresses, the master key, the clock, and the fakes' control URLs and
    webhook secrets, for `. env`."""
    variables = {
        "DATABASE_URL": settings.database_url or "",
        "NATS_URL": settings.nats_url or "",
        "CHORUS_PORT": str(settings.port),
        # The CLI's audit commands read the demo's customers with the demo's key.
        **({"CHORUS_MASTER_KEY": settings.master_key} if settings.master_key else {}),
        # And stamp what they record (key changes) on the demo's clock: with the manual one,
        # its time in the database, not the wall's.
        "CHORUS_CLOCK": settings.clock,
        **(fakes or {}),
    }
    (data_dir / "env").write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in variables.items()))


def _run_demo(settings: Settings, data_dir: Path) -> None:
    from adapters.embedded.nats import EmbeddedNats
    from adapters.embedded.postgres import EmbeddedPostgres
    from entrypoints.demo_providers import DemoProviders

    data_dir.mkdir(parents=True, exist_ok=True)
    settings = msgspec.structs.replace(settings, data_dir=data_dir)
    if not settings.default_region:  # the demo's numbers are British
        settings = msgspec.structs.replace(settings, default_region="GB")
    settings = msgspec.structs.replace(
        settings,
        secret=_secret(settings, data_dir),
        master_key=settings.master_key or _kept(data_dir / "master_key"),
    )
    servers: list[EmbeddedPostgres | EmbeddedNats] = []
    fakes: DemoProviders | None = None
    try:
        database_url = settings.database_url
        if not database_url:
            print(f"starting PostgreSQL in {data_dir / 'postgres'} ...", flush=True)
            postgres = EmbeddedPostgres(data_dir / "postgres", with_parent=True)
            servers.append(postgres)
            database_url = postgres.start()
        nats_url = settings.nats_url
        if not nats_url:
            print(f"starting NATS with JetStream in {data_dir / 'nats'} ...", flush=True)
            nats_server = EmbeddedNats(data_dir / "nats", with_parent=True)
            servers.append(nats_server)
            nats_url = nats_server.start()
        if not settings.providers:
            print("starting fake channel providers ...", flush=True)
            fakes = DemoProviders(
                f"http://{settings.host}:{settings.port}",
                # On the manual clock, the providers report on the demo's time.
                clock_from=database_url if settings.clock == "manual" else None,
            )
            settings = msgspec.structs.replace(settings, providers=fakes.start())
        with contextlib.suppress(KeyboardInterrupt):
            _write_env(
                data_dir,
                settings.with_servers(database_url, nats_url),
                fakes.environment() if fakes else None,
            )
            event_loop.run(
                _demo(
                    settings.with_servers(database_url, nats_url),
                    data_dir,
                    _admin_key(settings, data_dir),
                    fakes.control_urls() if fakes else None,
                )
            )
    finally:
        # A second Ctrl-C (terminals and make send one each) must not cut the shutdown short
        # and leave PostgreSQL or NATS running without us.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if fakes is not None:
            fakes.stop()
        for server in reversed(servers):
            server.stop()
        print("stopped; run `chorus demo` again to pick up where you left off", flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chorus", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply migrations/ to DATABASE_URL (idempotent)")
    serve = commands.add_parser(
        "serve", help="HTTP API and NATS consumers on DATABASE_URL and NATS_URL"
    )
    serve.add_argument("--port", type=int, help="default CHORUS_PORT or 8000")
    serve.add_argument("--host", help="default CHORUS_HOST or 127.0.0.1")
    serve.add_argument("--migrate", action="store_true", help="apply migrations first")
    demo = commands.add_parser(
        "demo", help="serve with demo data, starting PostgreSQL and NATS if not given"
    )
    demo.add_argument("--port", type=int, help="default CHORUS_PORT or 8000")
    demo.add_argument("--data-dir", type=Path, help="default CHORUS_DATA_DIR or ./.chorus")
    add_keys_parser(commands)
    projections = commands.add_parser("projections", help="read models built from the event log")
    projection_commands = projections.add_subparsers(dest="projections_command", required=True)
    projection_commands.add_parser("status", help="each projection's position and lag")
    projection_commands.add_parser(
        "run", help="follow the log until stopped (for serve with CHORUS_PROJECTIONS=0)"
    )
    rebuild = projection_commands.add_parser(
        "rebuild", help="build a projection again from the start and swap it in"
    )
    rebuild.add_argument("name")
    retry = projection_commands.add_parser(
        "retry", help="apply a projection's parked events again (after a fix)"
    )
    retry.add_argument("name")
    retry.add_argument("--by", default=_operator(), help="who retries (default: this user)")
    skip = projection_commands.add_parser(
        "skip", help="drop a parked event for good, recording why"
    )
    skip.add_argument("name")
    skip.add_argument("event", type=int, help="its position, as `projections status` shows it")
    skip.add_argument("--reason", required=True, help="why it is dropped (kept on record)")
    skip.add_argument("--by", default=_operator(), help="who skips (default: this user)")
    _assistant_parser(commands)
    add_audit_parser(commands)
    add_erasure_parser(commands)
    return parser


def _assistant_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    assistant = commands.add_parser("assistant", help="the local intent and sentiment model")
    assistant_commands = assistant.add_subparsers(dest="assistant_command", required=True)
    for name, help_text in (
        ("train", "train the intent model on train.csv into its directory (reproducible)"),
        ("prepare", "train the intent model unless its directory holds a current one"),
        ("evaluate", "accuracy, macro-F1, latency per message on one core, memory on test.csv"),
    ):
        command = assistant_commands.add_parser(name, help=help_text)
        command.add_argument("--data-dir", type=Path, help="default CHORUS_DATA_DIR or ./.chorus")
        command.add_argument(
            "--model-dir", type=Path, help="default CHORUS_MODEL_DIR or DATA_DIR/assistant"
        )
        if name != "prepare":
            command.add_argument(
                "--dataset", type=Path, help="default data/banking77 in the project"
            )


def _assistant(args: argparse.Namespace, settings: Settings) -> None:
    from adapters.assistant.classifier import LinearClassifier, trained_or_loaded
    from adapters.assistant.dataset import DEFAULT_DATASET_DIR, load_examples
    from adapters.assistant.evaluation import evaluate, one_core
    from adapters.assistant.model import DEFAULT_SPEC, save_model, train
    from entrypoints.intent_model import ready_intent_model

    if args.data_dir:
        settings = msgspec.structs.replace(settings, data_dir=args.data_dir)
    directory = args.model_dir or settings.intent_model_dir
    one_core()
    if args.assistant_command == "prepare":
        ready_intent_model(directory, print)
        return
    dataset = args.dataset or DEFAULT_DATASET_DIR
    if args.assistant_command == "train":
        examples = load_examples(dataset / "train.csv")
        path = save_model(train(examples, DEFAULT_SPEC), directory)
        print(f"trained {DEFAULT_SPEC.name} on {len(examples)} messages into {path}")
        return
    classifier = LinearClassifier(trained_or_loaded(directory, dataset, DEFAULT_SPEC))
    figures = evaluate(classifier, load_examples(dataset / "test.csv"))
    print(f"model {DEFAULT_SPEC.name} on {figures.messages} test messages (one core)")
    for key, value in figures.as_dict().items():
        print(f"  {key:<20} {value}")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"uid {os.getuid()}"


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command in ("serve", "demo"):
        share_metrics()  # before prometheus_client is imported: its worker process writes too
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    configure_tracing("chorus")
    overrides: dict[str, object] = {}
    if getattr(args, "port", None):
        overrides["port"] = args.port
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if overrides:
        settings = msgspec.structs.replace(settings, **overrides)
    if args.command == "migrate":
        event_loop.run(_migrate(settings))
    elif args.command == "serve":
        event_loop.run(_serve(settings, run_migrations=args.migrate))
    elif args.command == "keys":
        _need_database(settings)
        event_loop.run(run_keys(settings, args))
    elif args.command == "projections":
        event_loop.run(_projections(settings, args))
    elif args.command == "demo":
        _run_demo(settings, args.data_dir or settings.data_dir)
    elif args.command == "assistant":
        _assistant(args, settings)
    elif args.command == "audit":
        event_loop.run(run_audit(settings, args))
    elif args.command == "erasure":
        _need_database(settings)
        event_loop.run(run_erasure(settings, args))


if __name__ == "__main__":
    main(sys.argv[1:])
