"""The analysis plan: which changes a pooled round computes and releases (one plan = one analysis).

A plan is a small TOML file. Its *canonical text* — regenerated from the parsed values in a
fixed key order, so comments and spacing do not matter — is what a centre approves and what
``plan_sha256`` hashes. The built-in default is the reference study (docs/statistics.md): seven
measures at 12 and 24 months, ±2-month windows, minimum cell 5, ``smc`` = SMC on baseline SD.

Example (the default plan)::

    schema = "sscjak.plan/1"
    title = "JAK inhibitors in systemic sclerosis: change from baseline"
    outcomes = ["fvc_pct", "dlco_pct", "mrss", "tjc", "sjc", "du_count", "gc_dose_mg"]
    months = [12, 24]
    window_months = 2
    min_cell = 5
    smc = "baseline"
    exact_conditional_p = false

A plan may also ask for time to event (docs/statistics.md, "Time to event"), optionally
by stratum; these keys appear in the canonical text only when ``time_to_event`` is not
empty, so a plan without them keeps its hash::

    time_to_event = ["drug_retention"]   # and/or developed_du, or any event type
    by = "jaki_drug"                     # or ssc_subset, sex; "" = one curve
    time_grid_days = 30.4375             # one month; 1 = days
    horizon_months = 120                 # times beyond are censored here
    at_risk_months = [0, 12, 24, 36, 48, 60]

It may ask for the heterogeneity between centres of every change cell (docs/statistics.md,
"Heterogeneity between centres"), and declare further visit measures that its outcomes may
name (:mod:`sscjak.shared.declared_measures`); these too appear only when used::

    heterogeneity = true
    min_centre_n = 5                     # centres with fewer patients in a cell are left out

    [[measures]]
    name = "haq_di"
    label = "HAQ-DI"
    unit = "points"
    low = 0
    high = 3
    resolution = 0.125
    benefit = "decrease"
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from sscjak.shared.data_contract import (
    DAYS_PER_MONTH,
    EVENT_TYPES,
    JAKI_DRUGS,
    MEASURES,
    MONTH_IN_DAYS,
    SEXES,
    SSC_SUBSETS,
    Measure,
)
from sscjak.shared.declared_measures import declared_measures_toml, parse_declared_measures
from sscjak.shared.disclosure import DEFAULT_MIN_CELL, MAX_MIN_CELL
from sscjak.shared.errors import SscjakError

PLAN_SCHEMA = "sscjak.plan/1"
SMC_KINDS: tuple[str, ...] = ("baseline", "change")
#: Longest allowed follow-up time point; the summary's histograms are sized for it.
MAX_MONTHS = 240
#: Longest allowed half-width of a follow-up window (months).
MAX_WINDOW_MONTHS = 12

#: Time-to-event endpoints a plan may ask for (docs/derivation.md, "Time to event").
TIME_TO_EVENT_ENDPOINTS: tuple[str, ...] = ("drug_retention", "developed_du", *EVENT_TYPES)
#: Patient columns a plan may stratify by, and their strata.
STRATA_BY: dict[str, tuple[str, ...]] = {
    "jaki_drug": JAKI_DRUGS,
    "ssc_subset": SSC_SUBSETS,
    "sex": SEXES,
}
#: Longest horizon of a time-to-event analysis (months): the treatment period's limit.
MAX_HORIZON_MONTHS = 600
#: The coarsest time grid (days): a year.
MAX_TIME_GRID_DAYS = 365.25
#: Default smallest number of a centre's patients in a cell for its estimate to enter the
#: heterogeneity analysis.
DEFAULT_MIN_CENTRE_N = 5

_KEYS: tuple[str, ...] = (
    "schema",
    "title",
    "outcomes",
    "months",
    "window_months",
    "min_cell",
    "smc",
    "exact_conditional_p",
    "time_to_event",
    "by",
    "time_grid_days",
    "horizon_months",
    "at_risk_months",
    "heterogeneity",
    "min_centre_n",
    "measures",
)


class PlanError(SscjakError, ValueError):
    """A plan file that cannot be used; the message names the file, key and expectation."""


@dataclass(frozen=True)
class Plan:
    """One analysis: outcomes × time points, window, minimum cell, which SMC is ``smc``.

    Attributes
    ----------
    title : free text shown in reports and at approval.
    outcomes : visit measures (docs/input-files.md column names) whose changes are analysed.
    months : follow-up time points T (months after JAKi initiation).
    window_months : half-width of the window around each time point (docs/derivation.md: 2).
    min_cell : pooled change cells with n below this are suppressed (docs/statistics.md: 5).
    smc : which standardized mean change is reported as ``smc``: "baseline" or "change".
    exact_conditional_p : also report the exact conditional signed-rank p-value with ties.
    time_to_event : endpoints analysed as time to event (:data:`TIME_TO_EVENT_ENDPOINTS`).
    by : the patient column whose values stratify the results ("" = none): every change
        cell, rate and time-to-event curve is also reported per stratum.
    time_grid_days : the time grid in days (a month by default; 1 = days).
    horizon_months : times beyond this are censored at it (the summary's histograms end
        here).
    at_risk_months : times (months) at which the numbers at risk are reported.
    heterogeneity : also report, per change cell, the heterogeneity between centres
        (Cochran's Q, I², DerSimonian–Laird τ²) and the random-effects estimate.
    min_centre_n : a centre with fewer patients in a cell is left out of that cell's
        heterogeneity analysis.
    measures : visit measures this plan declares (:mod:`sscjak.shared.declared_measures`);
        its outcomes may name them like built-in ones.
    """

    title: str = "JAK inhibitors in systemic sclerosis: change from baseline"
    outcomes: tuple[str, ...] = tuple(MEASURES)
    months: tuple[int, ...] = (12, 24)
    window_months: float = 2.0
    min_cell: int = DEFAULT_MIN_CELL
    smc: str = "baseline"
    exact_conditional_p: bool = False
    time_to_event: tuple[str, ...] = ()
    by: str = ""
    time_grid_days: float = DAYS_PER_MONTH
    horizon_months: int = 120
    at_risk_months: tuple[int, ...] = (0, 12, 24, 36, 48, 60)
    heterogeneity: bool = False
    min_centre_n: int = DEFAULT_MIN_CENTRE_N
    measures: tuple[Measure, ...] = ()

    @property
    def canonical_toml(self) -> str:
        """The plan as TOML in a fixed form: the text that is approved and hashed."""
        lines = [
            f"schema = {json.dumps(PLAN_SCHEMA)}",
            f"title = {json.dumps(self.title, ensure_ascii=False)}",
            "outcomes = [" + ", ".join(json.dumps(o) for o in self.outcomes) + "]",
            "months = [" + ", ".join(str(m) for m in self.months) + "]",
            f"window_months = {_toml_number(self.window_months)}",
            f"min_cell = {self.min_cell}",
            f"smc = {json.dumps(self.smc)}",
            f"exact_conditional_p = {'true' if self.exact_conditional_p else 'false'}",
        ]
        if self.time_to_event:
            lines += [
                "time_to_event = [" + ", ".join(json.dumps(e) for e in self.time_to_event) + "]",
                f"by = {json.dumps(self.by)}",
                f"time_grid_days = {_toml_number(self.time_grid_days)}",
                f"horizon_months = {self.horizon_months}",
                "at_risk_months = [" + ", ".join(str(m) for m in self.at_risk_months) + "]",
            ]
        elif self.by:
            lines.append(f"by = {json.dumps(self.by)}")
        if self.heterogeneity:
            lines += ["heterogeneity = true", f"min_centre_n = {self.min_centre_n}"]
        lines += declared_measures_toml(self.measures)
        return "\n".join(lines) + "\n"

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of :attr:`canonical_toml` (UTF-8): the plan's identity (``plan_sha256``)."""
        return hashlib.sha256(self.canonical_toml.encode("utf-8")).hexdigest()

    @property
    def strata(self) -> tuple[str, ...]:
        """The strata of the results: the values of ``by``, or ``("all",)`` without one."""
        return STRATA_BY[self.by] if self.by else ("all",)

    @property
    def time_grid(self) -> Fraction:
        """The time grid in days, exactly (30.4375 is 487/16)."""
        return Fraction(repr(float(self.time_grid_days)))

    @property
    def horizon_grid(self) -> int:
        """The horizon on the time grid: ceiling(horizon_months × month / grid)."""
        return math.ceil(self.horizon_months * MONTH_IN_DAYS / self.time_grid)

    def measure(self, name: str) -> Measure:
        """The built-in or declared measure ``name`` (``KeyError`` if neither)."""
        for declared in self.measures:
            if declared.name == name:
                return declared
        return MEASURES[name]

    @property
    def measure_names(self) -> tuple[str, ...]:
        """Every measure this plan may analyse: the built-in ones, then its declared ones."""
        return (*MEASURES, *(m.name for m in self.measures))

    @property
    def cells(self) -> tuple[tuple[str, int], ...]:
        """The change cells (outcome, months) in report order: outcome-major."""
        return tuple((outcome, months) for outcome in self.outcomes for months in self.months)


def _toml_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def default_plan() -> Plan:
    """The reference study's plan (docs/statistics.md)."""
    return Plan()


def load_plan(path: Path | str) -> Plan:
    """Read and validate a plan file; raise :class:`PlanError` naming the file on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{path}: plan file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError(f"{path}: cannot read plan file ({error})") from None
    return parse_plan(text, source=str(path))


def parse_plan(text: str, source: str = "<plan>") -> Plan:
    """Parse plan TOML text; every problem found is listed in one :class:`PlanError`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PlanError(f"{source}: not valid TOML ({error})") from None
    problems: list[str] = []
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_KEYS)}")
    schema = raw.get("schema", PLAN_SCHEMA)
    if schema != PLAN_SCHEMA:
        problems.append(f"schema: expected {PLAN_SCHEMA!r}, got {schema!r}")
    defaults = Plan()
    measures = parse_declared_measures(raw.get("measures", []), problems)
    values: dict[str, Any] = {
        "title": _check_title(raw.get("title", defaults.title), problems),
        "outcomes": _check_outcomes(
            raw.get("outcomes", list(defaults.outcomes)), measures, problems
        ),
        "months": _check_months(raw.get("months", list(defaults.months)), problems),
        "window_months": _check_window(raw.get("window_months", defaults.window_months), problems),
        "min_cell": _check_min_cell(raw.get("min_cell", defaults.min_cell), problems),
        "smc": _check_smc(raw.get("smc", defaults.smc), problems),
        "exact_conditional_p": _check_bool(
            "exact_conditional_p", raw.get("exact_conditional_p", False), problems
        ),
        "time_to_event": _check_endpoints(raw.get("time_to_event", []), problems),
        "by": _check_by(raw.get("by", defaults.by), problems),
        "time_grid_days": _check_time_grid(
            raw.get("time_grid_days", defaults.time_grid_days), problems
        ),
        "horizon_months": _check_horizon(
            raw.get("horizon_months", defaults.horizon_months), problems
        ),
        "at_risk_months": _check_at_risk(
            raw.get("at_risk_months", list(defaults.at_risk_months)), problems
        ),
        "heterogeneity": _check_bool("heterogeneity", raw.get("heterogeneity", False), problems),
        "min_centre_n": _check_min_centre_n(
            raw.get("min_centre_n", defaults.min_centre_n), problems
        ),
        "measures": measures,
    }
    if "min_centre_n" in raw and not values["heterogeneity"]:
        problems.append("min_centre_n: only used with heterogeneity = true")
    if not values["time_to_event"]:
        time_keys = ("time_grid_days", "horizon_months", "at_risk_months")
        extra = [key for key in time_keys if key in raw]
        if extra:
            problems.append(
                f"{', '.join(extra)}: only used with time_to_event, which is empty"
            )
    if problems:
        raise PlanError(f"{source}: " + "; ".join(problems))
    return Plan(**values)


