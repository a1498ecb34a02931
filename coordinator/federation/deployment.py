"""The coordinator's deployment: its home folder, its processes, and one analysis run.

Home folder layout (``sscjak-coordinator serve --home HOME``)::

    HOME/certs/{ca,server}.{pem,key}   study CA and SuperLink certificate (certs command)
    HOME/flwr_home/                    FLWR_HOME of the SuperLink, its SuperExec, the CLI
    HOME/superlink.sqlite              SuperLink state (--database)
    HOME/superlink.json                where the running SuperLink listens (for ``run``)
    HOME/runs/<stamp>/                 per-analysis app project, progress, log

Processes are started in their own session and stopped by PID (:class:`ProcessGroup`),
never by name. Flower's ServerApp runs in a process the SuperLink's SuperExec starts; a
run is submitted with ``flwr run`` and followed through its progress file
(:mod:`sscjak.coordinator.federation.server_app`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sscjak.coordinator.federation.certs import CoordinatorCertificates
from sscjak.coordinator.federation.errors import FederationError
from sscjak.coordinator.federation.round_settings import DEFAULT_ROUND_SETTINGS, RoundSettings
from sscjak.coordinator.federation.superlink_process import (
    SuperLinkSettings,
    start_flower_run,
    superlink_command,
    write_cli_connection,
)
from sscjak.shared.flower_environment import flower_environment

#: Settings file written by ``serve`` for ``run``.
SUPERLINK_SETTINGS_FILE = "superlink.json"

#: Terminal control sequences (colours, cursor moves): Flower's logger colours its
#: level names whatever its output is, and a log file should hold plain text.
ANSI_ESCAPE = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(data: bytes) -> bytes:
    """``data`` without terminal escape sequences (colours, cursor moves, titles)."""
    return ANSI_ESCAPE.sub(b"", data)


def copy_without_ansi(source: IO[bytes], log: IO[bytes]) -> None:
    """Copy ``source`` line by line into ``log`` without escape sequences, until EOF."""
    with contextlib.suppress(OSError, ValueError):
        for line in iter(source.readline, b""):
            log.write(strip_ansi(line))
            log.flush()
    with contextlib.suppress(OSError):
        source.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen | None = None
) -> None:
    """Block until ``host:port`` accepts TCP connections; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.pid} exited with {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on {host}:{port} after {timeout:.0f} s"
                ) from None
            time.sleep(0.1)


def descendant_pids(pid: int) -> list[int]:
    """PIDs of every living descendant of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = entry.read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces, so split after ')'
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


@dataclass
class StartedProcess:
    """A process we started: its name, Popen handle and log file.

    ``log_copier`` is the thread that copies the process's output into the log file
    (without terminal escape sequences).
    """

    name: str
    process: subprocess.Popen
    log_path: Path
    log_handle: IO[bytes]
    log_copier: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-characters:]
        except OSError:
            return ""


class ProcessGroup:
    """Every process a command or test starts, each stopped by its own PID.

    Each child gets its own session (``start_new_session``) so that stopping it also
    reaches the helpers Flower starts under it (SuperExec, ServerApp): SIGTERM to the
    child's process group, then SIGKILL after ``grace`` seconds. Used as a context
    manager, it stops everything on exit, on errors and on Ctrl-C alike.

    A child's output (and that of the helpers it starts, which inherit it) goes through
    a pipe to ``LOG_DIR/NAME.log``, plain text: a thread strips terminal escape
    sequences (:func:`strip_ansi`) on the way, and ``NO_COLOR=1`` is set for every child.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.started: list[StartedProcess] = []

    def start(
        self, name: str, command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> StartedProcess:
        log_path = self.log_dir / f"{name}.log"
        handle = log_path.open("ab")
        environment = dict(os.environ if env is None else env)
        environment["NO_COLOR"] = "1"
        process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            start_new_session=True,
        )
        assert process.stdout is not None
        copier = threading.Thread(
            target=copy_without_ansi,
            args=(process.stdout, handle),
            name=f"log-{name}",
            daemon=True,
        )
        copier.start()
        started = StartedProcess(name, process, log_path, handle, copier)
        self.started.append(started)
        return started

    def stop(self, started: StartedProcess, grace: float = 5.0, hard: bool = False) -> None:
        """Stop one process (and its process group) by PID; ``hard`` = SIGKILL at once.

        Descendants that left the group (Flower detaches its SuperExec into a session of
        its own) are found through ``/proc`` before the stop and killed by PID after it.
        """
        process = started.process
        descendants = descendant_pids(process.pid)
        if process.poll() is None:
            first = signal.SIGKILL if hard else signal.SIGTERM
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, first)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=grace)
        # Helpers left in the child's process group after it exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in descendants:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if started.log_copier is not None:
            # every writer is gone: the copier reaches the pipe's end and finishes
            started.log_copier.join(timeout=grace)
        if started.log_copier is None or not started.log_copier.is_alive():
            with contextlib.suppress(OSError):
                started.log_handle.close()

    def stop_all(self) -> None:
        for started in reversed(self.started):
            self.stop(started)

    def logs(self) -> str:
        """Every process's log tail, for error messages and failed tests."""
        return "\n".join(
            f"----- {s.name} (pid {s.pid}, exit {s.process.poll()}) -----\n{s.log_tail()}"
            for s in self.started
        )

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


