"""A whole federation on 127.0.0.1 as real processes: the demo, the tests, the benchmark.

One SuperLink (TLS, node authentication, Fleet API and Control API on separate loopback
ports) and one ``sscjak-node serve`` process per centre folder, each with its own
temporary state directory. Every centre is set up the way a real centre is, through the
node's own commands — ``sscjak-node keys``, ``flower-key`` and ``approve --yes`` (the
demo approves automatically: the person running it plays every centre's data steward) —
so this module never imports node code. Every process is stopped by PID on exit, on
error and on Ctrl-C (:class:`sscjak.shared.process_control.ProcessGroup`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sscjak.coordinator.federation.certs import write_coordinator_certificates
from sscjak.coordinator.federation.deployment import run_flower_analysis, start_superlink
from sscjak.coordinator.federation.errors import FederationError
from sscjak.coordinator.federation.round_settings import RoundSettings
from sscjak.coordinator.federation.superlink_process import SuperLinkSettings, register_roster_nodes
from sscjak.shared.flower_environment import flower_environment
from sscjak.shared.process_control import ProcessGroup, StartedProcess, free_port
from sscjak.shared.protocol import MIN_PARTICIPANTS
from sscjak.shared.roster import ROSTER_SCHEMA, Roster, load_roster

NODE_CLI = [sys.executable, "-m", "sscjak.node.cli"]
#: A federation on one machine answers fast; its nodes may take a minute to connect.
LOOPBACK_ROUND_SETTINGS = RoundSettings(timeout=30.0, wait_for_nodes=60.0)


def _run_all(commands: Sequence[Sequence[str]], what: str, timeout: float = 120.0) -> list[str]:
    """Run ``commands`` concurrently; their stdout, or a FederationError naming the failures."""
    running = [
        subprocess.Popen(
            list(c), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
        )
        for c in commands
    ]
    outputs, failures = [], []
    for command, process in zip(commands, running, strict=True):
        out, err = process.communicate(timeout=timeout)
        outputs.append(out)
        if process.returncode != 0:
            failures.append(f"{' '.join(command[2:])}: {(out + err).strip()[-600:]}")
    if failures:
        raise FederationError(f"{what} failed:\n" + "\n".join(failures))
    return outputs


@dataclass
class LoopbackFederation:
    """Set up, run and tear down a loopback federation of ``centres`` (name → folder)."""

    root: Path
    centres: dict[str, Path]
    plan_file: Path | None = None
    node_timeout: float = 60.0
    processes: ProcessGroup = field(init=False)
    settings: SuperLinkSettings = field(init=False)
    superlink: StartedProcess = field(init=False)
    roster_file: Path = field(init=False)
    nodes: dict[str, StartedProcess] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.processes = ProcessGroup(self.root / "logs")
        if len(self.centres) < MIN_PARTICIPANTS:
            raise FederationError(
                f"a federation needs at least {MIN_PARTICIPANTS} centres (secure aggregation)"
            )

    # -- setup -----------------------------------------------------------------------
    def state_dir(self, name: str) -> Path:
        return self.root / "nodes" / name

    def start(self, progress: Callable[[str], None] = print) -> LoopbackFederation:
        """Certificates, SuperLink, centre keys, roster, approvals, registration, nodes."""
        started = time.monotonic()
        certificates = write_coordinator_certificates(self.root / "certs", ["127.0.0.1"])
        self.settings = SuperLinkSettings(
            fleet_host="127.0.0.1",
            fleet_port=free_port(),
            control_port=free_port(),
            database=self.root / "superlink.sqlite",
            flwr_home=self.root / "flwr_home",
            certificates=certificates,
        )
        self.superlink = start_superlink(self.processes, self.settings)
        progress(
            f"SuperLink up (pid {self.superlink.pid}): Fleet API {self.settings.fleet_address}, "
            f"Control API {self.settings.control_address}, TLS + node authentication"
        )
        names = sorted(self.centres)
        _run_all(
            [[*NODE_CLI, "flower-key", "--state", str(self.state_dir(n))] for n in names],
            "creating node-authentication keys",
        )
        _run_all(
            [
                [
                    *NODE_CLI,
                    *("keys", "--state", str(self.state_dir(n)), "--name", n),
                    *("--out", str(self.state_dir(n) / "roster_entry.toml")),
                ]
                for n in names
            ],
            "creating node keys",
        )
        self.roster_file = self.root / "roster.toml"
        text = f'schema = "{ROSTER_SCHEMA}"\n'
        for name in names:
            text += "\n" + (self.state_dir(name) / "roster_entry.toml").read_text("utf-8")
        self.roster_file.write_text(text, encoding="utf-8")
        roster = load_roster(self.roster_file)
        self.approve_all(roster)
        register_roster_nodes(self.settings, roster)
        for name in names:
            self.start_node(name)
        progress(
            f"{len(names)} nodes started ({', '.join(names)}) in {time.monotonic() - started:.1f} s"
        )
        return self

    def approve_all(
        self,
        roster: Roster,
        names: Sequence[str] | None = None,
        plan_file: Path | None = None,
        roster_file: Path | None = None,
    ) -> None:
        """Each centre approves a plan (default: the federation's) under the study roster
        (default: the federation's; ``sscjak-node approve --yes``)."""
        roster_file = roster_file or self.roster_file
        plan_file = plan_file or self.plan_file
        plan_argument = str(plan_file) if plan_file else "default"
        _run_all(
            [
                [
                    *NODE_CLI,
                    *("approve", plan_argument, "--roster", str(roster_file)),
                    *("--state", str(self.state_dir(n)), "--yes"),
                ]
                for n in (names or roster.names)
            ],
            "approving the plan",
        )

    def start_node(
        self,
        name: str,
        *,
        extra_environment: Mapping[str, str] | None = None,
        extra_arguments: Sequence[str] = (),
    ) -> StartedProcess:
        """Start (or restart) the ``sscjak-node serve`` process of centre ``name``.

        ``extra_environment`` is added to the node's environment (tests: e.g. a shifted
        clock through libfaketime) and ``extra_arguments`` to its ``serve`` command line.
        """
        command = [
            *NODE_CLI,
            "serve",
            "--state",
            str(self.state_dir(name)),
            "--data",
            str(self.centres[name]),
            "--superlink",
            self.settings.fleet_address,
            "--root-certificates",
            str(self.settings.certificates.ca_certificate),  # type: ignore[union-attr]
            *extra_arguments,
        ]
        environment = flower_environment(self.state_dir(name) / "flwr_home")
        environment.update(extra_environment or {})
        node = self.processes.start(f"node-{name}", command, environment)
        self.nodes[name] = node
        return node

    def stop_node(self, name: str, hard: bool = True) -> None:
        """Stop centre ``name`` (SIGKILL by default: a crash, not a goodbye)."""
        self.processes.stop(self.nodes[name], hard=hard)

    def pause_node(self, name: str) -> None:
        """Freeze centre ``name``'s processes (SIGSTOP): online for Flower, answering nothing."""
        os.killpg(self.nodes[name].pid, signal.SIGSTOP)

    # -- analyses --------------------------------------------------------------------
    def analyse(
        self,
        out_file: Path,
        *,
        round_settings: RoundSettings = LOOPBACK_ROUND_SETTINGS,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        run_name: str | None = None,
        mode: str = "analysis",
        rounds: int = 1,
        roster_file: Path | None = None,
        plan_file: Path | None = None,
    ) -> dict[str, Any]:
        """One analysis (or ``mode="ping"`` rounds) through Flower; the last progress event."""
        run_dir = self.root / "runs" / (run_name or time.strftime("%H%M%S"))
        plan = plan_file or self.plan_file
        if plan is None:
            from sscjak.shared.plan import default_plan

            plan = self.root / "default_plan.toml"
            plan.write_text(default_plan().canonical_toml, encoding="utf-8")
        return run_flower_analysis(
            self.settings,
            run_dir,
            plan_file=plan,
            roster_file=roster_file or self.roster_file,
            out_file=out_file,
            round_settings=round_settings,
            on_event=on_event,
            superlink=self.superlink,
            mode=mode,
            rounds=rounds,
        )

    # -- teardown --------------------------------------------------------------------
    def close(self) -> None:
        self.processes.stop_all()

    def __enter__(self) -> LoopbackFederation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
