"""``sscjak-coordinator run --plan P --roster R --out FILE [--report DIR]``: one analysis.

Submits the plan to the running SuperLink of ``--home`` (``sscjak-coordinator serve``);
the ServerApp waits up to ``--wait-for-nodes`` seconds for the roster's nodes (showing
who is online and who is awaited), asks every connected roster node, shows the replies
of both exchanges as they arrive ("nodes answered k/n", "seeds revealed k/n"), reruns
without a node that dropped out (never below 3 nodes), and writes the results file of
docs/results-file.md. A failure ends with one message naming the nodes that were not online.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sscjak.coordinator.commands.command_support import read_plan_argument, write_report_if_asked
from sscjak.coordinator.commands.progress_lines import print_progress
from sscjak.coordinator.federation.deployment import CoordinatorHome, run_flower_analysis
from sscjak.coordinator.federation.round_settings import RoundSettings
from sscjak.coordinator.results.results_table import format_results_table
from sscjak.coordinator.results.schema import read_results
from sscjak.shared.cli_support import UserError, counted
from sscjak.shared.roster import load_roster


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run an analysis plan on the connected nodes",
        description="Run a pooled analysis on the centres' nodes connected to the SuperLink.",
    )
    parser.add_argument(
        "--home",
        type=Path,
        required=True,
        metavar="DIR",
        help="coordinator home (the one 'sscjak-coordinator serve' runs with)",
    )
    parser.add_argument(
        "--plan",
        type=Path,
        metavar="FILE",
        help="plan TOML the centres approved (default: the reference study)",
    )
    parser.add_argument(
        "--roster", type=Path, required=True, metavar="FILE", help="study roster TOML"
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="results JSON to write"
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="also write the study report (default: no report)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=RoundSettings.timeout,
        metavar="SECONDS",
        help="seconds to wait for the nodes' answers in each exchange",
    )
    parser.add_argument(
        "--wait-for-nodes",
        type=float,
        default=RoundSettings.wait_for_nodes,
        metavar="SECONDS",
        help="seconds to wait for every roster node to be online before starting",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    home = CoordinatorHome(args.home.resolve())
    settings = home.load_settings()
    try:
        round_settings = RoundSettings(timeout=args.timeout, wait_for_nodes=args.wait_for_nodes)
    except ValueError as error:
        raise UserError(f"--timeout / --wait-for-nodes: {error}") from None
    roster = load_roster(args.roster)  # fail early, with the roster's own message
    run_dir = home.runs_dir / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = read_plan_argument(args.plan)
    plan_file = run_dir / "plan.toml"
    plan_file.write_text(plan.canonical_toml, encoding="utf-8")
    print(
        f"plan {plan.sha256[:12]}, {counted(len(roster), 'roster node')}: starting the "
        f"analysis on the SuperLink (control {settings.control_address}); it waits up to "
        f"{args.wait_for_nodes:g} s for the nodes to be online",
        flush=True,
    )
    run_flower_analysis(
        settings,
        run_dir,
        plan_file=plan_file,
        roster_file=args.roster,
        out_file=args.out,
        round_settings=round_settings,
        on_event=print_progress,
    )
    results = read_results(args.out)
    print(format_results_table(results))
    print(f"\nResults written to {args.out}")
    write_report_if_asked(results, args.report)
    return 0
