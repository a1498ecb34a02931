"""The centre's input files as docs/input-files.md fixes them: tables, columns, ranges, grids.

This module is the single source of truth for what a centre's folder may contain.
The node's reader validates against it; derivation and the summary layout use the
measure grids defined here. Nothing in this module touches patient data.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

#: Length of a month in days, exactly (docs/derivation.md): 365.25 / 12 = 487/16.
MONTH_IN_DAYS = Fraction(487, 16)
#: The same month as a float (exact in binary floating point).
DAYS_PER_MONTH = float(MONTH_IN_DAYS)
#: Decimals a value times its grid is rounded to before it is put on the grid, so that
#: binary floating point (80.35 × 10 = 803.4999999999999) never moves a decimal half.
GRID_GUARD_DECIMALS = 9
#: Length of a year in days, for patient-years (docs/derivation.md).
DAYS_PER_YEAR = 365.25
#: Longest treatment period in days (⌊50 × 365.25⌋): the released follow-up histogram of
#: whole days ends here, and the reader refuses longer periods.
MAX_TREATMENT_DAYS = 18262
#: Baseline window around jaki_start, in days (docs/derivation.md): [start − 90, start + 14].
BASELINE_DAYS_BEFORE = 90
BASELINE_DAYS_AFTER = 14

JAKI_DRUGS: tuple[str, ...] = (
    "tofacitinib",
    "baricitinib",
    "upadacitinib",
    "filgotinib",
    "ruxolitinib",
    "other",
)
SEXES: tuple[str, ...] = ("F", "M")
SSC_SUBSETS: tuple[str, ...] = ("lcSSc", "dcSSc", "other")
CALCINOSIS_COURSES: tuple[str, ...] = ("improved", "stable", "worsened")
EVENT_TYPES: tuple[str, ...] = (
    "infection",
    "serious_infection",
    "herpes_zoster",
    "vte",
    "mace",
    "malignancy",
    "death",
    "digital_ulcer",
    "other",
)


#: The directions a change can take; each measure names the one that is a benefit.
BENEFIT_DIRECTIONS: tuple[str, ...] = ("decrease", "increase")


@dataclass(frozen=True)
class Measure:
    """A numeric visit measure with its admissible range and its recording grid.

    Values and changes are handled as integer *grid units*: value / resolution,
    rounded half away from zero (docs/derivation.md). ``resolution`` is an exact
    fraction so that 0.1 and 0.25 grids have exact unit sizes.
    """

    name: str
    low: float
    high: float
    resolution: Fraction
    integer: bool
    label: str
    unit: str
    #: The direction of change that is a benefit for the patient: "decrease" (less skin
    #: thickening, fewer tender or swollen joints or ulcers, a lower glucocorticoid dose)
    #: or "increase" (better lung function). Used by the report to say which way is better.
    benefit: str

    def __post_init__(self) -> None:
        if self.benefit not in BENEFIT_DIRECTIONS:
            raise ValueError(f"benefit of {self.name} must be one of {BENEFIT_DIRECTIONS}")

    @property
    def units_per_value(self) -> int:
        """How many grid units make one unit of the measure (10 for a 0.1 grid)."""
        inverse = 1 / self.resolution
        if inverse.denominator != 1:
            raise ValueError(f"resolution {self.resolution} of {self.name} is not 1/k")
        return int(inverse)

    def to_units(self, values: np.ndarray) -> np.ndarray:
        """Values as integer grid units, rounded half away from zero (docs/derivation.md).

        ``80.35`` on a 0.1 grid is 803.5 units → 804; the product is first rounded to
        :data:`GRID_GUARD_DECIMALS` decimals. Values must be finite.
        """
        scaled = self._scaled(values)
        return (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int64)

    def is_off_grid(self, values: np.ndarray) -> np.ndarray:
        """True where a value is not a multiple of the grid step (NaN gives False).

        ``80.3`` is on the 0.1 grid although ``80.3 * 10`` is 802.9999999999999; ``80.35``
        is off it. The same guard as :meth:`to_units`, so a value is off the grid exactly
        when putting it on the grid changes it.
        """
        scaled = self._scaled(values)
        with np.errstate(invalid="ignore"):
            return np.isfinite(scaled) & (scaled != np.rint(scaled))

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            product = np.asarray(values, dtype=np.float64) * self.units_per_value
            return np.round(product, GRID_GUARD_DECIMALS)

    @property
    def low_units(self) -> int:
        return round(Fraction(str(self.low)) * self.units_per_value)

    @property
    def high_units(self) -> int:
        return round(Fraction(str(self.high)) * self.units_per_value)

    @property
    def max_abs_change_units(self) -> int:
        """The largest possible |change| in grid units: the width of the range."""
        return self.high_units - self.low_units


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("fvc_pct", 10, 200, Fraction(1, 10), False, "FVC", "% predicted", "increase"),
        Measure("dlco_pct", 5, 200, Fraction(1, 10), False, "DLCO", "% predicted", "increase"),
        Measure("mrss", 0, 51, Fraction(1), True, "mRSS", "points", "decrease"),
        Measure("tjc", 0, 28, Fraction(1), True, "Tender joint count", "joints", "decrease"),
        Measure("sjc", 0, 28, Fraction(1), True, "Swollen joint count", "joints", "decrease"),
        Measure(
            "du_count", 0, 20, Fraction(1), True, "Active digital ulcers", "ulcers", "decrease"
        ),
        Measure(
            "gc_dose_mg",
            0,
            100,
            Fraction(1, 4),
            False,
            "Glucocorticoid dose",
            "mg/day prednisone-equivalent",
            "decrease",
        ),
    )
}

#: Measures whose change cell counts only patients with a baseline value > 0
#: (docs/derivation.md: "For gc_dose_mg only patients with baseline dose > 0 count").
POSITIVE_BASELINE_ONLY: frozenset[str] = frozenset({"gc_dose_mg"})


@dataclass(frozen=True)
class Column:
    """One column of an input table: its name, kind and whether it must be filled."""

    name: str
    kind: str  # "text", "date", "int", "number", "binary", "choice"
    required: bool = False
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Table:
    """One input table (file base name, whether the file must exist, its columns)."""

    name: str
    required: bool
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def measure_column(measure: Measure) -> Column:
    """The visits column of a numeric measure: whole numbers on a grid of 1, else numbers."""
    return Column(
        measure.name, "int" if measure.integer else "number", low=measure.low, high=measure.high
    )


PATIENTS = Table(
    "patients",
    True,
    (
        Column("patient_id", "text", required=True),
        Column("jaki_drug", "choice", required=True, choices=JAKI_DRUGS),
        Column("jaki_start", "date", required=True),
        Column("jaki_stop", "date"),
        # required when jaki_stop is empty: checked as a row rule by the reader
        Column("followup_end", "date"),
        Column("sex", "choice", choices=SEXES),
        Column("birth_year", "int", low=1900, high=2100),
        Column("ssc_subset", "choice", choices=SSC_SUBSETS),
    ),
)

VISITS = Table(
    "visits",
    True,
    (
        Column("patient_id", "text", required=True),
        Column("visit_date", "date", required=True),
        *(measure_column(m) for m in MEASURES.values() if m.name != "gc_dose_mg"),
        Column("calcinosis", "binary"),
        Column("calcinosis_course", "choice", choices=CALCINOSIS_COURSES),
        Column("gc_dose_mg", "number", low=0, high=100),
    ),
)

EVENTS = Table(
    "events",
    False,
    (
        Column("patient_id", "text", required=True),
        Column("event_date", "date", required=True),
        Column("event_type", "choice", required=True, choices=EVENT_TYPES),
    ),
)

TABLES: tuple[Table, ...] = (PATIENTS, VISITS, EVENTS)
#: Every column name the contract's tables define: a plan cannot declare a measure by one.
CONTRACT_COLUMN_NAMES: frozenset[str] = frozenset(
    name for table in TABLES for name in table.column_names
)


def visits_table(declared: tuple[Measure, ...] = ()) -> Table:
    """The visits table, with a plan's declared measures as further optional columns."""
    if not declared:
        return VISITS
    return Table(
        VISITS.name, VISITS.required, (*VISITS.columns, *(measure_column(m) for m in declared))
    )


