"""``sscjak-coordinator synthesize OUTDIR [--centres N] [--patients N] [--seed S] [--format F]``.

Writes a synthetic multi-centre cohort (:mod:`sscjak.coordinator.synthetic.cohort_model`) as
centre folders ``OUTDIR/centre_1`` … ``OUTDIR/centre_N`` in the format of docs/input-files.md,
ready for ``sscjak-node validate`` and ``sscjak-coordinator simulate``. The data are
invented: no real patient is behind any row.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sscjak.coordinator.synthetic.cohort_model import generate_cohort, split_into_centres
from sscjak.coordinator.synthetic.writers import WRITE_FORMATS, write_centre
from sscjak.shared.cli_support import UserError
from sscjak.shared.data_contract import FILE_SUFFIXES, TABLES

DEFAULT_CENTRES = 4
DEFAULT_PATIENTS = 165
DEFAULT_SEED = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synthesize",
        help="write a synthetic multi-centre SSc cohort as centre folders",
        description=(
            "Write an invented cohort of SSc patients treated with JAK inhibitors, split at "
            "random across centres, as folders OUTDIR/centre_1 … centre_N in the input "
            "format of a centre's node. The same seed always gives the same files."
        ),
    )
    parser.add_argument("outdir", type=Path, metavar="OUTDIR", help="folder to write into")
    parser.add_argument(
        "--centres",
        type=int,
        default=DEFAULT_CENTRES,
        metavar="N",
        help="number of centres",
    )
    parser.add_argument(
        "--patients",
        type=int,
        default=DEFAULT_PATIENTS,
        metavar="N",
        help="number of patients, all centres together",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="S",
        help="random seed; the same seed gives the same files",
    )
    parser.add_argument(
        "--visits-per-patient",
        type=float,
        default=8,
        metavar="V",
        help="mean number of visits per patient",
    )
    parser.add_argument(
        "--format",
        choices=WRITE_FORMATS,
        default="csv",
        dest="fmt",
        help="file format of the tables",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the tables of centre folders that already hold some",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.centres < 1:
        raise UserError(f"--centres must be at least 1, got {args.centres}")
    if args.patients < args.centres:
        raise UserError(
            f"--patients ({args.patients}) must be at least --centres ({args.centres}): "
            "every centre needs one patient"
        )
    if not args.visits_per_patient >= 1:
        raise UserError(f"--visits-per-patient must be at least 1, got {args.visits_per_patient}")
    if args.outdir.exists() and not args.outdir.is_dir():
        raise UserError(f"{args.outdir} exists and is not a folder")
    folders = [args.outdir / f"centre_{i}" for i in range(1, args.centres + 1)]
    if not args.overwrite:
        occupied = [str(f) for f in folders if _holds_tables(f)]
        if occupied:
            raise UserError(
                f"already holds centre tables: {', '.join(occupied)} (use --overwrite to replace)"
            )
    cohort = generate_cohort(args.patients, args.seed, visits_per_patient=args.visits_per_patient)
    centres = split_into_centres(cohort, args.centres, args.seed)
    for folder, centre in zip(folders, centres, strict=True):
        try:
            write_centre(centre, folder, fmt=args.fmt)
        except OSError as error:
            raise UserError(f"cannot write {folder}: {error.strerror or error}") from None
        print(
            f"{folder}: {len(centre.patients)} patients, {len(centre.visits)} visits, "
            f"{len(centre.events)} events"
        )
    print(f"Synthetic cohort (seed {args.seed}) written: {args.centres} centres, invented data.")
    return 0


def _table_files(folder: Path) -> list[Path]:
    """The centre-table files (patients/visits/events in any accepted format) in ``folder``."""
    candidates = [folder / f"{t.name}{suffix}" for t in TABLES for suffix in FILE_SUFFIXES]
    return [path for path in candidates if path.is_file()]


def _holds_tables(folder: Path) -> bool:
    return bool(_table_files(folder))
