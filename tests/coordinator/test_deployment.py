"""Tests of sscjak.coordinator.federation.deployment: app project, progress, processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import tomllib

import pytest
from flwr.common.config import validate_config

from sscjak.coordinator.federation.deployment import follow_progress, write_app_project
from sscjak.coordinator.federation.errors import FederationError
from sscjak.shared.process_control import ProcessGroup, descendant_pids


def test_app_project_is_a_valid_flower_app_naming_installed_code(tmp_path):
    project = write_app_project(tmp_path / "app", {"plan_file": "/p.toml", "timeout": 30.0})
    config = tomllib.loads((project / "pyproject.toml").read_text())
    valid, errors, _ = validate_config(config, check_module=True, project_dir=project)
    assert valid, errors
    components = config["tool"]["flwr"]["app"]["components"]
    assert components["serverapp"] == "sscjak.coordinator.federation.server_app:app"
    assert config["tool"]["flwr"]["app"]["config"] == {"plan_file": "/p.toml", "timeout": 30.0}
    assert [p.name for p in project.iterdir()] == ["pyproject.toml"]  # no code in the bundle


def test_follow_progress_reports_events_until_done(tmp_path):
    progress = tmp_path / "progress.jsonl"
    seen: list[str] = []

    def writer() -> None:
        for event in ({"event": "nodes"}, {"event": "reply"}, {"event": "done", "out": "x"}):
            time.sleep(0.1)
            with progress.open("a") as handle:
                handle.write(json.dumps(event) + "\n")

    thread = threading.Thread(target=writer)
    thread.start()
    last = follow_progress(progress, timeout=10, on_event=lambda e: seen.append(e["event"]))
    thread.join()
    assert seen == ["nodes", "reply", "done"]
    assert last == {"event": "done", "out": "x"}


def test_follow_progress_gives_up_after_its_timeout(tmp_path):
    with pytest.raises(FederationError, match="no result"):
        follow_progress(tmp_path / "never.jsonl", timeout=0.5)


def test_stopping_a_process_also_stops_its_detached_children(tmp_path):
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
        " start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    with ProcessGroup(tmp_path) as group:
        parent = group.start("parent", [sys.executable, "-c", script])
        deadline = time.monotonic() + 20
        while not descendant_pids(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        children = descendant_pids(parent.pid)
        assert len(children) == 1
    assert parent.process.poll() is not None
    time.sleep(0.2)
    alive = subprocess.run(["ps", "-o", "stat=", "-p", str(children[0])], capture_output=True)
    assert alive.stdout.strip()[:1] in (b"", b"Z")  # gone, or a zombie awaiting init
