"""The one histogram check and the one normal approximation every rank statistic uses."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from sscjak.shared.statistics.histogram_input import checked_histogram
from sscjak.shared.statistics.normal_approximation import continuity_corrected_p


@pytest.mark.parametrize(
    ("values", "counts", "options", "message"),
    [
        ([1, 2], [1], {}, "same length"),
        ([[1, 2]], [1, 2], {}, "one-dimensional"),
        ([1, 2], [1.0, 2.0], {}, "counts must be integers"),
        ([1, 2], [1, -1], {}, ">= 0"),
        ([2, 1], [1, 1], {"ascending": True}, "strictly ascending"),
        ([1, 1], [1, 1], {}, "must not repeat"),
        ([0.5, 1.0], [1, 1], {"integer_values": True}, "integer grid units"),
        ([1, 2], [1, 2], {"per_stratum": True}, "one row per stratum"),
        ([1, 2], [[1, 2, 3]], {"per_stratum": True}, "one entry per value"),
    ],
)
def test_a_bad_histogram_is_refused_saying_what_is_wrong(values, counts, options, message):
    with pytest.raises(ValueError, match=message):
        checked_histogram(np.array(values), np.array(counts), **options)


def test_strata_are_put_in_ascending_order_of_the_values() -> None:
    values, counts = checked_histogram(
        np.array([3, -1, 2]), np.array([[1, 2, 3], [4, 5, 6]]), per_stratum=True
    )
    assert values.tolist() == [-1, 2, 3]
    assert counts.tolist() == [[2, 3, 1], [5, 6, 4]]


def test_the_normal_approximation_is_the_continuity_corrected_two_sided_p() -> None:
    # distance 7.5 from the mean, variance 16: z = (7.5 − 0.5) / 4
    expected = 2 * stats.norm.sf(7.0 / 4.0)
    assert continuity_corrected_p(Fraction(15, 2), Fraction(16)) == pytest.approx(expected)
    assert continuity_corrected_p(Fraction(-15, 2), Fraction(16)) == pytest.approx(expected)
    # at the mean there is nothing to correct (R: sign(0) = 0): p = 1
    assert continuity_corrected_p(Fraction(0), Fraction(16)) == 1.0
    assert continuity_corrected_p(Fraction(3), Fraction(0)) is None