@dataclass(frozen=True)
class CoordinatorHome:
    """The coordinator's home folder (module docstring)."""

    root: Path

    @property
    def certs_dir(self) -> Path:
        return self.root / "certs"

    @property
    def flwr_home(self) -> Path:
        return self.root / "flwr_home"

    @property
    def database(self) -> Path:
        return self.root / "superlink.sqlite"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def certificates(self) -> CoordinatorCertificates:
        certs = CoordinatorCertificates(
            ca_certificate=self.certs_dir / "ca.pem",
            ca_private_key=self.certs_dir / "ca.key",
            server_certificate=self.certs_dir / "server.pem",
            server_private_key=self.certs_dir / "server.key",
        )
        if not certs.server_certificate.exists() or not certs.ca_certificate.exists():
            raise FederationError(
                f"no TLS certificates in {self.certs_dir}: run "
                f"'sscjak-coordinator certs {self.certs_dir} --host HOST' first"
            )
        return certs

    def save_settings(self, settings: SuperLinkSettings) -> Path:
        data = {
            "fleet_host": settings.fleet_host,
            "fleet_port": settings.fleet_port,
            "control_port": settings.control_port,
            "insecure": settings.certificates is None,
            "node_authentication": settings.node_authentication,
        }
        path = self.root / SUPERLINK_SETTINGS_FILE
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path

    def load_settings(self) -> SuperLinkSettings:
        path = self.root / SUPERLINK_SETTINGS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FederationError(
                f"{self.root} has no running SuperLink: start 'sscjak-coordinator serve "
                f"--home {self.root}' first"
            ) from None
        return SuperLinkSettings(
            fleet_host=data["fleet_host"],
            fleet_port=int(data["fleet_port"]),
            control_port=int(data["control_port"]),
            database=self.database,
            flwr_home=self.flwr_home,
            certificates=None if data["insecure"] else self.certificates(),
            node_authentication=bool(data["node_authentication"]),
        )


def start_superlink(
    processes: ProcessGroup, settings: SuperLinkSettings, timeout: float = 60.0
) -> StartedProcess:
    """Start the SuperLink of ``settings`` and wait until both listeners accept connections."""
    settings.flwr_home.mkdir(parents=True, exist_ok=True)
    write_cli_connection(settings)
    started = processes.start(
        "superlink", superlink_command(settings), flower_environment(settings.flwr_home)
    )
    try:
        wait_for_port("127.0.0.1", settings.control_port, timeout, started.process)
        fleet_probe = (
            "127.0.0.1" if settings.fleet_host in ("0.0.0.0", "::") else settings.fleet_host
        )
        wait_for_port(fleet_probe, settings.fleet_port, timeout, started.process)
    except (TimeoutError, RuntimeError) as error:
        raise FederationError(
            f"the SuperLink did not start: {error}\n{started.log_tail()}"
        ) from None
    return started


