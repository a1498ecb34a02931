"""The systemd units of ``deploy/systemd`` as the tests read them."""

from __future__ import annotations

import configparser
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = {
    "node": DEPLOY / "systemd" / "sscjak-node.service",
    "coordinator": DEPLOY / "systemd" / "sscjak-coordinator.service",
}


def read_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(path.read_text(encoding="utf-8"))
    return unit


def stop_timeout_seconds(role: str) -> float:
    """How long the service manager waits after SIGTERM before SIGKILL: the unit's
    ``TimeoutStopSec`` (in seconds)."""
    return float(read_unit(UNITS[role])["Service"]["TimeoutStopSec"])
