"""Heterogeneity between centres of each change cell, from two secure sums.

The first secure sum (the plan's summary vector) carries, per change cell, each centre's
fixed-point terms of its own estimate (``het.<outcome>.<months>``); from their pooled sums
:func:`tau2_per_cell` computes the DerSimonian–Laird τ² that the coordinator sends back
in the random-effects exchange, whose pooled sums (``re.<outcome>.<months>``) give the
random-effects estimate (:mod:`sscjak.shared.statistics.heterogeneity`, metafor
``rma(yi, vi, method = "DL")``).

Disclosure: a cell's heterogeneity is shown only when its pooled change cell is, and when
at least :data:`~sscjak.shared.disclosure.MIN_HETEROGENEITY_CENTRES` centres contribute an
estimate. Otherwise its τ² is sent as 0, which makes the random-effects terms equal to the
first exchange's (nothing new is released), and the row says why it is suppressed. The
fixed-effect estimate and its SE are not released: with Q and τ² they would give the
four first-exchange sums, two more equations in the centres' estimates.

Both pooled vectors are checked first: every identity or inequality below holds for each
honest centre and survives the sum, so a node that sends terms no estimate produces is
caught (:func:`heterogeneity_problems`, :func:`random_effects_problems`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from sscjak.shared.disclosure import (
    MIN_HETEROGENEITY_CENTRES,
    heterogeneity_suppression_rule,
    is_suppressed,
    suppression_rule,
)
from sscjak.shared.plan import Plan
from sscjak.shared.statistics.heterogeneity import (
    HeterogeneityResult,
    decode,
    dersimonian_laird_from_pooled,
    random_effects_estimate,
)
from sscjak.shared.summary_layout import (
    RandomEffectsLayout,
    SummaryLayout,
    cell_prefix,
    heterogeneity_segment,
    random_effects_segment,
)


@dataclass(frozen=True)
class RandomEffectsRound:
    """The random-effects secure sum: the τ² sent per cell and the pooled vector."""

    tau2: tuple[float, ...]
    pooled: np.ndarray


#: Relative slack of the inequality checks: far above the fixed-point rounding (about
#: 10⁻¹⁰ relative), far below any lie that changes a result.
_SLACK = Fraction(1, 10**6)


def _terms(layout: SummaryLayout, pooled: np.ndarray, outcome: str, months: int) -> dict[str, int]:
    return layout.counts(pooled, heterogeneity_segment(outcome, months))


def _suppression(
    layout: SummaryLayout, pooled: np.ndarray, outcome: str, months: int
) -> str | None:
    """Why the cell's heterogeneity is not shown, or ``None`` (see the module docstring)."""
    min_cell = layout.plan.min_cell
    if is_suppressed(layout.counts(pooled, f"{cell_prefix(outcome, months)}.sums")["n"], min_cell):
        return suppression_rule(min_cell)
    if _terms(layout, pooled, outcome, months)["centres"] < MIN_HETEROGENEITY_CENTRES:
        return heterogeneity_suppression_rule()
    return None


def _dersimonian_laird(
    layout: SummaryLayout, pooled: np.ndarray, outcome: str, months: int
) -> HeterogeneityResult | None:
    if _suppression(layout, pooled, outcome, months) is not None:
        return None
    return dersimonian_laird_from_pooled(tuple(_terms(layout, pooled, outcome, months).values()))


def tau2_per_cell(pooled: np.ndarray, plan: Plan) -> tuple[float, ...]:
    """The τ² to send per change cell (plan order): DerSimonian–Laird, 0 where not shown."""
    layout = SummaryLayout.for_plan(plan)
    values = []
    for outcome, months in plan.cells:
        result = _dersimonian_laird(layout, pooled, outcome, months)
        values.append(result.tau2 if result is not None else 0.0)
    return tuple(values)


def heterogeneity_results(
    pooled: np.ndarray, plan: Plan, random_effects: np.ndarray | None, tau2: tuple[float, ...]
) -> list[dict[str, Any]]:
    """The ``heterogeneity`` rows of the results file, one per change cell.

    ``random_effects`` is the pooled random-effects vector for the τ² of ``tau2``
    (``None``: not run, and the rows say so).
    """
    layout = SummaryLayout.for_plan(plan)
    re_layout = RandomEffectsLayout.for_plan(plan)
    rows: list[dict[str, Any]] = []
    for (outcome, months), sent_tau2 in zip(plan.cells, tau2, strict=True):
        terms = _terms(layout, pooled, outcome, months)
        row: dict[str, Any] = {
            "outcome": outcome,
            "months": months,
            "label": plan.measure(outcome).label,
            "centres": terms["centres"],
            "centres_left_out": terms["centres_left_out"],
            "min_centre_n": plan.min_centre_n,
        }
        rows.append(row)
        rule = _suppression(layout, pooled, outcome, months)
        if rule is not None:
            row.update(suppressed=True, suppression_rule=rule)
            continue
        result = dersimonian_laird_from_pooled(tuple(terms.values()))
        row.update(
            suppressed=False,
            q=result.q,
            df=result.df,
            p_value=result.p_value,
            i2_percent=result.i2_percent,
            h2=result.h2,
            tau2=result.tau2,
            random_effects=None,
        )
        if random_effects is not None:
            sums = re_layout.counts(random_effects, random_effects_segment(outcome, months))
            estimate = random_effects_estimate(
                decode(sums["sum_wstar"]), decode(sums["sum_wstar_theta"])
            )
            row["random_effects"] = {
                "tau2_used": sent_tau2,
                "estimate": estimate.estimate,
                "se": estimate.se,
                "ci": [estimate.ci_lower, estimate.ci_upper],
                "z": estimate.z,
                "p_value": estimate.p_value,
            }
    return rows


