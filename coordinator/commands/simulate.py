"""``sscjak-coordinator simulate DIR [DIR …] [--plan PLAN] --out FILE [--report DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from sscjak.coordinator.commands.command_support import read_plan_argument, write_report_if_asked
from sscjak.coordinator.federation.in_process import pool_centre_summaries, pool_random_effects
from sscjak.coordinator.results.pooled_consistency import InconsistentPooledSummaryError
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.coordinator.results.results_table import format_results_table
from sscjak.coordinator.results.schema import write_results
from sscjak.shared.cli_support import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="pooled analysis of local centre folders, one in-process node per folder",
        description=(
            "Run the pooled analysis over local centre folders: each folder is read and "
            "summarised by the node code, the summaries are pooled and the results file "
            "is written. Needs no network."
        ),
    )
    parser.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="centre folder")
    parser.add_argument(
        "--plan", type=Path, metavar="FILE", help="plan TOML (default: the reference study)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="results JSON to write"
    )
    parser.add_argument("--report", type=Path, metavar="DIR", help="also write the study report")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plan = read_plan_argument(args.plan)
    missing = [str(folder) for folder in args.folders if not folder.is_dir()]
    if missing:
        raise UserError(f"not a folder: {', '.join(missing)}")
    pooled, nodes = pool_centre_summaries(args.folders, plan)
    try:
        random_effects = (
            pool_random_effects(args.folders, plan, pooled) if plan.heterogeneity else None
        )
        results = build_results(pooled, plan, nodes, random_effects)
    except InconsistentPooledSummaryError as error:
        # nothing has been written yet: the message names every failing check
        raise UserError(str(error)) from None
    write_results(results, args.out)
    print(format_results_table(results))
    print(f"\nResults written to {args.out}")
    write_report_if_asked(results, args.report)
    return 0
