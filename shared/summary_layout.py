"""The one summary vector a node releases per analysis: its fixed layout, defined once.

Everything that leaves a node is one vector of int64 whose shape depends only on the
plan (never on the data): counts, exact fixed-point sums in grid units, and histograms on
the measure's grid. Because every element is an integer count or sum, summing the nodes'
vectors (securely) gives exactly the vector of the stacked cohort, and every pooled
statistic is a function of that sum (see ``sscjak.coordinator.results.pooled_results``).

Every segment states the unit of its values (:attr:`Segment.units`), so that the decoded
vector (:meth:`SummaryLayout.describe`, ``sscjak-node preview``) never shows a sum in grid
units without saying so.

Layout ``sscjak.summary/2``, in order:

- ``centres`` — 1 per node (the pooled value is the number of contributing centres)
- ``cohort`` — patients, total follow-up days on treatment
- ``drugs``, ``sex``, ``ssc_subset`` — patient counts per category (``missing`` last)
- ``followup_days_histogram`` — patients per whole day of follow-up, 0 … MAX_FOLLOWUP_DAYS
- ``age_at_start`` — patients without an age at JAKi start: birth_year missing; age
  (year of jaki_start − birth_year) outside 0 … MAX_AGE_YEARS
- ``age_at_start_histogram`` — patients per whole year of age at JAKi start, 0 … MAX_AGE_YEARS
- per change cell (outcome, months) of the plan:
  ``change.<outcome>.<months>.sums`` — n, Σx₀, Σx₀², Σd, Σd², Σx₀·d in grid units
  (x₀ = baseline, d = change), and
  ``change.<outcome>.<months>.histogram`` — patients per change d on the grid, from −R to +R
  where R is the width of the measure's range
- ``calcinosis`` — baseline_present, improved
- ``digital_ulcers`` — developed
- ``glucocorticoids`` — baseline_on_gc
- ``safety.events``, ``safety.patients`` — per event type: events, patients with ≥ 1 event
- only when the plan asks for time to event:
  ``strata`` — per stratum of the plan's ``by`` (or ``all``): 1 if this centre has a
  patient in it (the pooled value counts the centres behind each stratum), then
  ``missing`` — patients without a value of ``by`` (left out of stratified results);
  per endpoint and stratum, ``tte.<endpoint>.<stratum>.events`` and ``….censored`` —
  patients whose event, or censoring, falls at each time of the plan's grid, 0 … the
  horizon
- only when the plan asks for heterogeneity: per change cell ``het.<outcome>.<months>`` —
  this centre's fixed-point terms round(S·w), round(S·wθ), round(S·wθ²), round(S·w²)
  of its own estimate θ with w = 1/v (S = 2³²), then 1 in ``centres`` or 1 in
  ``centres_left_out`` (:mod:`sscjak.shared.statistics.heterogeneity`)

The random-effects exchange of a heterogeneity plan sends a second, small vector
(:class:`RandomEffectsLayout`, ``sscjak.random-effects/1``): per change cell
``re.<outcome>.<months>`` — round(S·w*), round(S·w*θ) with w* = 1/(v + τ²).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any

import numpy as np

from sscjak.shared.data_contract import (
    EVENT_TYPES,
    JAKI_DRUGS,
    MAX_TREATMENT_DAYS,
    SEXES,
    SSC_SUBSETS,
)
from sscjak.shared.plan import Plan, PlanError
from sscjak.shared.protocol import MAX_SUMMARY_WORDS
from sscjak.shared.statistics.heterogeneity import HETEROGENEITY_LABELS, RANDOM_EFFECTS_LABELS

LAYOUT_VERSION = "sscjak.summary/2"
RANDOM_EFFECTS_LAYOUT_VERSION = "sscjak.random-effects/1"
#: The unit of a heterogeneity term: a count of 2⁻³² (the fixed-point scale S).
FIXED_POINT_UNIT = "units of 2^-32"
#: Longest follow-up representable in the follow-up histogram (the reader refuses longer).
MAX_FOLLOWUP_DAYS = MAX_TREATMENT_DAYS
#: Highest age at JAKi start in the age histogram; ages outside 0 … this are counted apart.
MAX_AGE_YEARS = 120
#: Labels of the ``age_at_start`` segment: patients without an age in the histogram.
AGE_UNAVAILABLE_LABELS: tuple[str, ...] = ("birth_year_missing", "outside_0_120")
CELL_SUM_LABELS: tuple[str, ...] = (
    "n",
    "sum_baseline",
    "sum_baseline_sq",
    "sum_change",
    "sum_change_sq",
    "sum_baseline_change",
)


@dataclass(frozen=True)
class Segment:
    """A named run of the vector.

    A *count* segment has ``labels`` (one per element). A *histogram* segment has
    ``origin`` (the integer value of its first bin) and ``units_per_value`` (grid units
    per unit of the measure, 1 for whole days or whole points).

    ``units`` names the unit of each element: for a count segment one entry per label
    (``"patients"``, ``"days"``, ``"grid units of 0.1 % predicted"``), for a histogram
    ``(unit of the bin values, unit of the counts)``. ``grid`` is the measure's
    resolution in its unit for a change cell's sums (a sum in grid units times ``grid``
    is the sum in the measure's unit), else ``None``.
    """

    name: str
    offset: int
    length: int
    meaning: str
    labels: tuple[str, ...] = ()
    origin: int | None = None
    units_per_value: int = 1
    units: tuple[str, ...] = ()
    grid: Fraction | None = None

    @property
    def is_histogram(self) -> bool:
        return self.origin is not None

    @property
    def stop(self) -> int:
        return self.offset + self.length

    def bin_values(self) -> np.ndarray:
        """Value of each histogram bin in grid units (origin, origin + 1, …)."""
        if self.origin is None:
            raise ValueError(f"segment {self.name} is not a histogram")
        return np.arange(self.origin, self.origin + self.length, dtype=np.int64)


def cell_prefix(outcome: str, months: int) -> str:
    return f"change.{outcome}.{months}"


def stratum_cell_prefix(outcome: str, months: int, stratum: str) -> str:
    """The segments of a change cell within one stratum of the plan's ``by``."""
    return f"{cell_prefix(outcome, months)}.{stratum}"


