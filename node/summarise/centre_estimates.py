"""This centre's own estimate per change cell, released only as fixed-point secure-sum terms.

For a plan with ``heterogeneity = true`` each centre computes, per change cell, its own
standardized mean change θ (the plan's ``smc`` kind) and its large-sample variance v
(:func:`sscjak.shared.statistics.change_cell.smc_estimate`, the same formulas as the
pooled cell). θ and v never leave the node: the first exchange carries the terms of
:func:`sscjak.shared.statistics.heterogeneity.heterogeneity_terms` (w, wθ, wθ², w² with
w = 1/v), the random-effects exchange those of
:func:`~sscjak.shared.statistics.heterogeneity.random_effects_terms` (w*, w*θ with
w* = 1/(v + τ²)). Both are sums the coordinator sees only pooled.

A centre is *left out* of a cell when it has fewer than the plan's ``min_centre_n``
patients there, when its θ or v is undefined (an SD of 0, a variance of 0), or when its
terms would not fit the secure sum's range (a variance below about 10⁻⁴). A left-out
centre adds 1 to ``centres_left_out`` and zeros elsewhere, and zeros to the random-effects
exchange.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from sscjak.node.data.centre_reader import read_centre
from sscjak.node.summarise.derivation import DerivedCohort, derive_cohort
from sscjak.shared.plan import Plan
from sscjak.shared.statistics.heterogeneity import (
    heterogeneity_terms,
    left_out_terms,
    random_effects_terms,
)
from sscjak.shared.statistics.moments import ChangeCellSums
from sscjak.shared.statistics.smc import smc_estimate
from sscjak.shared.summary_layout import (
    RandomEffectsLayout,
    SummaryLayout,
    heterogeneity_segment,
    random_effects_segment,
)

#: One cell's estimate (θ, v), or ``None`` when this centre is left out of the cell.
Estimate = tuple[float, float] | None


def estimate_identity(plan: Plan, outcome: str, months: int) -> str:
    """What decides this centre's (θ, v) of a cell: outcome, time point, window, SMC kind
    and the measure's grid — not the title, the minimum cell or ``min_centre_n``. Two
    plans with the same identity for a cell release terms of the same estimate."""
    measure = plan.measure(outcome)
    return json.dumps(
        [
            outcome,
            months,
            float(plan.window_months),
            plan.smc,
            measure.low,
            measure.high,
            str(measure.resolution),
        ]
    )


def centre_estimates(derived: DerivedCohort, plan: Plan) -> dict[tuple[str, int], Estimate]:
    """(θ, v) of every change cell of ``plan`` at this centre, ``None`` where left out."""
    estimates: dict[tuple[str, int], Estimate] = {}
    for (outcome, months), cell in derived.cells.items():
        sums = ChangeCellSums.of(cell.baseline_units, cell.change_units)
        if sums.n < plan.min_centre_n:
            estimates[(outcome, months)] = None
            continue
        estimate = smc_estimate(sums, plan.measure(outcome).units_per_value, plan.smc)
        estimates[(outcome, months)] = estimate if _fits(estimate) else None
    return estimates


def _fits(estimate: Estimate) -> bool:
    """Whether the estimate's terms fit the secure sum (a tiny variance does not)."""
    if estimate is None:
        return False
    try:
        heterogeneity_terms(*estimate)
    except ValueError:
        return False
    return True


def fill_heterogeneity(
    layout: SummaryLayout, vector: np.ndarray, derived: DerivedCohort, plan: Plan
) -> None:
    """The ``het.<outcome>.<months>`` segments of this centre's summary vector."""
    for (outcome, months), estimate in centre_estimates(derived, plan).items():
        terms = left_out_terms() if estimate is None else heterogeneity_terms(*estimate)
        layout.view(vector, heterogeneity_segment(outcome, months))[:] = terms.as_tuple()


def random_effects_vector(
    derived: DerivedCohort, plan: Plan, tau2: tuple[Fraction, ...]
) -> np.ndarray:
    """The random-effects exchange's vector: per cell round(S·w*), round(S·w*θ) with
    w* = 1/(v + τ²) for the cell's τ² (``tau2`` in the order of ``plan.cells``)."""
    layout = RandomEffectsLayout.for_plan(plan)
    if len(tau2) != len(plan.cells):
        raise ValueError(f"expected {len(plan.cells)} values of tau2, got {len(tau2)}")
    vector = layout.zeros()
    estimates = centre_estimates(derived, plan)
    for cell, cell_tau2 in zip(plan.cells, tau2, strict=True):
        estimate = estimates[cell]
        if estimate is not None:
            terms = random_effects_terms(*estimate, cell_tau2)
            layout.view(vector, random_effects_segment(*cell))[:] = terms.as_tuple()
    return vector


def summarise_random_effects(
    folder: Path | str, plan: Plan, tau2: tuple[Fraction, ...]
) -> np.ndarray:
    """Read, validate and derive the centre's folder, then :func:`random_effects_vector`."""
    data = read_centre(folder, plan.measures)
    derived = derive_cohort(data.patients, data.visits, data.events, plan)
    return random_effects_vector(derived, plan, tau2)
