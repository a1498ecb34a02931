"""A node that lies in its heterogeneity or random-effects terms is caught in the pooled sums.

Each attack adds one dishonest vector to the honest centres' sum and expects the named
check to fail; the honest sums pass.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from sscjak.coordinator.results.heterogeneity import (
    RandomEffectsRound,
    random_effects_problems,
    tau2_per_cell,
)
from sscjak.coordinator.results.pooled_consistency import (
    InconsistentPooledSummaryError,
    consistency_problems,
)
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders
from sscjak.node.data.centre_reader import read_centre
from sscjak.node.summarise.centre_estimates import random_effects_vector
from sscjak.node.summarise.derivation import derive_cohort
from sscjak.node.summarise.summary_vector import summarise_derived
from sscjak.shared.plan import Plan
from sscjak.shared.statistics.heterogeneity import FIXED_POINT_SCALE
from sscjak.shared.summary_layout import (
    RandomEffectsLayout,
    SummaryLayout,
    heterogeneity_segment,
    random_effects_segment,
)

PLAN = Plan(outcomes=("fvc_pct", "mrss"), months=(12,), heterogeneity=True, min_centre_n=3)
LAYOUT = SummaryLayout.for_plan(PLAN)
CELL = heterogeneity_segment("mrss", 12)


@pytest.fixture(scope="module")
def centres() -> list:
    cohorts = []
    for folder in demo_centre_folders().values():
        data = read_centre(folder)
        cohorts.append(derive_cohort(data.patients, data.visits, data.events, PLAN))
    return cohorts


@pytest.fixture(scope="module")
def honest(centres: list) -> np.ndarray:
    return sum(summarise_derived(cohort, PLAN) for cohort in centres)


def with_liar(honest: np.ndarray, **terms: int) -> np.ndarray:
    """The honest sum plus one more node: all zeros but centres = 1 and ``terms`` in the
    mRSS cell's heterogeneity segment (so only that segment is off)."""
    liar = LAYOUT.zeros()
    LAYOUT.view(liar, "centres")[:] = 1
    segment = LAYOUT.segment(CELL)
    for label, value in terms.items():
        liar[segment.offset + segment.labels.index(label)] = value
    return honest + liar


def test_the_honest_sums_pass(honest: np.ndarray, centres: list) -> None:
    assert consistency_problems(honest, LAYOUT, len(centres)) == []


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        ({}, "centres 4 + centres_left_out 0 is not the 5 node(s)"),
        ({"centres": 1, "sum_w_theta": 10**6 * FIXED_POINT_SCALE}, "(Σwθ)² exceeds"),
        ({"centres": 1, "sum_w": 10**5 * FIXED_POINT_SCALE, "sum_w2": 1}, "Cauchy–Schwarz"),
        ({"centres": 1, "sum_w2": -(2**62)}, "must be above 0"),
        ({"centres": 40, "centres_left_out": -36}, "each with at least 3 patients"),
    ],
)
def test_a_lie_in_the_heterogeneity_terms_is_caught(
    honest: np.ndarray, centres: list, terms: dict, expected: str
) -> None:
    problems = consistency_problems(with_liar(honest, **terms), LAYOUT, len(centres) + 1)
    assert any(expected in problem for problem in problems), problems


def test_a_lie_in_the_random_effects_sums_is_caught(honest: np.ndarray, centres: list) -> None:
    tau2 = tau2_per_cell(honest, PLAN)
    second = sum(
        random_effects_vector(cohort, PLAN, tuple(Fraction(v) for v in tau2))
        for cohort in centres
    )
    assert random_effects_problems(honest, second, PLAN, tau2) == []
    re_layout = RandomEffectsLayout.for_plan(PLAN)
    for index, cell in enumerate(PLAN.cells):
        segment = re_layout.segment(random_effects_segment(*cell))
        first = LAYOUT.counts(honest, heterogeneity_segment(*cell))
        doubled = second.copy()
        doubled[segment.offset] += first["sum_w"]  # Σw* above Σw
        [problem] = random_effects_problems(honest, doubled, PLAN, tau2)
        expected = "with tau2 = 0" if tau2[index] == 0 else "is outside"
        assert expected in problem and segment.name in problem
        steered = second.copy()
        steered[segment.offset + 1] += 10**6 * FIXED_POINT_SCALE  # an estimate far off
        assert random_effects_problems(honest, steered, PLAN, tau2)
    with pytest.raises(InconsistentPooledSummaryError, match=r"re\.fvc_pct\.12"):
        bad = second.copy()
        bad[re_layout.segment("re.fvc_pct.12").offset] *= 3
        build_results(honest, PLAN, len(centres), RandomEffectsRound(tau2, bad))
