"""A first study as a new coordinator runs it: a centre offline, a second ``serve``.

One coordinator home, certificates, a roster of three centres that all approved the
default plan, ``sscjak-coordinator serve``, and nodes for two of the three centres
only (the third is never started). Everything on 127.0.0.1; every process stopped by
PID at the end, logs printed on failure.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ports import free_port

from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders
from sscjak.shared.process_control import ProcessGroup, wait_for_port

pytestmark = pytest.mark.integration

NODE = [sys.executable, "-m", "sscjak.node.cli"]
COORDINATOR = [sys.executable, "-m", "sscjak.coordinator.cli"]


def check(command: list[str], timeout: float = 120) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


class Study:
    """The coordinator's home, roster and ports, and the processes running for it."""

    def __init__(self, root: Path, processes: ProcessGroup) -> None:
        self.root = root
        self.processes = processes
        self.home = root / "coordinator"
        self.roster = root / "roster.toml"
        self.folders = dict(list(demo_centre_folders().items())[:3])
        self.fleet_port, self.control_port = free_port(), free_port()

    @property
    def names(self) -> list[str]:
        return list(self.folders)

    def set_up(self) -> None:
        check([*COORDINATOR, "certs", str(self.home / "certs"), "--host", "127.0.0.1"])
        for name in self.names:
            state = self.root / "centres" / name
            check([*NODE, "keys", "--state", str(state), "--name", name])
            check([*NODE, "keys", "--state", str(state), "--out", str(state / "entry.toml")])
            check(
                [
                    *COORDINATOR,
                    "roster",
                    "add",
                    "--roster",
                    str(self.roster),
                    "--entry",
                    str(state / "entry.toml"),
                ]
            )
        for name in self.names:
            state = self.root / "centres" / name
            check(
                [
                    *NODE,
                    "approve",
                    "default",
                    "--roster",
                    str(self.roster),
                    "--state",
                    str(state),
                    "--yes",
                ]
            )

    def serve_command(self, fleet_port: int | None = None) -> list[str]:
        return [
            *COORDINATOR,
            "serve",
            "--home",
            str(self.home),
            "--fleet-address",
            f"127.0.0.1:{fleet_port or self.fleet_port}",
            "--control-port",
            str(self.control_port),
            "--roster",
            str(self.roster),
        ]

    def start_serve(self) -> None:
        link = self.processes.start("coordinator-serve", self.serve_command())
        deadline = time.monotonic() + 120
        while "SuperLink running" not in link.log_tail() and time.monotonic() < deadline:
            assert link.process.poll() is None, link.log_tail()
            time.sleep(0.3)
        wait_for_port("127.0.0.1", self.fleet_port, 10)

    def start_node(self, name: str) -> None:
        self.processes.start(
            f"node-{name}",
            [
                *NODE,
                "serve",
                "--state",
                str(self.root / "centres" / name),
                "--data",
                str(self.folders[name]),
                "--superlink",
                f"127.0.0.1:{self.fleet_port}",
                "--root-certificates",
                str(self.home / "certs" / "ca.pem"),
            ],
        )


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("first-study")
    with ProcessGroup(root / "logs") as processes:
        study = Study(root, processes)
        study.set_up()
        study.start_serve()
        try:
            yield study
        finally:
            print(processes.logs())


def test_a_second_serve_on_a_busy_port_says_so_and_exits_1(study):
    done = subprocess.run(
        study.serve_command(fleet_port=free_port()), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"port {study.control_port} is in use" in done.stderr
    assert "SuperLink running" not in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    # the first SuperLink is untouched and still answers
    wait_for_port("127.0.0.1", study.control_port, 5)


def test_run_with_a_centre_offline_names_it_once_and_says_what_to_do(study):
    online, offline = study.names[:2], study.names[2]
    for name in online:
        study.start_node(name)
    out = study.root / "results.json"
    started = time.monotonic()
    done = subprocess.run(
        [
            *COORDINATOR,
            "run",
            "--home",
            str(study.home),
            "--roster",
            str(study.roster),
            "--out",
            str(out),
            "--wait-for-nodes",
            "5",
            "--timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    seconds = time.monotonic() - started
    printed = done.stdout + done.stderr
    assert done.returncode == 1, printed
    assert not out.exists()
    assert "Traceback" not in printed
    # while waiting: who is awaited, who is online, the time left
    waiting = re.findall(r"^waiting for (.+) \(online: (.*)\), (\d+) s left$", done.stdout, re.M)
    assert waiting, printed
    assert all(offline in awaited for awaited, _, _ in waiting)
    assert int(waiting[0][2]) <= 5
    assert len(waiting) <= 3  # a line every few seconds at most
    # one failure message, on stderr, naming the missing centre and what to do
    assert done.stderr.count("error:") == 1, printed
    assert "analysis failed" not in done.stdout
    (message,) = [line for line in done.stderr.splitlines() if "error:" in line]
    assert offline in message and "not online" in message
    assert f"start 'sscjak-node serve' at {offline}" in message
    assert "--wait-for-nodes" in message
    assert message.count(offline) == 2  # who is missing; where to start serve
    assert seconds < 120, printed


def test_process_logs_hold_no_terminal_escape_sequences(study):
    logs = [*study.root.joinpath("logs").glob("*.log"), *study.home.joinpath("logs").glob("*.log")]
    assert any(path.name == "superlink.log" for path in logs)
    for path in logs:
        text = path.read_bytes()
        assert b"\x1b" not in text, f"{path} holds escape sequences"
    # Flower wrote its coloured log lines there, now plain
    superlink_log = study.home.joinpath("logs", "superlink.log").read_text(errors="replace")
    assert "INFO" in superlink_log
