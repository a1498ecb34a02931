"""Settings of a SuperLink for the tests: every listener on 127.0.0.1, its state in one folder."""

from __future__ import annotations

from pathlib import Path

from ports import free_port

from sscjak.coordinator.federation.certs import write_coordinator_certificates
from sscjak.coordinator.federation.superlink_process import SuperLinkSettings


def loopback_superlink_settings(root: Path, *, insecure: bool = False) -> SuperLinkSettings:
    """Ports of this worker's block, the database and FLWR_HOME under ``root``; TLS with a
    study CA written to ``root/certs`` and node authentication, unless ``insecure``."""
    certificates = None
    if not insecure:
        certificates = write_coordinator_certificates(root / "certs", ["127.0.0.1"])
    return SuperLinkSettings(
        fleet_host="127.0.0.1",
        fleet_port=free_port(),
        control_port=free_port(),
        database=root / "superlink.sqlite",
        flwr_home=root / "flwr_home",
        certificates=certificates,
        node_authentication=not insecure,
    )
