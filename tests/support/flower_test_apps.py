"""Flower app bundles that tests push straight to a SuperLink's Control API.

Such a bundle stands for whatever a coordinator (honest or not) could push: a planted
ClientApp, a ServerApp recording what nodes send, one crafting malformed messages.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

from sscjak.coordinator.federation.control_api import start_flower_run
from sscjak.coordinator.federation.superlink_process import SuperLinkSettings


def write_app_pyproject(
    app_dir: Path,
    *,
    name: str,
    description: str,
    publisher: str,
    serverapp: str,
    clientapp: str,
    config: dict[str, str],
) -> None:
    """The bundle's pyproject.toml: components and run config (string values)."""
    config_lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in config.items())
    (app_dir / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "{name}"
            version = "1.0.0"
            description = "{description}"
            license = "Apache-2.0"
            dependencies = ["flwr==1.42.0"]

            [tool.flwr.app]
            publisher = "{publisher}"

            [tool.flwr.app.components]
            serverapp = "{serverapp}"
            clientapp = "{clientapp}"

            [tool.flwr.app.config]
            """
        )
        + config_lines
        + "\n"
    )


def run_app_and_read(
    settings: SuperLinkSettings, app_dir: Path, out_file: Path, timeout: float, what: str
) -> Any:
    """Push the bundle, wait for its ServerApp to write ``out_file`` (JSON), return it."""
    start_flower_run(settings, app_dir)
    deadline = time.monotonic() + timeout
    while not out_file.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert out_file.exists(), f"the {what} ServerApp never finished"
    time.sleep(0.5)  # let the writer close the file
    return json.loads(out_file.read_text())
