"""Tests of sscjak.node.flower.supernode_process: how the centre's SuperNode is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from sscjak.node.flower.supernode_process import SuperNodeSettings, supernode_command
from sscjak.shared.flower_environment import flower_environment


def test_supernode_connects_out_with_tls_and_node_key_and_runs_no_executor(tmp_path):
    settings = SuperNodeSettings(
        superlink="coordinator.example.org:9092",
        runtime_port=45000,
        root_certificates=Path("/etc/sscjak/ca.pem"),
        auth_private_key=Path("/var/lib/sscjak/flower_auth_key"),
    )
    command = supernode_command(settings)
    text = " ".join(command)
    assert command[0] == "flower-supernode"
    assert "--superlink coordinator.example.org:9092" in text
    assert "--root-certificates /etc/sscjak/ca.pem" in text
    assert "--auth-supernode-private-key /var/lib/sscjak/flower_auth_key" in text
    # process isolation: Flower starts no ClientApp executor; Runtime API on loopback only
    assert "--isolation process" in text
    assert "--host 127.0.0.1 --port 45000" in text
    assert "--insecure" not in command
    assert settings.runtime_api_address == "127.0.0.1:45000"


def test_tls_is_the_default_and_insecure_must_be_asked_for():
    with pytest.raises(ValueError, match="--root-certificates"):
        SuperNodeSettings(superlink="h:1", runtime_port=2)
    with pytest.raises(ValueError, match="TLS"):
        SuperNodeSettings(
            superlink="h:1", runtime_port=2, insecure=True, auth_private_key=Path("k")
        )
    insecure = SuperNodeSettings(superlink="h:1", runtime_port=2, insecure=True)
    assert "--insecure" in supernode_command(insecure)
    assert "--root-certificates" not in supernode_command(insecure)


def test_flower_runs_without_telemetry_or_update_checks(tmp_path):
    environment = flower_environment(tmp_path, base={})
    assert environment["FLWR_TELEMETRY_ENABLED"] == "0"
    assert environment["FLWR_DISABLE_UPDATE_CHECK"] == "1"
    assert environment["FLWR_HOME"] == str(tmp_path)


def test_the_runner_stops_when_its_supernode_is_gone() -> None:
    # Nothing listens on this loopback port: the SuperNode has exited. Flower's own retry
    # invoker would retry forever; the runner must notice its stop event and return.
    import socket
    import threading
    import time

    from sscjak.node.flower.supernode_process import LocalClientAppRunner

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = LocalClientAppRunner(f"127.0.0.1:{port}", lambda message, context: message)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    finished = threading.Event()
    worker = threading.Thread(target=lambda: (runner.run(stop), finished.set()), daemon=True)
    started = time.monotonic()
    worker.start()
    assert finished.wait(timeout=60), "runner kept retrying after stop was set"
    assert time.monotonic() - started < 60
