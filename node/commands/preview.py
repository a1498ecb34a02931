"""``sscjak-node preview --data DIR [--plan P]``: exactly what this node would send.

Computes the centre's summary vector with the node's own code and prints it decoded
(``SummaryLayout.describe``, the same content the audit log records), its SHA-256 and its
size in bytes. Every number is printed with its unit (``SummaryLayout.unit_text``): a
change cell's sums are exact integers in grid units of the measure's resolution, shown
next to the same sum in the measure's own unit. On the wire the vector travels masked;
its unmasked content is shown here so the data steward sees everything that enters the
pooled sum.
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from sscjak.node.guard.audit_log import summary_digest
from sscjak.node.summarise.summary_vector import summarise_centre
from sscjak.shared.cli_support import UserError
from sscjak.shared.plan import PlanError, default_plan, load_plan
from sscjak.shared.summary_layout import SummaryLayout


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preview",
        help="show exactly the summary this centre would release for a plan",
        description=(
            "Summarise the centre's data folder for PLAN and print the decoded summary "
            "vector (everything that would be released, before masking) and its size."
        ),
    )
    parser.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="the centre's data folder"
    )
    parser.add_argument("--plan", type=Path, help="plan TOML (default: the reference study)")
    parser.add_argument("--json", action="store_true", help="print only the decoded JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        plan = default_plan() if args.plan is None else load_plan(args.plan)
    except PlanError as error:
        raise UserError(str(error)) from None
    if not args.data.is_dir():
        raise UserError(f"not a folder: {args.data}")
    from sscjak.node.data.centre_reader import CentreDataError

    try:
        summary = summarise_centre(args.data, plan)
    except CentreDataError as error:
        problems = "\n".join(f"  {p}" for p in error.problems)
        raise UserError(f"{args.data}: centre data not valid\n{problems}") from None
    layout = SummaryLayout.for_plan(plan)
    decoded = json.dumps(layout.describe(summary), indent=2, ensure_ascii=False)
    if args.json:
        print(decoded)
        return 0
    print(f"Plan {plan.sha256}  ({plan.title})")
    print(
        f"This node would send one vector of {layout.length} integers: "
        f"{8 * layout.length} bytes on the wire (masked), layout {layout.version}."
    )
    print(f"SHA-256 of the unmasked vector (as in the audit log): {summary_digest(summary)}")
    print("Decoded content, each number with its unit (only non-empty histogram bins are listed):")
    for line in readable_lines(layout, summary):
        print(line)
    return 0


def _in_measure_unit(units: int, label: str, grid: Fraction) -> str:
    """A sum in grid units as the same sum in the measure's unit (× grid, × grid² for squares)."""
    scale = grid * grid if label.endswith("_sq") or label == "sum_baseline_change" else grid
    return f"{float(units * scale):g}"


def readable_lines(layout: SummaryLayout, summary: np.ndarray) -> list[str]:
    """The decoded vector, one segment per line, every value next to its unit."""
    decoded: dict[str, Any] = layout.describe(summary)
    lines = [f"layout {decoded['layout']}, plan {decoded['plan_sha256']}"]
    for segment in layout.segments:
        values = decoded[segment.name]
        if segment.is_histogram:
            value_unit, count_unit = segment.units
            bins = ", ".join(f"{value}: {count}" for value, count in values.items()) or "empty"
            lines.append(f"{segment.name} ({count_unit} per value in {value_unit}): {bins}")
            continue
        parts = []
        for label, unit in zip(segment.labels, segment.units, strict=True):
            value = values[label]
            text = f"{label} = {value} {unit}"
            if segment.grid is not None and "grid units of " in unit:
                # "grid units of 0.1 % predicted" → "% predicted"
                measure_unit = unit.split("grid units of ", 1)[1].split(" ", 1)[1]
                if unit.startswith("squared"):
                    measure_unit = f"({measure_unit})²"
                text += f" (= {_in_measure_unit(value, label, segment.grid)} {measure_unit})"
            parts.append(text)
        lines.append(f"{segment.name}: {'; '.join(parts)}")
    return lines