def _check_title(value: object, problems: list[str]) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        problems.append("title: expected a non-empty text of at most 500 characters")
        return ""
    return value.strip()


def _check_outcomes(
    value: object, declared: tuple[Measure, ...], problems: list[str]
) -> tuple[str, ...]:
    names = (*MEASURES, *(m.name for m in declared))
    allowed = ", ".join(names)
    if not isinstance(value, list) or not value:
        problems.append(f"outcomes: expected a non-empty list of measures from: {allowed}")
        return ()
    bad = [v for v in value if not isinstance(v, str) or v not in names]
    if bad:
        problems.append(
            f"outcomes: unknown measure(s) {bad}; expected names from: {allowed} "
            "(or a measure declared in [[measures]])"
        )
    if len(set(map(str, value))) != len(value):
        problems.append("outcomes: each measure may appear only once")
    unused = [m.name for m in declared if m.name not in value]
    if unused:
        problems.append(
            f"measures: {', '.join(unused)} declared but not in outcomes; "
            "declare only the measures the plan analyses"
        )
    return tuple(str(v) for v in value)


def _check_min_centre_n(value: object, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= MAX_MIN_CELL:
        problems.append(
            f"min_centre_n: expected a whole number from 2 to {MAX_MIN_CELL}, got {value!r}"
        )
        return DEFAULT_MIN_CENTRE_N
    return value


def _check_months(value: object, problems: list[str]) -> tuple[int, ...]:
    expectation = f"a non-empty list of distinct whole months from 1 to {MAX_MONTHS}"
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
        or any(not 1 <= v <= MAX_MONTHS for v in value)
        or len(set(value)) != len(value)
    ):
        problems.append(f"months: expected {expectation}, got {value!r}")
        return ()
    return tuple(sorted(value))


