"""Pieces the statistician's commands (``simulate``, ``run``, ``demo``) share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sscjak.shared.cli_support import UserError
from sscjak.shared.plan import Plan, PlanError, default_plan, load_plan


def read_plan_argument(path: Path | None) -> Plan:
    """The plan named with ``--plan``, or the default plan; a bad file is a UserError."""
    if path is None:
        return default_plan()
    try:
        return load_plan(path)
    except PlanError as error:
        raise UserError(str(error)) from None


def write_report_if_asked(results: dict[str, Any], report_dir: Path | None) -> None:
    """Write the study report of ``results`` into ``report_dir`` (``--report``), if given."""
    if report_dir is None:
        return
    from sscjak.coordinator.report.write_report import write_report  # matplotlib: only if asked

    files = write_report(results, report_dir)
    print(f"Report written to {files.html}")
