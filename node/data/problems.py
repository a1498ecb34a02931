"""Problems found in a centre's folder, each located by file, row and column.

Every reader adds to one :class:`ProblemList`; a rule that fails on many rows lists a few
of them and counts the rest, so that a bad million-row file gives a readable report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: At most this many problems are listed for one (file, column, rule); the rest are
#: summarised in one line, so that a 1,000,000-row bad file gives a readable report.
PROBLEMS_LISTED_PER_RULE = 20

@dataclass(frozen=True)
class Problem:
    """One located problem in a centre's folder.

    ``row`` is 1-based with the header as row 1 (first record = row 2), ``None`` for a
    problem of the whole file or column. Messages say what was expected and what was
    found; they may quote cell values but never a patient_id (row numbers locate the
    record for the data steward, who alone sees these messages).
    """

    file: str
    row: int | None
    column: str | None
    message: str
    #: "error" (the folder is not valid) or "warning" (valid, but worth a look).
    severity: str = "error"

    def __str__(self) -> str:
        location = [self.file]
        if self.row is not None:
            location.append(f"row {self.row}")
        if self.column is not None:
            location.append(f"column {self.column}")
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{prefix}{', '.join(location)}: {self.message}"

@dataclass
class ProblemList:
    """Problems collected while reading a folder, at most a few listed per rule.

    ``count`` is the number of problems (errors) found, including those not listed.
    ``warnings`` are listed in full and do not make the folder invalid.
    """

    problems: list[Problem] = field(default_factory=list)
    count: int = 0
    warnings: list[Problem] = field(default_factory=list)

    def add(self, file: str, row: int | None, column: str | None, message: str) -> None:
        """Record one problem."""
        self.problems.append(Problem(file, row, column, message))
        self.count += 1

    def warn(self, file: str, row: int | None, column: str | None, message: str) -> None:
        """Record one warning: worth the steward's look, but the folder stays valid."""
        self.warnings.append(Problem(file, row, column, message, severity="warning"))

    def add_rows(
        self,
        file: str,
        column: str | None,
        mask: np.ndarray,
        row_numbers: np.ndarray,
        message: str | Callable[[int], str],
    ) -> None:
        """Record the problem of every row where ``mask`` is true, listing at most a few.

        ``message`` is one text for all flagged rows, or a function of a flagged row's
        position (0-based, as in ``mask``) giving its text; it is called only for the
        first :data:`PROBLEMS_LISTED_PER_RULE` rows, the rest are counted in one line.
        """
        flagged = np.flatnonzero(mask)
        if flagged.size == 0:
            return
        listed = flagged[:PROBLEMS_LISTED_PER_RULE]
        for position in listed:
            text = message if isinstance(message, str) else message(int(position))
            self.problems.append(Problem(file, int(row_numbers[position]), column, text))
        more = flagged.size - listed.size
        if more:
            self.problems.append(
                Problem(file, None, column, f"… and {more:,} more rows with the same problem")
            )
        self.count += flagged.size

    def extend(self, other: ProblemList) -> None:
        self.problems.extend(other.problems)
        self.count += other.count
        self.warnings.extend(other.warnings)

    def __bool__(self) -> bool:
        return self.count > 0