def heterogeneity_problems(
    layout: SummaryLayout, pooled: np.ndarray, participants: int
) -> Iterator[str]:
    """The first exchange's heterogeneity terms could have come from honest centres.

    Per cell: every centre adds 1 to exactly one of ``centres`` and ``centres_left_out``;
    a left-out centre adds nothing else; an included one has n ≥ ``min_centre_n`` in the
    cell and w > 0, so A = Σw > 0, D = Σw² > 0, C = Σwθ² ≥ 0, and by Cauchy–Schwarz
    A² ≤ k·D, D ≤ A² and B² ≤ A·C (B = Σwθ).
    """
    plan = layout.plan
    if not plan.heterogeneity:
        return
    for outcome, months in plan.cells:
        name = heterogeneity_segment(outcome, months)
        terms = _terms(layout, pooled, outcome, months)
        k, left_out = terms["centres"], terms["centres_left_out"]
        if k + left_out != participants:
            yield (
                f"{name}: centres {k} + centres_left_out {left_out} is not the {participants} "
                "node(s) that took part (each node adds 1 to one of them)"
            )
        n = layout.counts(pooled, f"{cell_prefix(outcome, months)}.sums")["n"]
        if k * plan.min_centre_n > n:
            yield (
                f"{name}: {k} centres contribute an estimate, each with at least "
                f"{plan.min_centre_n} patients, but the cell holds n = {n}"
            )
        a, b, c, d = (
            decode(terms[label])
            for label in ("sum_w", "sum_w_theta", "sum_w_theta2", "sum_w2")
        )
        if k == 0:
            if any((a, b, c, d)):
                yield f"{name}: no centre contributes an estimate but the sums are not 0"
            continue
        if a <= 0 or d <= 0 or c < 0:
            yield f"{name}: Σw and Σw² must be above 0 and Σwθ² at least 0"
            continue
        if a * a > k * d * (1 + _SLACK) or d > a * a * (1 + _SLACK):
            yield f"{name}: Σw and Σw² do not fit {k} positive weights (Cauchy–Schwarz)"
        if b * b > a * c * (1 + _SLACK) + _SLACK:
            yield f"{name}: (Σwθ)² exceeds Σw·Σwθ² (Cauchy–Schwarz)"


def random_effects_problems(
    pooled: np.ndarray, random_effects: np.ndarray, plan: Plan, tau2: tuple[float, ...]
) -> list[str]:
    """The random-effects sums could have come from the same honest centres.

    With w*ᵢ = wᵢ/(1 + τ²wᵢ): A/(1 + τ²A) ≤ Σw* ≤ A, (Σw*θ)² ≤ Σw*·C; with τ² = 0 the
    terms are the first exchange's exactly. A, C from the first exchange.
    """
    layout = SummaryLayout.for_plan(plan)
    re_layout = RandomEffectsLayout.for_plan(plan)
    re_layout.check(random_effects)
    problems = []
    for (outcome, months), cell_tau2 in zip(plan.cells, tau2, strict=True):
        name = random_effects_segment(outcome, months)
        terms = _terms(layout, pooled, outcome, months)
        sums = re_layout.counts(random_effects, name)
        if cell_tau2 == 0:
            if (sums["sum_wstar"], sums["sum_wstar_theta"]) != (
                terms["sum_w"],
                terms["sum_w_theta"],
            ):
                problems.append(f"{name}: with tau2 = 0 the sums must equal Σw and Σwθ")
            continue
        a, c = decode(terms["sum_w"]), decode(terms["sum_w_theta2"])
        wstar, wstar_theta = decode(sums["sum_wstar"]), decode(sums["sum_wstar_theta"])
        exact_tau2 = Fraction(cell_tau2)
        lowest = a / (1 + exact_tau2 * a)
        if not lowest * (1 - _SLACK) <= wstar <= a * (1 + _SLACK):
            problems.append(
                f"{name}: Σw* = {float(wstar):.6g} is outside Σw/(1 + τ²Σw) … Σw = "
                f"{float(lowest):.6g} … {float(a):.6g}"
            )
        elif wstar_theta * wstar_theta > wstar * c * (1 + _SLACK) + _SLACK:
            problems.append(f"{name}: (Σw*θ)² exceeds Σw*·Σwθ² (Cauchy–Schwarz)")
    return problems
