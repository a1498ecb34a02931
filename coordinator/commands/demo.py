"""``sscjak-coordinator demo [--plan PLAN] [--out FILE] [--report DIR]``: the real federation
on loopback.

Starts a SuperLink (TLS, node authentication) and one ``sscjak-node serve`` process per
bundled demo centre (``coordinator/synthetic/demo_centres/centre_*``) on 127.0.0.1, each with a
temporary state directory, keys, the study roster and an approval of the default plan —
approved automatically, because whoever runs the demo plays every centre's data
steward. Runs the demo plan (or ``--plan``) through Flower and the secure aggregation, prints the
pooled table, and stops every process it started, by PID, whatever happens (errors,
Ctrl-C included).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sscjak.coordinator.commands.command_support import (
    read_plan_argument,
    write_report_if_asked,
)
from sscjak.coordinator.commands.progress_lines import print_progress
from sscjak.coordinator.federation.loopback import LoopbackFederation
from sscjak.coordinator.results.results_table import format_results_table
from sscjak.coordinator.results.schema import read_results
from sscjak.coordinator.synthetic.demo_bundle import (
    bundled_demo_folder,
    demo_centre_folders,
    demo_plan,
)
from sscjak.shared.cli_support import UserError
from sscjak.shared.errors import SscjakError
from sscjak.shared.protocol import MIN_PARTICIPANTS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the demo plan on a real loopback federation of the demo centres",
        description=(
            "Start a SuperLink and one node per bundled demo centre as real processes on "
            "127.0.0.1 (TLS and node authentication on), run the demo plan (the reference "
            "study's changes and drug retention by drug) with secure aggregation, print the "
            "pooled table, stop everything."
        ),
    )
    parser.add_argument(
        "--plan",
        type=Path,
        metavar="PLAN",
        help="run this plan instead of the demo plan (TOML, as for simulate and run)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="results JSON to write (default: none)"
    )
    parser.add_argument("--report", type=Path, metavar="DIR", help="also write the study report")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep state and logs in DIR (default: a temporary folder, removed at the end)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    centres = demo_centre_folders()
    if len(centres) < MIN_PARTICIPANTS:
        raise UserError(
            f"fewer than {MIN_PARTICIPANTS} demo centres found in {bundled_demo_folder()}"
        )
    plan = read_plan_argument(args.plan) if args.plan is not None else demo_plan()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sscjak-demo-") as scratch:
        root = args.keep or Path(scratch)
        out = args.out or root / "results.json"
        plan_file = Path(root) / "demo_plan.toml"
        Path(root).mkdir(parents=True, exist_ok=True)
        plan_file.write_text(plan.canonical_toml, encoding="utf-8")
        federation = LoopbackFederation(root, centres, plan_file=plan_file)
        try:
            federation.start()
            federation.analyse(out, on_event=print_progress, run_name="demo")
        except SscjakError as error:
            raise UserError(f"{error}\n{federation.processes.logs()}") from None
        finally:
            federation.close()
        results = read_results(out)
        print()
        print(format_results_table(results))
        print(f"\nDemo federation: {len(centres)} nodes, {time.monotonic() - started:.1f} s in all")
        if args.out is not None:
            print(f"Results written to {args.out}")
        write_report_if_asked(results, args.report)
    return 0
