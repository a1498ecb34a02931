"""The federation as its users run it: the commands of docs/federation.md, as processes.

``sscjak-coordinator certs`` → centres' ``keys``/``flower-key`` → ``roster add`` →
``approve`` → ``sscjak-coordinator serve --roster`` → three ``sscjak-node serve`` →
``sscjak-coordinator run``; and ``sscjak-coordinator demo``. Everything on 127.0.0.1;
every process stopped by PID at the end, logs printed on failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from deploy_units import stop_timeout_seconds
from ports import free_port

from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders, demo_plan
from sscjak.shared.process_control import ProcessGroup, wait_for_port

pytestmark = pytest.mark.integration

NODE = [sys.executable, "-m", "sscjak.node.cli"]
COORDINATOR = [sys.executable, "-m", "sscjak.coordinator.cli"]
PROVENANCE_KEYS = {"participants", "attempts", "excluded_nodes", "software", "created"}


def check(command: list[str], timeout: float = 120) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def simulate(folders: list[Path], out: Path, plan: Path | None = None) -> dict:
    plan_option = ["--plan", str(plan)] if plan else []
    check([*COORDINATOR, "simulate", *map(str, folders), "--out", str(out), *plan_option])
    return json.loads(out.read_text())


def comparable(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in PROVENANCE_KEYS}


def test_serve_and_run_as_documented(tmp_path):
    folders = dict(list(demo_centre_folders().items())[:3])
    home = tmp_path / "coordinator"
    check([*COORDINATOR, "certs", str(home / "certs"), "--host", "127.0.0.1"])
    roster = tmp_path / "roster.toml"
    for name in folders:
        state = tmp_path / "centres" / name
        check([*NODE, "keys", "--state", str(state), "--name", name])
        check([*NODE, "flower-key", "--state", str(state)])
        check([*NODE, "keys", "--state", str(state), "--out", str(state / "entry.toml")])
        check(
            [
                *COORDINATOR,
                "roster",
                "add",
                "--roster",
                str(roster),
                "--entry",
                str(state / "entry.toml"),
            ]
        )
    for name in folders:
        state = tmp_path / "centres" / name
        check(
            [*NODE, "approve", "default", "--roster", str(roster), "--state", str(state), "--yes"]
        )

    fleet_port, control_port = free_port(), free_port()
    with ProcessGroup(tmp_path / "logs") as processes:
        try:
            link = processes.start(
                "coordinator-serve",
                [
                    *COORDINATOR,
                    "serve",
                    "--home",
                    str(home),
                    "--fleet-address",
                    f"127.0.0.1:{fleet_port}",
                    "--control-port",
                    str(control_port),
                    "--roster",
                    str(roster),
                ],
            )
            deadline = time.monotonic() + 120
            while "SuperLink running" not in link.log_tail() and time.monotonic() < deadline:
                assert link.process.poll() is None, link.log_tail()
                time.sleep(0.3)
            assert "registered 3 node key(s)" in link.log_tail()
            wait_for_port("127.0.0.1", fleet_port, 10)
            for name, folder in folders.items():
                processes.start(
                    f"node-{name}",
                    [
                        *NODE,
                        "serve",
                        "--state",
                        str(tmp_path / "centres" / name),
                        "--data",
                        str(folder),
                        "--superlink",
                        f"127.0.0.1:{fleet_port}",
                        "--root-certificates",
                        str(home / "certs" / "ca.pem"),
                    ],
                )
            out = tmp_path / "results.json"
            printed = check(
                [
                    *COORDINATOR,
                    "run",
                    "--home",
                    str(home),
                    "--roster",
                    str(roster),
                    "--out",
                    str(out),
                    "--report",
                    str(tmp_path / "report"),
                    "--timeout",
                    "30",
                ],
                timeout=300,
            )
            assert "nodes answered 3/3" in printed
            assert "attempt 1: 3/3 nodes answered" in printed
            assert (tmp_path / "report" / "report.html").exists()
            results = json.loads(out.read_text())
            reference = simulate(list(folders.values()), tmp_path / "simulated.json")
            assert comparable(results) == comparable(reference)
            # stopped as the deploy units stop a service: SIGTERM, then up to
            # TimeoutStopSec; 'serve' itself gives its Flower child a grace period first
            for started in reversed(processes.started):
                role = "coordinator" if started is link else "node"
                processes.stop(started, grace=stop_timeout_seconds(role))
        finally:
            print(processes.logs())
    assert all(s.process.poll() is not None for s in processes.started)
    # SIGTERM made 'serve' stop its SuperLink and forget where it listened
    assert link.process.returncode == 0
    assert not (home / "superlink.json").exists()


def test_run_without_a_running_superlink_says_what_to_do(tmp_path):
    done = subprocess.run(
        [
            *COORDINATOR,
            "run",
            "--home",
            str(tmp_path),
            "--roster",
            str(tmp_path / "r.toml"),
            "--out",
            str(tmp_path / "o.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "sscjak-coordinator serve" in done.stderr
    assert "Traceback" not in done.stderr


def test_node_serve_refuses_to_start_without_tls_material(tmp_path):
    state = tmp_path / "state"
    check([*NODE, "keys", "--state", str(state), "--name", "centre-x"])
    done = subprocess.run(
        [
            *NODE,
            "serve",
            "--state",
            str(state),
            "--data",
            str(tmp_path),
            "--superlink",
            "127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "--root-certificates" in done.stderr
    assert "Traceback" not in done.stderr


def test_demo_prints_the_pooled_table_and_leaves_no_process(tmp_path):
    """The demo's federation with the demo plan plus heterogeneity (``--plan``): the
    random-effects secure sum runs through Flower too, and everything equals simulate."""
    out = tmp_path / "demo.json"
    keep = tmp_path / "demo"
    plan_file = tmp_path / "demo_plan.toml"
    plan_file.write_text(
        replace(demo_plan(), heterogeneity=True).canonical_toml, encoding="utf-8"
    )
    printed = check(
        [*COORDINATOR, "demo", "--plan", str(plan_file), "--out", str(out), "--keep", str(keep)],
        timeout=400,
    )
    centres = demo_centre_folders()
    assert f"nodes answered {len(centres)}/{len(centres)}" in printed
    assert "Pooled analysis" in printed
    assert "Drug retention (time to JAK inhibitor stop) by jaki_drug" in printed
    assert "Heterogeneity between centres" in printed
    results = json.loads(out.read_text())
    shown = [row for row in results["heterogeneity"] if not row["suppressed"]]
    assert shown and all(row["random_effects"] is not None for row in shown)
    reference = simulate(list(centres.values()), tmp_path / "simulated.json", plan_file)
    assert comparable(results) == comparable(reference)
    # every process the demo started is gone (ps lists no process using its state dir)
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(keep) not in listing
