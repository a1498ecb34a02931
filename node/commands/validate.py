"""``sscjak-node validate DIR``: check a centre's data folder (docs/input-files.md).

Exit 0 with a short summary on stdout when the folder is valid; exit 1 with
"N problems in DIR:" and one located problem per line on stderr when not. Warnings --
ignored columns (with the close match), columns that look identifying, a file without
records, a cohort in which no patient has a baseline value -- are listed in both cases,
each line starting "warning:"; they never change the exit code. For a valid folder the
summary counts, per outcome of the default plan (or of ``--plan PLAN``), the patients
with a baseline value and those counted at each time point, by the node's own derivation.
With ``--plan``, the visits columns the plan declares as measures are read and checked
like the built-in ones (range, grid, same-date agreement). Every
anticipated failure -- a missing or unreadable folder, a binary or wrongly encoded file
-- is a problem in that list, never a traceback. Nothing here leaves the centre: the
output goes to the data steward's terminal only and never shows a patient_id.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from sscjak.node.data.centre_reader import CentreData, CentreDataError, read_centre
from sscjak.node.data.problems import Problem
from sscjak.node.summarise.derivation import derive_cohort
from sscjak.shared.data_contract import (
    BASELINE_DAYS_AFTER,
    BASELINE_DAYS_BEFORE,
    POSITIVE_BASELINE_ONLY,
)
from sscjak.shared.plan import Plan, default_plan, load_plan


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``validate`` sub-command."""
    parser = subparsers.add_parser(
        "validate",
        help="check a centre's data folder against the data contract",
        description=(
            "Read patients, visits and events (CSV, xlsx or parquet) from DIR and check every "
            "value. Exit 0 and print a summary when the folder is valid; exit 1 and list every "
            "problem (file, row, column, what was expected) when it is not."
        ),
    )
    parser.add_argument("folder", metavar="DIR", type=Path, help="the centre's data folder")
    parser.add_argument(
        "--plan",
        metavar="PLAN",
        type=Path,
        help=(
            "an analysis plan (TOML): also check the visits columns it declares as measures "
            "and count the patients per outcome of this plan (default: the reference plan)"
        ),
    )
    parser.set_defaults(func=validate)


def validate(args: argparse.Namespace) -> int:
    """Run the check on ``args.folder``; return the exit code."""
    plan = load_plan(args.plan) if getattr(args, "plan", None) else default_plan()
    try:
        centre = read_centre(args.folder, plan.measures)
    except CentreDataError as error:
        noun = "problem" if error.problem_count == 1 else "problems"
        lines = [f"{error.problem_count:,} {noun} in {args.folder}:"]
        lines += [f"  {problem}" for problem in error.problems]
        lines += warning_lines(error.warnings)
        _emit("\n".join(lines), sys.stderr)
        return 1
    except Exception as error:  # a bug of ours: still no traceback at the steward's desk
        print(
            f"sscjak-node: internal error while validating {args.folder} "
            f"({type(error).__name__}: {error}); please report it",
            file=sys.stderr,
        )
        return 2
    _emit(centre_summary(centre, args.folder, plan), sys.stdout)
    return 0


def _emit(text: str, stream: TextIO) -> None:
    """Print ``text``; a reader that stops early (``validate DIR | head``) is no error."""
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        # Python's documented remedy: point the stream at devnull so that the flush at
        # interpreter exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def warning_lines(warnings: list[Problem] | tuple[Problem, ...]) -> list[str]:
    """The lines listing ``warnings`` (none if there are none)."""
    if not warnings:
        return []
    noun = "warning" if len(warnings) == 1 else "warnings"
    lines = [f"{len(warnings):,} {noun} (not errors, but look at each):"]
    return lines + [f"  {warning}" for warning in warnings]