def _check_window(value: object, problems: list[str]) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_WINDOW_MONTHS
    ):
        problems.append(
            f"window_months: expected a number above 0 and at most {MAX_WINDOW_MONTHS}, "
            f"got {value!r}"
        )
        return 0.0
    return float(value)


def _check_min_cell(value: object, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MIN_CELL:
        problems.append(
            f"min_cell: expected a whole number from 1 to {MAX_MIN_CELL}, got {value!r}"
        )
        return 0
    return value


def _check_smc(value: object, problems: list[str]) -> str:
    if value not in SMC_KINDS:
        problems.append(f"smc: expected one of {', '.join(SMC_KINDS)}, got {value!r}")
        return ""
    return str(value)


def _check_bool(key: str, value: object, problems: list[str]) -> bool:
    if not isinstance(value, bool):
        problems.append(f"{key}: expected true or false, got {value!r}")
        return False
    return value


def _check_endpoints(value: object, problems: list[str]) -> tuple[str, ...]:
    allowed = ", ".join(TIME_TO_EVENT_ENDPOINTS)
    if not isinstance(value, list) or any(v not in TIME_TO_EVENT_ENDPOINTS for v in value):
        problems.append(f"time_to_event: expected a list of endpoints from: {allowed}")
        return ()
    if len(set(value)) != len(value):
        problems.append("time_to_event: each endpoint may appear only once")
    return tuple(str(v) for v in value)


def _check_by(value: object, problems: list[str]) -> str:
    if value != "" and value not in STRATA_BY:
        problems.append(f"by: expected \"\" or one of {', '.join(STRATA_BY)}, got {value!r}")
        return ""
    return str(value)


def is_time_grid_days(value: object) -> bool:
    """Whether ``value`` is a usable time grid: a finite number of days from 1 to a year."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and 1 <= value <= MAX_TIME_GRID_DAYS
    )


def _check_time_grid(value: object, problems: list[str]) -> float:
    if not is_time_grid_days(value):
        problems.append(
            f"time_grid_days: expected a number of days from 1 to {MAX_TIME_GRID_DAYS} "
            f"(30.4375 = one month), got {value!r}"
        )
        return DAYS_PER_MONTH
    return float(value)


def _check_horizon(value: object, problems: list[str]) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_HORIZON_MONTHS
    ):
        problems.append(
            f"horizon_months: expected a whole number of months from 1 to "
            f"{MAX_HORIZON_MONTHS}, got {value!r}"
        )
        return 1
    return value


def _check_at_risk(value: object, problems: list[str]) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
        or any(not 0 <= v <= MAX_HORIZON_MONTHS for v in value)
        or len(set(value)) != len(value)
    ):
        problems.append(
            f"at_risk_months: expected a list of distinct whole months from 0 to "
            f"{MAX_HORIZON_MONTHS}, got {value!r}"
        )
        return ()
    return tuple(sorted(value))
