"""Tests of sscjak.shared.statistics.change_cell: a whole cell against R on the raw rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sscjak.shared.statistics.change_cell import change_cell_statistics
from sscjak.shared.statistics.moments import ChangeCellSums

# R 4.2.2 (exactRankTests 0.8-35), the stacked rows of an mRSS cell:
X0 = np.array([14, 22, 9, 30, 17, 11, 25, 8, 19, 27, 13, 16])
D = np.array([-3, -5, 0, -8, -2, 1, -5, 0, -4, -6, 2, -3])


def cell_inputs(x0: np.ndarray, d: np.ndarray) -> tuple[ChangeCellSums, np.ndarray, np.ndarray]:
    x0_list, d_list = [int(v) for v in x0], [int(v) for v in d]
    sums = ChangeCellSums(
        n=len(d_list),
        sum_baseline=sum(x0_list),
        sum_baseline_squared=sum(v * v for v in x0_list),
        sum_change=sum(d_list),
        sum_change_squared=sum(v * v for v in d_list),
        sum_baseline_times_change=sum(a * b for a, b in zip(x0_list, d_list, strict=True)),
    )
    values, counts = np.unique(d, return_counts=True)
    return sums, values, counts.astype(np.int64)


def test_mrss_cell_equals_r_on_stacked_rows() -> None:
    sums, values, counts = cell_inputs(X0, D)
    cell = change_cell_statistics(sums, values, counts, 1, exact_conditional=True)
    assert (cell.n, cell.n_pos, cell.n_neg, cell.n_zero) == (12, 2, 8, 2)
    # R: sprintf("%.17g", c(mean(x0), sd(x0), mean(d), sd(d)))
    #   -> 17.583333333333332 7.1663142971865677 -2.75 3.0488447886789096
    assert cell.mean_baseline == pytest.approx(17.583333333333332, rel=1e-15)
    assert cell.sd_baseline == pytest.approx(7.1663142971865677, rel=1e-14)
    assert cell.mean_change == -2.75
    assert cell.sd_change == pytest.approx(3.0488447886789096, rel=1e-14)
    # R: quantile(d, c(.25,.5,.75)) -> -5 -3 0
    assert (cell.q1_change, cell.median_change, cell.q3_change) == (-5.0, -3.0, 0.0)
    # R: r <- cor(x0, x0 + d); s <- mean(d)/sd(x0); v <- 2*(1-r)/12 + s^2/24
    #   sprintf("%.17g", c(r, s, mean(d)/sd(d), s + c(-1,1)*qnorm(0.975)*sqrt(v)))
    #   -> 0.96246939848707447 -0.38373979788740581 -0.90198097660182908
    #      -0.60191096483397455 -0.16556863094083704
    assert cell.r_baseline_followup == pytest.approx(0.96246939848707447, rel=1e-14)
    assert cell.smc == cell.smc_baseline == pytest.approx(-0.38373979788740581, rel=1e-14)
    assert cell.smc_change == pytest.approx(-0.90198097660182908, rel=1e-14)
    assert cell.smc_ci == pytest.approx((-0.60191096483397455, -0.16556863094083704), rel=1e-13)
    # R: wilcox.test(d) -> V = 3.5, p-value = 0.016394098626898574 (with continuity correction)
    assert (cell.statistic_v, cell.p_method) == (3.5, "normal")
    assert cell.p_value == pytest.approx(0.016394098626898574, rel=1e-12)
    # R: wilcox.exact(d)$p.value -> 0.01171875
    assert cell.p_value_exact_conditional == pytest.approx(0.01171875, rel=1e-12)


def test_result_keys_follow_the_contract_and_serialise() -> None:
    sums, values, counts = cell_inputs(X0, D)
    row = change_cell_statistics(sums, values, counts, 1, smc_kind="change").as_result()
    for key in (
        "n", "n_pos", "n_neg", "n_zero", "mean_baseline", "sd_baseline", "mean_change",
        "sd_change", "median_change", "q1_change", "q3_change", "smc", "smc_baseline",
        "smc_change", "smc_ci", "V", "p_value", "p_method",
    ):  # fmt: skip
        assert key in row
    assert row["smc"] == row["smc_change"]
    assert row["p_value_exact_conditional"] is None  # not requested
    assert json.loads(json.dumps(row, allow_nan=False)) == row


def test_all_zero_changes_give_nulls_not_nan() -> None:
    sums, values, counts = cell_inputs(np.array([10, 12, 14, 16, 18]), np.zeros(5, dtype=int))
    cell = change_cell_statistics(sums, values, counts, 1)
    assert (cell.mean_change, cell.sd_change) == (0.0, 0.0)
    assert cell.smc_change is None  # divides by an SD of 0
    assert cell.smc_baseline == 0.0
    assert cell.r_baseline_followup == pytest.approx(1.0)
    assert (cell.statistic_v, cell.p_value, cell.p_method) == (0.0, None, None)
    json.dumps(cell.as_result(), allow_nan=False)


def test_tenth_grid_cell_uses_measure_units() -> None:
    x0 = np.array([724, 801, 650, 903, 777, 589])
    d = np.array([12, -5, 34, 0, 22, -11])
    sums, values, counts = cell_inputs(x0, d)
    cell = change_cell_statistics(sums, values, counts, 10)
    # R: sprintf("%.17g", quantile(c(1.2,-0.5,3.4,0.0,2.2,-1.1), c(.25,.5,.75)))
    #   -> -0.375 0.59999999999999998 1.9500000000000002
    assert (cell.q1_change, cell.median_change, cell.q3_change) == pytest.approx(
        (-0.375, 0.59999999999999998, 1.9500000000000002), rel=1e-12
    )
    assert cell.mean_change == pytest.approx(0.8666666666666667, rel=1e-15)


def test_inconsistent_inputs_are_refused() -> None:
    sums, values, counts = cell_inputs(X0, D)
    with pytest.raises(ValueError, match="holds 11 patients but the sums n = 12"):
        change_cell_statistics(sums, values, counts - (values == 0), 1)
    with pytest.raises(ValueError, match="smc_kind"):
        change_cell_statistics(sums, values, counts, 1, smc_kind="post")  # type: ignore[arg-type]
