"""The results file, typed and versioned in one place (docs/results-file.md).

Every module that writes or reads pooled results goes through this one: the round writes
them (:func:`write_results`), ``report`` and the terminal table read them
(:func:`read_results`, :func:`check_results`). The shapes below are the file's keys; a
key is added here first, then filled in by ``pooled_results`` and shown by the report.

Versions: :data:`RESULTS_SCHEMA` is what this version writes; :data:`READABLE_SCHEMAS`
are the versions it still reads, so that an older results file still renders.
"""

# No ``from __future__ import annotations``: TypedDict must see NotRequired[...] itself.
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from sscjak.shared.errors import SscjakError
from sscjak.shared.private_files import write_text_atomically

#: The version of the results file this version writes. Version 2 adds the plan's
#: ``by`` and time-to-event keys, ``stratified`` and ``time_to_event``; everything of
#: version 1 is unchanged.
RESULTS_SCHEMA = "sscjak.results/2"
#: Versions of the results file this version reads (and reports on).
READABLE_SCHEMAS: tuple[str, ...] = ("sscjak.results/1", RESULTS_SCHEMA)


class ResultsSchemaError(SscjakError, ValueError):
    """A results file that is not one this version can read."""


class PlanRecord(TypedDict):
    """The plan the results answer: its canonical text and the settings read from it."""

    toml: str
    title: str
    outcomes: list[str]
    months: list[int]
    window_months: float
    min_cell: int
    smc: str
    exact_conditional_p: bool
    time_to_event: NotRequired[list[str]]
    by: NotRequired[str]
    time_grid_days: NotRequired[float]
    horizon_months: NotRequired[int]
    at_risk_months: NotRequired[list[int]]
    heterogeneity: NotRequired[bool]
    min_centre_n: NotRequired[int]
    declared_measures: NotRequired[list[str]]


class RandomEffects(TypedDict):
    """metafor ``rma(method = "DL")``: b, se, ci.lb/ci.ub, zval, pval, at the τ² used."""

    tau2_used: float
    estimate: float
    se: float
    ci: list[float]
    z: float
    p_value: float


class HeterogeneityRow(TypedDict):
    """One change cell's heterogeneity between centres; statistics absent when
    ``suppressed``."""

    outcome: str
    months: int
    label: str
    centres: int
    centres_left_out: int
    min_centre_n: int
    suppressed: bool
    suppression_rule: NotRequired[str]
    q: NotRequired[float]
    df: NotRequired[int]
    p_value: NotRequired[float]
    i2_percent: NotRequired[float]
    h2: NotRequired[float]
    tau2: NotRequired[float]
    random_effects: NotRequired[RandomEffects | None]


class Quartiles(TypedDict):
    median: float | None
    q1: float | None
    q3: float | None


class AgeAtStart(TypedDict):
    """Age at JAKi start in whole years; quartiles ``None`` when suppressed."""

    n: int
    birth_year_missing: int
    outside_0_120: int
    suppressed: bool
    median: float | None
    q1: float | None
    q3: float | None
    suppression_rule: NotRequired[str]


class Cohort(TypedDict):
    patients: int
    centres: int
    patient_years: float
    followup_months: Quartiles
    drugs: dict[str, int]
    sex: dict[str, int]
    ssc_subset: dict[str, int]
    age_at_start_years: AgeAtStart


class ChangeCell(TypedDict):
    """One outcome at one time point; the statistics are absent when ``suppressed``."""

    outcome: str
    months: int
    label: str
    unit: str
    resolution: float
    benefit: NotRequired[str]
    suppressed: bool
    suppression_rule: NotRequired[str]
    n: NotRequired[int]
    n_pos: NotRequired[int]
    n_neg: NotRequired[int]
    n_zero: NotRequired[int]
    mean_baseline: NotRequired[float | None]
    sd_baseline: NotRequired[float | None]
    mean_change: NotRequired[float | None]
    sd_change: NotRequired[float | None]
    median_change: NotRequired[float | None]
    q1_change: NotRequired[float | None]
    q3_change: NotRequired[float | None]
    smc: NotRequired[float | None]
    smc_baseline: NotRequired[float | None]
    smc_change: NotRequired[float | None]
    smc_ci: NotRequired[list[float | None]]
    smc_kind: NotRequired[str]
    r_baseline_followup: NotRequired[float | None]
    V: NotRequired[float | None]
    p_value: NotRequired[float | None]
    p_method: NotRequired[str | None]
    p_value_exact_conditional: NotRequired[float | None]
    stratum: NotRequired[str]


class ChangeDistribution(TypedDict):
    outcome: str
    months: int
    bins: list[list[float]]


class Distributions(TypedDict):
    changes: list[ChangeDistribution]
    followup_months: list[list[float]]


class SafetyRow(TypedDict):
    event_type: str
    events: int
    patients: int
    rate_per_100py: float | None
    ci: list[float] | None


class KaplanMeierRows(TypedDict):
    """The released rows of one curve (times where at least the minimum cell is at risk)."""

    time: list[int]
    n_risk: list[int]
    n_event: list[int]
    n_censor: list[int]
    surv: list[float]
    std_err: list[float | None]
    lower: list[float | None]
    upper: list[float | None]


