"""In-process pooled analysis over local centre folders (``sscjak-coordinator simulate``).

Each folder is read and summarised by the node's own code, exactly as a node would;
the vectors are then pooled and the results computed from the pooled vector alone.
This is the one coordinator module that imports ``sscjak.node``: in a simulation the
coordinator process also plays every node.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sscjak.node.centre_reader import CentreDataError
from sscjak.node.summary import summarise_centre
from sscjak.shared.cli_support import UserError
from sscjak.shared.plan import Plan
from sscjak.shared.summary_layout import SummaryLayout


def centre_summaries(folders: Sequence[Path], plan: Plan) -> list[np.ndarray]:
    """Each folder's summary vector; every problem of every folder in one UserError."""
    vectors: list[np.ndarray] = []
    failures: list[str] = []
    for folder in folders:
        try:
            vectors.append(summarise_centre(folder, plan))
        except CentreDataError as error:
            lines = "\n".join(f"  {problem}" for problem in error.problems)
            failures.append(f"{folder}: {len(error.problems)} problem(s)\n{lines}")
    if failures:
        raise UserError("centre data not valid:\n" + "\n".join(failures))
    return vectors


def pool_centre_summaries(folders: Sequence[Path], plan: Plan) -> tuple[np.ndarray, int]:
    """(pooled vector, number of centres): the plain sum of the centres' summaries."""
    vectors = centre_summaries(folders, plan)
    pooled = SummaryLayout.for_plan(plan).zeros()
    for vector in vectors:
        pooled += vector
    return pooled, len(vectors)
