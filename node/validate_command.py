"""``sscjak-node validate DIR``: check a centre's data folder (CONTRACT.md §1 and §5).

Exit 0 with a short summary on stdout when the folder is valid; exit 1 with
"N problems in DIR:" and one located problem per line on stderr when not. Every
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

from sscjak.node.centre_reader import CentreData, CentreDataError, read_centre
from sscjak.shared.data_contract import MEASURES, VISITS


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
    parser.set_defaults(func=validate)


def validate(args: argparse.Namespace) -> int:
    """Run the check on ``args.folder``; return the exit code."""
    try:
        centre = read_centre(args.folder)
    except CentreDataError as error:
        noun = "problem" if error.problem_count == 1 else "problems"
        lines = [f"{error.problem_count:,} {noun} in {args.folder}:"]
        lines += [f"  {problem}" for problem in error.problems]
        _emit("\n".join(lines), sys.stderr)
        return 1
    except Exception as error:  # a bug of ours: still no traceback at the steward's desk
        print(
            f"sscjak-node: internal error while validating {args.folder} "
            f"({type(error).__name__}: {error}); please report it",
            file=sys.stderr,
        )
        return 2
    _emit(centre_summary(centre, args.folder), sys.stdout)
    return 0


def _emit(text: str, stream: TextIO) -> None:
    """Print ``text``; a reader that stops early (``validate DIR | head``) is no error."""
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        # Python's documented remedy: point the stream at devnull so that the flush at
        # interpreter exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def centre_summary(centre: CentreData, folder: Path | str) -> str:
    """The text ``validate`` prints for a valid folder: files, counts, off-grid notes."""
    files = ", ".join(centre.files.values())
    if "events" not in centre.files:
        files += " (no events file)"
    visits = centre.visits
    lines = [
        f"{folder}: valid.",
        f"Files read: {files}",
        f"Patients: {len(centre.patients):,}   visits: {len(visits):,} (one per patient and "
        f"date)   events: {len(centre.events):,}",
        "Values present per measure:",
    ]
    width = max(len(name) for name in VISITS.column_names)
    for name in (*MEASURES, "calcinosis", "calcinosis_course"):
        lines.append(f"  {name:<{width}} {int(visits[name].notna().sum()):>9,}")
    for name, count in centre.off_grid.items():
        if count:
            step = MEASURES[name].resolution
            noun = "value is" if count == 1 else "values are"
            lines.append(
                f"Note: {count:,} {name} {noun} off its {float(step):g} grid and will be "
                "rounded to it (half away from zero)."
            )
    return "\n".join(lines)