def heterogeneity_segment(outcome: str, months: int) -> str:
    """The segment of one change cell's heterogeneity terms."""
    return f"het.{outcome}.{months}"


def random_effects_segment(outcome: str, months: int) -> str:
    """The segment of one change cell's random-effects terms (second exchange)."""
    return f"re.{outcome}.{months}"


def tte_segment(endpoint: str, stratum: str, kind: str) -> str:
    """The segment of one endpoint's ``events`` or ``censored`` histogram in one stratum."""
    return f"tte.{endpoint}.{stratum}.{kind}"


class SummaryLayout:
    """The fixed layout of the summary vector for one plan (version :data:`LAYOUT_VERSION`)."""

    version = LAYOUT_VERSION

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._segments: list[Segment] = []
        self._add_counts("centres", "1 per contributing centre", ("centres",), ("centres",))
        self._add_counts(
            "cohort",
            "patients; total follow-up days on treatment",
            ("patients", "followup_days_total"),
            ("patients", "days"),
        )
        self._add_counts("drugs", "patients per JAK inhibitor", JAKI_DRUGS)
        self._add_counts("sex", "patients per sex", (*SEXES, "missing"))
        self._add_counts("ssc_subset", "patients per SSc subset", (*SSC_SUBSETS, "missing"))
        self._add_histogram(
            "followup_days_histogram",
            "patients per whole day of follow-up on treatment",
            origin=0,
            length=MAX_FOLLOWUP_DAYS + 1,
            units=("days", "patients"),
        )
        self._add_counts(
            "age_at_start",
            f"patients without an age at JAKi start: birth year missing; age outside "
            f"0…{MAX_AGE_YEARS} years",
            AGE_UNAVAILABLE_LABELS,
        )
        self._add_histogram(
            "age_at_start_histogram",
            "patients per whole year of age at JAKi start (year of jaki_start − birth_year)",
            origin=0,
            length=MAX_AGE_YEARS + 1,
            units=("years", "patients"),
        )
        for outcome, months in plan.cells:
            self._add_cell(outcome, months, cell_prefix(outcome, months))
        self._add_counts(
            "calcinosis",
            "patients with calcinosis at baseline; of those, improved",
            ("baseline_present", "improved"),
        )
        self._add_counts("digital_ulcers", "patients who developed digital ulcers", ("developed",))
        self._add_counts(
            "glucocorticoids", "patients on glucocorticoids at baseline", ("baseline_on_gc",)
        )
        self._add_counts(
            "safety.events",
            "adverse events on treatment per type",
            EVENT_TYPES,
            ("events",) * len(EVENT_TYPES),
        )
        self._add_counts(
            "safety.patients", "patients with at least one event per type", EVENT_TYPES
        )
        if plan.by or plan.time_to_event:
            self._add_counts(
                "strata",
                f"centres with a patient in each stratum of {plan.by or 'the cohort'}; "
                "patients without a stratum",
                (*plan.strata, "missing"),
                (*(("centres",) * len(plan.strata)), "patients"),
            )
        if plan.by:
            self._add_strata(plan)
        if plan.time_to_event:
            self._add_time_to_event(plan)
        if plan.heterogeneity:
            for outcome, months in plan.cells:
                self._add_counts(
                    heterogeneity_segment(outcome, months),
                    f"{plan.measure(outcome).label} at {months} months: this centre's "
                    f"fixed-point terms of its own {plan.smc} SMC θ and weight w = 1/v "
                    f"(w, wθ, wθ², w²), or 1 in centres_left_out (fewer than "
                    f"{plan.min_centre_n} patients or no estimate)",
                    HETEROGENEITY_LABELS,
                    (*(FIXED_POINT_UNIT,) * 4, "centres", "centres"),
                )
        self._by_name = {segment.name: segment for segment in self._segments}
        if self.length > MAX_SUMMARY_WORDS:
            raise PlanError(
                f"the plan's summary vector would hold {self.length:,} integers, more than "
                f"the {MAX_SUMMARY_WORDS:,} a node sends: ask for fewer outcomes, time points "
                "or strata, a coarser time grid or a shorter horizon"
            )

    def _add_strata(self, plan: Plan) -> None:
        """Per stratum of ``by``: the cohort, every change cell and the safety counts."""
        for stratum in plan.strata:
            self._add_counts(
                f"by.{stratum}.cohort",
                f"{plan.by} = {stratum}: patients; total follow-up days on treatment",
                ("patients", "followup_days_total"),
                ("patients", "days"),
            )
            for outcome, months in plan.cells:
                self._add_cell(outcome, months, stratum_cell_prefix(outcome, months, stratum))
            self._add_counts(
                f"by.{stratum}.safety.events",
                f"{plan.by} = {stratum}: adverse events on treatment per type",
                EVENT_TYPES,
                ("events",) * len(EVENT_TYPES),
            )
            self._add_counts(
                f"by.{stratum}.safety.patients",
                f"{plan.by} = {stratum}: patients with at least one event per type",
                EVENT_TYPES,
            )

    def _add_time_to_event(self, plan: Plan) -> None:
        for endpoint in plan.time_to_event:
            for stratum in plan.strata:
                for kind, what in (("events", "event"), ("censored", "censoring")):
                    self._add_histogram(
                        tte_segment(endpoint, stratum, kind),
                        f"{endpoint}, {stratum}: patients whose {what} falls at each time "
                        f"(grid of {plan.time_grid_days:g} days)",
                        origin=0,
                        length=plan.horizon_grid + 1,
                        units=("time on the plan's grid", "patients"),
                    )

    def _add_cell(self, outcome: str, months: int, prefix: str) -> None:
        """A change cell's sums and histogram; a stratum's cell also counts its centres."""
        measure = self.plan.measure(outcome)
        grid = f"grid units of {float(measure.resolution):g} {measure.unit}"
        stratified = prefix != cell_prefix(outcome, months)
        self._add_counts(
            f"{prefix}.sums",
            f"{measure.label} at {months} months: n and exact sums of baseline and change "
            f"in units of {measure.resolution}" + ("; centres with n > 0" if stratified else ""),
            CELL_SUM_LABELS + (("centres",) if stratified else ()),
            (
                "patients",
                grid,
                f"squared {grid}",
                grid,
                f"squared {grid}",
                f"squared {grid}",
                *(("centres",) if stratified else ()),
            ),
            grid=measure.resolution,
        )
        width = measure.max_abs_change_units
        self._add_histogram(
            f"{prefix}.histogram",
            f"{measure.label} at {months} months: patients per change "
            f"(grid {measure.resolution})",
            origin=-width,
            length=2 * width + 1,
            units_per_value=measure.units_per_value,
            units=(f"change in {measure.unit}", "patients"),
        )

    @classmethod
    def for_plan(cls, plan: Plan) -> SummaryLayout:
        return cls(plan)

    def _next_offset(self) -> int:
        return self._segments[-1].stop if self._segments else 0

    def _add_counts(
        self,
        name: str,
        meaning: str,
        labels: tuple[str, ...],
        units: tuple[str, ...] | None = None,
        grid: Fraction | None = None,
    ) -> None:
        """A count segment; its elements count patients unless ``units`` says otherwise."""
        units = ("patients",) * len(labels) if units is None else units
        if len(units) != len(labels):
            raise ValueError(f"segment {name}: one unit per label")
        self._segments.append(
            Segment(name, self._next_offset(), len(labels), meaning, labels, units=units, grid=grid)
        )

    def _add_histogram(
        self,
        name: str,
        meaning: str,
        *,
        origin: int,
        length: int,
        units: tuple[str, str],
        units_per_value: int = 1,
    ) -> None:
        self._segments.append(
            Segment(
                name,
                self._next_offset(),
                length,
                meaning,
                origin=origin,
                units_per_value=units_per_value,
                units=units,
            )
        )

    @property
    def segments(self) -> tuple[Segment, ...]:
        return tuple(self._segments)

    @cached_property
    def length(self) -> int:
        return self._segments[-1].stop

    def segment(self, name: str) -> Segment:
        return self._by_name[name]

    def zeros(self) -> np.ndarray:
        return np.zeros(self.length, dtype=np.int64)

    def view(self, vector: np.ndarray, name: str) -> np.ndarray:
        """The part of ``vector`` holding segment ``name`` (a view: writes go through)."""
        segment = self._by_name[name]
        return vector[segment.offset : segment.stop]

    def counts(self, vector: np.ndarray, name: str) -> dict[str, int]:
        """A count segment as {label: value}."""
        segment = self._by_name[name]
        return {
            label: int(v) for label, v in zip(segment.labels, self.view(vector, name), strict=True)
        }

    def check(self, vector: np.ndarray) -> None:
        """Raise ValueError unless ``vector`` is a 1-d int64 vector of this layout's length."""
        if vector.ndim != 1 or vector.dtype != np.int64 or vector.shape[0] != self.length:
            raise ValueError(
                f"summary vector must be 1-d int64 of length {self.length} "
                f"({self.version}), got {vector.dtype} of shape {vector.shape}"
            )

    def unit_text(self, name: str) -> str:
        """The units of segment ``name`` in words, e.g. ``"value in days → patients"``."""
        segment = self._by_name[name]
        if segment.is_histogram:
            value_unit, count_unit = segment.units
            return f"value in {value_unit} → {count_unit}"
        if len(set(segment.units)) == 1:
            return segment.units[0]
        return "; ".join(
            f"{label} in {unit}" for label, unit in zip(segment.labels, segment.units, strict=True)
        )

    def describe(self, vector: np.ndarray) -> dict[str, Any]:
        """The vector decoded in plain words: counts by label, histograms as {value: count}.

        Histogram values are printed in the measure's units (e.g. "-2.5"), only non-empty bins.
        ``units`` states, per segment, the unit of its numbers (:meth:`unit_text`): a
        change cell's sums are in grid units of the measure's resolution, not in its unit.
        Used for the audit log and ``sscjak-node preview``: it is exactly what is released.
        """
        self.check(vector)
        decoded: dict[str, Any] = {
            "layout": self.version,
            "plan_sha256": self.plan.sha256,
            "units": {segment.name: self.unit_text(segment.name) for segment in self._segments},
        }
        for segment in self._segments:
            values = self.view(vector, segment.name)
            if segment.is_histogram:
                nonzero = np.flatnonzero(values)
                decoded[segment.name] = {
                    _format_grid_value(int(segment.origin) + int(i), segment.units_per_value): int(
                        values[i]
                    )
                    for i in nonzero
                }
            else:
                decoded[segment.name] = {
                    label: int(v) for label, v in zip(segment.labels, values, strict=True)
                }
        return decoded


def _format_grid_value(units: int, units_per_value: int) -> str:
    if units_per_value == 1:
        return str(units)
    value = units / units_per_value
    return f"{value:g}"


class RandomEffectsLayout(SummaryLayout):
    """The second vector of a heterogeneity plan: per change cell round(S·w*), round(S·w*θ)
    with w* = 1/(v + τ²) and the τ² the coordinator sent (version
    :data:`RANDOM_EFFECTS_LAYOUT_VERSION`)."""

    version = RANDOM_EFFECTS_LAYOUT_VERSION

    def __init__(self, plan: Plan) -> None:
        if not plan.heterogeneity:
            raise PlanError("a random-effects exchange needs a plan with heterogeneity = true")
        self.plan = plan
        self._segments = []
        for outcome, months in plan.cells:
            self._add_counts(
                random_effects_segment(outcome, months),
                f"{plan.measure(outcome).label} at {months} months: this centre's "
                "random-effects terms w* = 1/(v + τ²) and w*θ (0, 0 when left out)",
                RANDOM_EFFECTS_LABELS,
                (FIXED_POINT_UNIT,) * 2,
            )
        self._by_name = {segment.name: segment for segment in self._segments}