def write_app_project(directory: Path, run_config: Mapping[str, Any]) -> Path:
    """The Flower app project ``flwr run`` bundles: a ``pyproject.toml`` only.

    Its components name installed code: the ServerApp
    ``sscjak.coordinator.federation.server_app:app`` and, because Flower requires one, the
    placeholder ``…:client_app_not_used`` — sscjak nodes never run a pushed bundle, and a
    stock Flower node running this one would find no handler and answer nothing.
    ``run_config`` gives the keys (and defaults) the run config may override.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config_lines = [f"{key} = {json.dumps(value)}" for key, value in run_config.items()]
    text = "\n".join(
        [
            "[build-system]",
            'requires = ["hatchling"]',
            'build-backend = "hatchling.build"',
            "",
            "[project]",
            'name = "sscjak-analysis"',
            'version = "1.0.0"',
            'description = "sscjak pooled analysis (ServerApp of the installed sscjak package)"',
            'license = "Apache-2.0"',
            'dependencies = ["flwr==1.42.0"]',
            "",
            "[tool.flwr.app]",
            'publisher = "sscjak"',
            "",
            "[tool.flwr.app.components]",
            'serverapp = "sscjak.coordinator.federation.server_app:app"',
            'clientapp = "sscjak.coordinator.federation.server_app:client_app_not_used"',
            "",
            "[tool.flwr.app.config]",
            *config_lines,
            "",
        ]
    )
    (directory / "pyproject.toml").write_text(text, encoding="utf-8")
    return directory


def follow_progress(
    progress_file: Path,
    timeout: float,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    superlink: StartedProcess | None = None,
) -> dict[str, Any]:
    """Read ``progress_file`` as it grows until ``done`` or ``failed``; return that event."""
    deadline = time.monotonic() + timeout
    position = 0
    while time.monotonic() < deadline:
        if superlink is not None and superlink.process.poll() is not None:
            raise FederationError(
                f"the SuperLink stopped during the analysis\n{superlink.log_tail()}"
            )
        if progress_file.exists():
            with progress_file.open("r", encoding="utf-8") as handle:
                handle.seek(position)
                chunk = handle.read()
            complete, _, _ = chunk.rpartition("\n")
            position += len(complete.encode("utf-8")) + (1 if complete else 0)
            for line in complete.splitlines() if complete else []:
                event = json.loads(line)
                if on_event is not None:
                    on_event(event)
                if event["event"] in ("done", "failed"):
                    return event
        time.sleep(0.2)
    raise FederationError(f"no result after {timeout:.0f} s (progress in {progress_file})")


def run_flower_analysis(
    settings: SuperLinkSettings,
    run_dir: Path,
    *,
    plan_file: Path,
    roster_file: Path,
    out_file: Path,
    round_settings: RoundSettings = DEFAULT_ROUND_SETTINGS,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    superlink: StartedProcess | None = None,
    mode: str = "analysis",
    rounds: int = 1,
) -> dict[str, Any]:
    """Submit one analysis (or ping) run to the SuperLink and wait for its last event."""
    run_dir.mkdir(parents=True, exist_ok=True)
    progress_file = run_dir / "progress.jsonl"
    progress_file.unlink(missing_ok=True)
    run_config = {
        "mode": mode,
        "plan_file": str(Path(plan_file).resolve()),
        "roster_file": str(Path(roster_file).resolve()),
        "out_file": str(Path(out_file).resolve()),
        "progress_file": str(progress_file.resolve()),
        **round_settings.to_run_config(),
        "rounds": int(rounds),
    }
    app_dir = write_app_project(run_dir / "app", run_config)
    try:
        start_flower_run(settings, app_dir, {})
    except RuntimeError as error:
        raise FederationError(f"could not start the analysis run: {error}") from None
    longest = round_settings.longest_run_seconds(rounds)
    event = follow_progress(progress_file, longest, on_event, superlink)
    if event["event"] == "failed":
        # the one message of a failure (the progress lines show none for it)
        raise FederationError(f"the analysis failed: {event['reason']}")
    return event