def centre_summary(centre: CentreData, folder: Path | str, plan: Plan | None = None) -> str:
    """The text ``validate`` prints for a valid folder: files, counts, off-grid notes,
    the patients counting per outcome of ``plan`` (default: the reference plan), and the
    warnings."""
    plan = plan or default_plan()
    baseline = baseline_counts(centre, plan)
    counts = outcome_counts(centre, plan, baseline)
    warnings = [*centre.warnings, *cohort_warnings(centre, baseline)]
    files = ", ".join(centre.files.values())
    if "events" not in centre.files:
        files += " (no events file)"
    visits = centre.visits
    headline = f"{folder}: valid."
    if warnings:
        noun = "warning" if len(warnings) == 1 else "warnings"
        headline = f"{folder}: valid, with {len(warnings):,} {noun} (listed at the end)."
    lines = [
        headline,
        f"Files read: {files}",
        f"Patients: {len(centre.patients):,}   visits: {len(visits):,} (one per patient and "
        f"date)   events: {len(centre.events):,}",
        "Values present per measure:",
    ]
    value_columns = (*plan.measure_names, "calcinosis", "calcinosis_course")
    width = max(len(name) for name in visits.columns)
    for name in value_columns:
        lines.append(f"  {name:<{width}} {int(visits[name].notna().sum()):>9,}")
    for name, count in centre.off_grid.items():
        if count:
            step = plan.measure(name).resolution
            noun = "value is" if count == 1 else "values are"
            lines.append(
                f"Note: {count:,} {name} {noun} off its {float(step):g} grid and will be "
                "rounded to it (half away from zero)."
            )
    lines += outcome_lines(counts, plan, plan == default_plan())
    lines += warning_lines(warnings)
    return "\n".join(lines)


def baseline_counts(centre: CentreData, plan: Plan) -> dict[str, int]:
    """Per measure of ``plan``, the patients with a value in the baseline window
    (docs/derivation.md: from 90 days before to 14 days after jaki_start)."""
    visits, patients = centre.visits, centre.patients
    patient = pd.Index(patients["patient_id"]).get_indexer(visits["patient_id"])
    start = patients["jaki_start"].to_numpy(dtype="datetime64[ns]")
    days = (
        visits["visit_date"].to_numpy(dtype="datetime64[ns]") - start[patient]
    ) // np.timedelta64(1, "D")
    in_window = (days >= -BASELINE_DAYS_BEFORE) & (days <= BASELINE_DAYS_AFTER)
    counts: dict[str, int] = {}
    for name in plan.measure_names:
        present = visits[name].notna().to_numpy(dtype=bool) & in_window
        counts[name] = int(np.unique(patient[present]).size)
    return counts


def outcome_counts(
    centre: CentreData, plan: Plan, baseline: dict[str, int]
) -> dict[str, tuple[int, dict[int, int]]]:
    """Per outcome of ``plan``: patients with a baseline value (``baseline``, from
    :func:`baseline_counts`), and per time point the patients the analysis counts there
    (a baseline and a value in the window), as the node's derivation finds them."""
    derived = derive_cohort(centre.patients, centre.visits, centre.events, plan)
    return {
        name: (
            baseline[name],
            {
                months: int(derived.cells[(name, months)].patient_index.size)
                for months in plan.months
            },
        )
        for name in plan.outcomes
    }


def outcome_lines(
    counts: dict[str, tuple[int, dict[int, int]]], plan: Plan, is_default: bool = True
) -> list[str]:
    """The per-outcome table of :func:`outcome_counts`, one line per outcome."""
    months = plan.months
    width = max([len("outcome"), *(len(name) for name in counts)])
    header = "".join(f"{f'{m} months':>11}" for m in months)
    lines = [
        "Patients counted per outcome ("
        + ("default plan" if is_default else f"plan {plan.sha256[:12]}")
        + "):",
        f"  {'outcome':<{width}} {'baseline':>9}{header}",
    ]
    for name, (baseline, at) in counts.items():
        cells = "".join(f"{at[m]:>11,}" for m in months)
        lines.append(f"  {name:<{width}} {baseline:>9,}{cells}")
    points = " and ".join(str(m) for m in months)
    lines.append(
        f"  (baseline: a value from {BASELINE_DAYS_BEFORE} days before to "
        f"{BASELINE_DAYS_AFTER} days after jaki_start;\n   at {points} months: a baseline and "
        f"a value within ±{plan.window_months:g} months"
        + "".join(f"; {name}: a baseline above 0" for name in sorted(POSITIVE_BASELINE_ONLY))
        + ")"
    )
    return lines


def cohort_warnings(centre: CentreData, baseline: dict[str, int]) -> list[Problem]:
    """Warnings on the cohort as a whole: visits with values but no baseline anywhere."""
    visits_file = centre.files.get("visits", "visits")
    has_values = any(centre.visits[name].notna().any() for name in baseline)
    if not has_values or any(baseline.values()):
        return []
    return [
        Problem(
            visits_file,
            None,
            "visit_date",
            "no patient has a baseline value of any measure (a visit from "
            f"{BASELINE_DAYS_BEFORE} days before to {BASELINE_DAYS_AFTER} days after "
            "jaki_start): no change can be computed. Are visit_date and jaki_start on the same "
            "calendar (dates shifted by a different amount, or years mixed up)?",
            severity="warning",
        )
    ]
