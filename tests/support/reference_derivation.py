"""docs/derivation.md written a second time, plainly: one patient at a time, dates as dates.

This is deliberately the slow, obvious reading of the rules, independent of the
vectorised ``sscjak.node.summarise.derivation``; tests compare the two on random cohorts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

from sscjak.shared.data_contract import EVENT_TYPES, MEASURES
from sscjak.shared.plan import Plan

MONTH = 30.4375


def grid_units(value: float, resolution: float) -> int:
    """Half away from zero on the decimal value as written (Decimal, not binary floats)."""
    scaled = Decimal(repr(value)) / Decimal(repr(resolution))
    magnitude = int(abs(scaled).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return magnitude if scaled >= 0 else -magnitude


@dataclass
class ReferencePatient:
    followup_days: int
    changes: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    calcinosis_baseline: bool = False
    calcinosis_improved: bool = False
    developed_du: bool = False
    on_gc_at_baseline: bool = False
    events: dict[str, int] = field(default_factory=dict)


def _closest(candidates: list[tuple[int, float]], target: float) -> float | None:
    """Value of the (day, value) closest to target; a tie goes to the earlier day."""
    if not candidates:
        return None
    return min(candidates, key=lambda dv: (abs(dv[0] - target), dv[0]))[1]


def derive_reference(
    patients: pd.DataFrame, visits: pd.DataFrame, events: pd.DataFrame, plan: Plan
) -> list[ReferencePatient]:
    result = []
    for patient in patients.itertuples(index=False):
        start = patient.jaki_start.date()
        end = (patient.jaki_stop if not pd.isna(patient.jaki_stop) else patient.followup_end).date()
        own = visits[visits["patient_id"] == patient.patient_id]
        rows = [((row.visit_date.date() - start).days, row) for row in own.itertuples(index=False)]
        end_day = (end - start).days
        ref = ReferencePatient(followup_days=end_day)

        def baseline_of(column: str, rows=rows) -> float | None:
            return _closest(
                [
                    (d, getattr(r, column))
                    for d, r in rows
                    if not _missing(getattr(r, column)) and -90 <= d <= 14
                ],
                0.0,
            )

        for name in (*MEASURES, *(m.name for m in plan.measures)):
            measure = plan.measure(name)
            base = baseline_of(name)
            if name == "gc_dose_mg":
                ref.on_gc_at_baseline = base is not None and base > 0
            if name not in plan.outcomes or base is None:
                continue
            if name == "gc_dose_mg" and not base > 0:
                continue
            for months in plan.months:
                target = months * MONTH
                value = _closest(
                    [
                        (d, getattr(r, name))
                        for d, r in rows
                        if not _missing(getattr(r, name))
                        and d <= end_day
                        and abs(d - target) <= plan.window_months * MONTH
                    ],
                    target,
                )
                if value is None:
                    continue
                res = float(measure.resolution)
                b = grid_units(base, res)
                ref.changes[(name, months)] = (b, grid_units(value, res) - b)

        calcinosis = baseline_of("calcinosis")
        ref.calcinosis_baseline = calcinosis == 1
        courses = [
            (d, r.calcinosis_course)
            for d, r in rows
            if not _missing(r.calcinosis_course) and 0 < d <= end_day
        ]
        if ref.calcinosis_baseline and courses:
            ref.calcinosis_improved = max(courses)[1] == "improved"

        ulcer_visit = any(
            0 < d <= end_day and not _missing(r.du_count) and r.du_count > 0 for d, r in rows
        )
        own_events = events[events["patient_id"] == patient.patient_id]
        on_treatment = [
            e.event_type
            for e in own_events.itertuples(index=False)
            if 0 <= (e.event_date.date() - start).days <= end_day
        ]
        ref.developed_du = ulcer_visit or "digital_ulcer" in on_treatment
        ref.events = {t: on_treatment.count(t) for t in EVENT_TYPES}
        result.append(ref)
    return result


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