def contract_tables(declared: tuple[Measure, ...] = ()) -> tuple[Table, ...]:
    """The input tables a centre's folder is read with, visits widened by ``declared``."""
    return (PATIENTS, visits_table(declared), EVENTS)
#: File suffixes accepted for each table, in the order they are looked for.
FILE_SUFFIXES: tuple[str, ...] = (".csv", ".xlsx", ".parquet")

#: Column names that look like they identify a patient, as (what it looks like, regular
#: expression). A column is matched on its words, lower-case and joined by ``_``
#: (``DateOfBirth`` and ``Date of birth`` both become ``date_of_birth``). Such columns are
#: never read, but the data steward is told to remove them from the export.
IDENTIFYING_COLUMN_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "a name",
        r"(?:patient_|pt_)?(?:first|last|given|family|middle|full|maiden|sur|fore)?_?names?"
        r"|(?:first|last|given|family|middle|full|maiden)_?name_?\d*|initials",
    ),
    (
        "a date of birth",
        r"(?:patient_|pt_)?(?:dob|d_o_b|date_of_birth|birth_?date|birth_?day|date_birth)",
    ),
    (
        "a national identity number",
        r"(?:.*_)?(?:national_?(?:id|identifier|identity|number|no|insurance)"
        r"|nhs(?:_?(?:no|number|num|id))?|ssn|social_security(?:_number|_no)?"
        r"|insurance_?(?:number|no|num|id)|passport(?:_?(?:number|no))?)(?:_.*)?",
    ),
    (
        "an address",
        r"(?:.*_)?(?:address|street|post_?code|zip(?:_?code)?|postal_code|city_of_residence)"
        r"(?:_.*)?",
    ),
    ("a phone number", r"(?:.*_)?(?:phone|telephone|mobile|tel|fax)(?:_.*)?"),
    ("an e-mail address", r"(?:.*_)?e_?mail(?:_.*)?"),
    (
        "a medical record number",
        r"(?:.*_)?(?:mrn|medical_record(?:_number|_no)?|hospital_(?:number|no|id)"
        r"|record_(?:number|no))(?:_.*)?",
    ),
)