class MedianTime(TypedDict):
    """The median and its 95% CI; ``None`` when not reached, or when named in ``withheld``
    because it lies beyond the released curve (where fewer than the minimum cell are at
    risk)."""

    time: float | None
    lower: float | None
    upper: float | None
    withheld: list[str]


class AtRisk(TypedDict):
    months: int
    n_risk: int | None


class StratumCurve(TypedDict):
    """One stratum of a time-to-event endpoint; the curve is absent when suppressed."""

    stratum: str
    n: int
    events: NotRequired[int]
    centres: int
    suppressed: bool
    suppression_rule: NotRequired[str]
    curve: NotRequired[KaplanMeierRows]
    median: NotRequired[MedianTime]
    at_risk: NotRequired[list[AtRisk]]


class LogRank(TypedDict):
    strata: list[str]
    chisq: float | None
    df: int
    p_value: float | None
    observed: dict[str, float]
    expected: dict[str, float]


class TimeToEvent(TypedDict):
    """One endpoint: per stratum the Kaplan–Meier curve, median and numbers at risk, and
    the log-rank test between strata (times on the plan's grid)."""

    endpoint: str
    label: str
    by: str
    time_grid_days: float
    horizon_months: int
    left_out_missing_stratum: int
    strata: list[StratumCurve]
    log_rank: LogRank | None


class StratumCohort(TypedDict):
    """One stratum of ``by``: its patients, and its rates unless suppressed."""

    stratum: str
    patients: int
    patient_years: float
    centres: int
    suppressed: bool
    suppression_rule: NotRequired[str]
    safety: NotRequired[list[SafetyRow]]


class KruskalWallis(TypedDict):
    strata: list[str]
    statistic: float | None
    df: int
    p_value: float | None


class RankSum(TypedDict):
    strata: list[str]
    statistic_w: float
    p_value: float | None
    method: str | None


class StratifiedCell(TypedDict):
    """One change cell per stratum (rows as ``changes`` plus ``stratum``), and the tests
    between strata."""

    outcome: str
    months: int
    strata: list[ChangeCell]
    kruskal: KruskalWallis | None
    wilcoxon: RankSum | None


class Stratified(TypedDict):
    by: str
    left_out_missing_stratum: int
    strata: list[StratumCohort]
    changes: list[StratifiedCell]


class Results(TypedDict):
    """The whole results file (docs/results-file.md)."""

    schema: str
    plan_sha256: str
    nodes: int
    created: str
    software: dict[str, str]
    plan: PlanRecord
    cohort: Cohort
    changes: list[ChangeCell]
    calcinosis: dict[str, int]
    digital_ulcers: dict[str, int]
    glucocorticoids: dict[str, int]
    safety: list[SafetyRow]
    distributions: Distributions
    stratified: NotRequired[Stratified]
    time_to_event: NotRequired[list[TimeToEvent]]
    heterogeneity: NotRequired[list[HeterogeneityRow]]
    participants: NotRequired[list[str]]
    attempts: NotRequired[int]
    excluded_nodes: NotRequired[dict[str, str]]
    seconds: NotRequired[float]


#: The keys a report cannot do without; the others it shows when present.
ESSENTIAL_KEYS: tuple[str, ...] = ("schema", "cohort", "changes")


def check_results(results: Any) -> Results:
    """``results`` as :class:`Results` when this version can read it, else
    :class:`ResultsSchemaError` saying what is wrong."""
    if not isinstance(results, Mapping):
        raise ResultsSchemaError(f"results must be a JSON object, got {type(results).__name__}")
    schema = results.get("schema")
    if schema not in READABLE_SCHEMAS:
        readable = ", ".join(repr(s) for s in READABLE_SCHEMAS)
        raise ResultsSchemaError(f"results schema is {schema!r}; this version reads {readable}")
    missing = [key for key in ESSENTIAL_KEYS if key not in results]
    if missing:
        raise ResultsSchemaError(f"results lack the required key(s): {', '.join(missing)}")
    if not isinstance(results["cohort"], Mapping):
        raise ResultsSchemaError("results: cohort must be an object")
    changes = results["changes"]
    if not isinstance(changes, list) or not all(isinstance(c, Mapping) for c in changes):
        raise ResultsSchemaError("results: changes must be a list of objects")
    return results  # type: ignore[return-value]


def read_results(path: Path | str) -> Results:
    """The results file at ``path``; :class:`ResultsSchemaError` names the file and the
    problem when it is missing, not JSON, or not a version this one reads."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsSchemaError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ResultsSchemaError(f"{path}: not a readable results file ({error})") from None
    try:
        return check_results(json.loads(text))
    except json.JSONDecodeError as error:
        raise ResultsSchemaError(f"{path}: not a readable JSON results file ({error})") from None
    except ResultsSchemaError as error:
        raise ResultsSchemaError(f"{path}: {error}") from None


def _json_ready(value: Any) -> Any:
    """Replace any non-finite float by None so that the file never holds NaN or Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    return value


def write_results(results: Results, path: Path | str) -> Path:
    """Write the results JSON atomically: a temporary file beside ``path``, then a rename."""
    text = json.dumps(_json_ready(check_results(results)), indent=2, allow_nan=False) + "\n"
    return write_text_atomically(path, text)
