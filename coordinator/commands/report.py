"""``sscjak-coordinator report RESULTS --out DIR``: the study report from a results file.

The same report that ``--report DIR`` writes after an analysis, written again later
from a saved ``results.json``, without re-running the analysis. It reads nothing but
that file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sscjak.coordinator.report.write_report import write_report
from sscjak.coordinator.results.schema import ResultsSchemaError, read_results
from sscjak.shared.cli_support import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` sub-command."""
    parser = subparsers.add_parser(
        "report",
        help="write report.html, report.md, tables/*.csv and figures/*.png from a results file",
        description=(
            "Write the study report (report.html, report.md, tables/*.csv, figures/*.png) "
            "again from a saved results.json, without re-running the analysis."
        ),
    )
    parser.add_argument("results", type=Path, help="a results.json written by run/simulate")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder of the report (created; report files in it replaced)",
    )
    parser.set_defaults(func=run_report_command)


def run_report_command(args: argparse.Namespace) -> int:
    """Read the results file, write the report, print where it is."""
    try:
        results = read_results(args.results)
    except ResultsSchemaError as error:
        raise UserError(str(error)) from None
    files = write_report(results, args.out)
    print(f"report written: {files.html}")
    print(f"  {files.markdown}, {len(files.tables)} tables, {len(files.figures)} figures")
    return 0
