"""Tests of sscjak.coordinator.federation.superlink_process: the SuperLink's listeners and flags."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from sscjak.coordinator.federation.certs import write_coordinator_certificates
from sscjak.coordinator.federation.superlink_process import (
    FleetOnlyListener,
    SuperLinkSettings,
    superlink_command,
    write_cli_connection,
)
from sscjak.shared.flower_environment import flower_environment


def settings(tmp_path: Path, **changes) -> SuperLinkSettings:
    fields = {
        "fleet_host": "0.0.0.0",
        "fleet_port": 9092,
        "control_port": 9093,
        "database": tmp_path / "db.sqlite",
        "flwr_home": tmp_path / "flwr",
    }
    fields.update(changes)
    if "certificates" not in fields:
        fields["certificates"] = write_coordinator_certificates(
            tmp_path / "certs", ["127.0.0.1"], overwrite=True
        )
    return SuperLinkSettings(**fields)


def test_command_keeps_control_on_loopback_and_turns_every_guard_on(tmp_path):
    command = superlink_command(settings(tmp_path))
    text = " ".join(command)
    assert command[1:3] == ["-m", "sscjak.coordinator.federation.superlink_process"]
    assert "--fleet-address 0.0.0.0:9092" in text
    assert "--host 127.0.0.1 --port 9093" in text
    for flag in (
        "--enable-supernode-auth",
        "--disable-runtime-dependency-installation",
        "--ssl-certfile",
        "--ssl-keyfile",
        "--ssl-ca-certfile",
        "--database",
    ):
        assert flag in command
    assert "--insecure" not in command


def test_node_authentication_without_tls_is_refused(tmp_path):
    with pytest.raises(ValueError, match="TLS"):
        settings(tmp_path, certificates=None)
    insecure = settings(tmp_path, certificates=None, node_authentication=False)
    assert "--insecure" in superlink_command(insecure)
    assert "--enable-supernode-auth" not in superlink_command(insecure)


def test_environment_is_quiet_and_local(tmp_path):
    environment = flower_environment(tmp_path, base={"PATH": "/bin"})
    assert environment == {
        "PATH": "/bin",
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_HOME": str(tmp_path),
    }


def test_cli_connection_points_at_the_loopback_control_api(tmp_path):
    import tomllib

    link = settings(tmp_path)
    written = write_cli_connection(link)
    config = tomllib.loads(written.read_text())
    assert written.stat().st_mode & 0o077 == 0
    assert link.flwr_home.stat().st_mode & 0o077 == 0
    connection = config["superlink"][config["superlink"]["default"]]
    assert connection["address"] == "127.0.0.1:9093"
    assert connection["root-certificates"] == str(link.certificates.ca_certificate)


async def _echo(scope, receive, send):
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/fleet/pull-messages", 200),
        ("/v1/fleet/register-node", 200),
        ("/v1/control/start-run", 404),
        ("/v1/control/register-node", 404),
        ("/v1/runtime/get-nodes", 404),
        ("/docs", 404),
        ("/v1/fleetX/pull-messages", 404),
        ("/", 404),
    ],
)
def test_the_public_listener_serves_only_the_fleet_api(path, status):
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=FleetOnlyListener(_echo))
        async with httpx.AsyncClient(transport=transport, base_url="http://link") as client:
            return await client.post(path)

    response = asyncio.run(call())
    assert response.status_code == status
    if status == 200:
        assert response.text == path


def test_state_left_with_loose_modes_is_tightened_and_new_files_are_private(tmp_path):
    import os
    import stat

    from sscjak.coordinator.federation.superlink_process import make_state_private

    database = tmp_path / "superlink.sqlite"
    for path in (database, tmp_path / "superlink.sqlite-wal"):
        path.write_bytes(b"")
        path.chmod(0o644)
    flwr_home = tmp_path / "flwr_home"
    flwr_home.mkdir(mode=0o755)
    previous = os.umask(0o022)
    try:
        make_state_private(str(database), str(flwr_home))
        (flwr_home / "created_later").write_bytes(b"")
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(previous)
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "superlink.sqlite-wal").stat().st_mode) == 0o600
    assert stat.S_IMODE(flwr_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((flwr_home / "created_later").stat().st_mode) == 0o600
