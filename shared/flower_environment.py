"""The environment every Flower process of sscjak runs with, node side and coordinator side.

No telemetry and no online update check (a hospital node must not phone home; Flower
turns both on by default), and Flower's state under the process's own ``FLWR_HOME``
rather than ``~/.flwr``. Flower's logger colours its level names whatever the
environment (``NO_COLOR`` included), so the coordinator's process logs strip terminal
escape sequences as they are written
(:class:`sscjak.shared.process_control.ProcessGroup`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

FLOWER_QUIET_ENVIRONMENT: Mapping[str, str] = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
}


def flower_environment(flwr_home: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a Flower process: ``base`` (default ``os.environ``) + quiet flags."""
    environment = dict(os.environ if base is None else base)
    environment.update(FLOWER_QUIET_ENVIRONMENT)
    environment["FLWR_HOME"] = str(flwr_home)
    return environment
