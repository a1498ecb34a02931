"""A measure's grid, in one place: values to grid units and the off-grid test agree."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sscjak.shared.data_contract import MEASURES

FVC = MEASURES["fvc_pct"]
GC = MEASURES["gc_dose_mg"]


def test_values_off_the_grid_are_rounded_half_away_from_zero() -> None:
    assert FVC.to_units(np.array([80.35, 80.34, 80.25, 199.95])).tolist() == [804, 803, 803, 2000]
    assert GC.to_units(np.array([2.125, 2.1, 7.5, 0.125])).tolist() == [9, 8, 30, 1]
    assert FVC.to_units(np.array([-2.5, -0.35])).tolist() == [-25, -4]


def test_off_grid_tolerates_binary_representation_only() -> None:
    values = np.array([80.3, 80.35, 0.1 + 0.2, 199.9, np.nan])
    assert FVC.is_off_grid(values).tolist() == [False, True, False, False, False]
    assert GC.is_off_grid(np.array([2.25, 2.3, 7.75])).tolist() == [False, True, False]


@given(
    name=st.sampled_from(sorted(MEASURES)),
    units=st.integers(min_value=-100_000, max_value=100_000),
    half=st.booleans(),
)
def test_a_value_is_off_the_grid_exactly_when_the_grid_moves_it(
    name: str, units: int, half: bool
) -> None:
    measure = MEASURES[name]
    k = measure.units_per_value
    value = np.array([(units + (0.5 if half else 0.0)) / k])
    on_grid_units = measure.to_units(value)
    assert bool(measure.is_off_grid(value)[0]) == (on_grid_units[0] / k != value[0])
    if not half:
        assert on_grid_units.tolist() == [units]
    else:  # half a step: away from zero
        expected = units + 1 if units >= 0 else units
        assert on_grid_units.tolist() == [expected]
