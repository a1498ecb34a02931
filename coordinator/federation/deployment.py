"""The coordinator's deployment: its home folder, its processes, and one analysis run.

Home folder layout (``sscjak-coordinator serve --home HOME``)::

    HOME/certs/{ca,server}.{pem,key}   study CA and SuperLink certificate (certs command)
    HOME/flwr_home/                    FLWR_HOME of the SuperLink and its SuperExec, and
                                       the connection an operator's ``flwr ls`` uses
    HOME/superlink.sqlite              SuperLink state (--database)
    HOME/superlink.json                where the running SuperLink listens (for ``run``)
    HOME/runs/<stamp>/                 per-analysis app project, progress, log

Processes are started in their own session and stopped by PID (:class:`ProcessGroup`),
never by name. Flower's ServerApp runs in a process the SuperLink's SuperExec starts; a
run is submitted over the Control API (:mod:`~sscjak.coordinator.federation.control_api`,
as ``flwr run`` would) and followed through its progress file
(:mod:`sscjak.coordinator.federation.server_app`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sscjak.coordinator.federation.certs import CoordinatorCertificates
from sscjak.coordinator.federation.control_api import start_flower_run
from sscjak.coordinator.federation.errors import FederationError
from sscjak.coordinator.federation.round_settings import DEFAULT_ROUND_SETTINGS, RoundSettings
from sscjak.coordinator.federation.superlink_process import (
    SuperLinkSettings,
    superlink_command,
    write_cli_connection,
)
from sscjak.shared.flower_environment import flower_environment
from sscjak.shared.process_control import ProcessGroup, StartedProcess, wait_for_port

#: Settings file written by ``serve`` for ``run``.
SUPERLINK_SETTINGS_FILE = "superlink.json"

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
    """The Flower app project a run bundles: a ``pyproject.toml`` only.

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
        start_flower_run(settings, app_dir)
    except FederationError as error:
        raise FederationError(f"could not start the analysis run: {error}") from None
    longest = round_settings.longest_run_seconds(rounds)
    event = follow_progress(progress_file, longest, on_event, superlink)
    if event["event"] == "failed":
        # the one message of a failure (the progress lines show none for it)
        raise FederationError(f"the analysis failed: {event['reason']}")
    return event
