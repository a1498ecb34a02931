"""Number formatting of the study report: the conventions of a clinical paper."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscjak.coordinator.report.formatting import (
    MINUS,
    UNDEFINED,
    decimals_for_resolution,
    format_count_percent,
    format_estimate_interval,
    format_grid_value,
    format_mean_sd,
    format_median_iqr,
    format_number,
    format_p_value,
    format_percent,
    format_quantile,
    format_rank_statistic,
    format_smc,
    parse_number,
)


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0002, "< 0.001"),
        (0.000999, "< 0.001"),
        (0.001, "0.001"),
        (0.0042, "0.004"),
        (0.03, "0.03"),
        (0.0333, "0.03"),
        (0.049, "0.049"),
        (0.054, "0.054"),
        (0.0551, "0.06"),
        (0.1012, "0.10"),
        (0.3305, "0.33"),
        (0.995, "> 0.99"),
        (1.0, "> 0.99"),
        (None, UNDEFINED),
    ],
)
def test_p_values_are_printed_as_in_a_clinical_paper(p: float | None, text: str) -> None:
    assert format_p_value(p) == text


def test_the_published_p_values_print_as_published() -> None:
    # the published reference study (docs/statistics.md): "p = 0.10 ... (p = 0.33) ...
    # (p = 0.03) ... (p < 0.001) ... (p = 0.001);
    # ... (p = 0.17, 0.054, ...)"
    published = {
        0.1: "0.10",
        0.33: "0.33",
        0.03: "0.03",
        0.0004: "< 0.001",
        0.001: "0.001",
        0.17: "0.17",
        0.054: "0.054",
    }
    assert {p: format_p_value(p) for p in published} == published


def test_rounding_is_half_away_from_zero_on_the_printed_value() -> None:
    # format(2.675, ".2f") gives "2.67" (binary 2.67499...); a reader expects 2.68.
    assert format_number(2.675, 2) == "2.68"
    assert format_number(-2.675, 2) == f"{MINUS}2.68"
    assert format_number(0.125, 2) == "0.13"
    assert format_number(16.85, 1) == "16.9"


def test_negative_numbers_carry_a_true_minus_and_zero_has_no_sign() -> None:
    assert format_smc(-0.29) == f"{MINUS}0.29"
    assert format_smc(-0.001) == "0.00"
    assert format_number(-0.04, 1) == "0.0"
    assert "-" not in format_number(-3.5, 1)


def test_smc_has_two_decimals_and_its_interval_too() -> None:
    assert format_smc(0.2) == "0.20"
    assert format_estimate_interval(-0.29, [-0.6, 0.02], 2) == (
        f"{MINUS}0.29 ({MINUS}0.60 to 0.02)"
    )
    assert format_estimate_interval(0.5, None, 2) == "0.50"
    assert format_estimate_interval(None, [0.1, 0.2], 2) == UNDEFINED


def test_percentages_have_one_decimal() -> None:
    assert format_percent(5, 11) == "45.5%"
    assert format_count_percent(27, 32) == "27 (84.4%)"
    assert format_count_percent(0, 32) == "0 (0.0%)"
    assert format_percent(3, 0) == UNDEFINED


def test_descriptive_decimals_follow_the_measure_grid() -> None:
    assert decimals_for_resolution(1.0) == 1  # mRSS, joint counts
    assert decimals_for_resolution(0.1) == 1  # FVC%, DLCO%
    assert decimals_for_resolution(0.25) == 2  # glucocorticoid dose
    assert decimals_for_resolution(None) == 1


def test_median_iqr_and_mean_sd_forms() -> None:
    assert format_median_iqr(16.9, 10.3, 31.8, 1) == "16.9 (10.3, 31.8)"
    assert format_median_iqr(-2.0, -5.0, 0.0, 1) == f"{MINUS}2.0 ({MINUS}5.0, 0.0)"
    assert format_mean_sd(14.1, 9.8, 1) == "14.1 (9.8)"
    assert format_mean_sd(3.0, None, 1) == f"3.0 ({UNDEFINED})"
    assert format_median_iqr(None, 1.0, 2.0, 1) == UNDEFINED


def test_a_quantile_on_a_grid_never_prints_a_false_zero() -> None:
    # Type-7 quartiles of a 0.1 grid are multiples of 0.025; float noise
    # (−0.04999999999999999 for −0.05) must not turn Q1 into "0.0".
    assert format_quantile(-0.04999999999999999, 1, 0.1) == f"{MINUS}0.1"
    assert format_quantile(-0.025, 1, 0.1) == f"{MINUS}0.025"
    assert format_quantile(0.025, 1, 0.1) == "0.025"
    assert format_quantile(3.4000000000000004, 1, 0.1) == "3.4"
    assert format_quantile(-4.375, 2, 0.25) == f"{MINUS}4.38"
    assert format_quantile(0.0, 1, 0.1) == "0.0"
    assert format_quantile(-0.04, 1) == "0.0"  # without a grid: format_number
    assert format_median_iqr(1.95, -0.04999999999999999, 3.4, 1, quantile_grid=0.1) == (
        f"2.0 ({MINUS}0.1, 3.4)"
    )


def test_grid_values_print_with_the_decimals_they_need() -> None:
    assert format_grid_value(-4.0, 1.0) == f"{MINUS}4"
    assert format_grid_value(-2.5, 0.1) == f"{MINUS}2.5"
    assert format_grid_value(5.25, 0.25) == "5.25"
    assert format_grid_value(None, 1.0) == UNDEFINED


def test_rank_statistic_is_whole_or_half() -> None:
    assert format_rank_statistic(52.5) == "52.5"
    assert format_rank_statistic(166.0) == "166"
    assert format_rank_statistic(None) == UNDEFINED


@given(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=4),
)
def test_a_formatted_number_is_within_half_a_unit_of_the_value(value: float, decimals: int) -> None:
    text = format_number(value, decimals)
    shown = parse_number(text)
    if decimals:
        assert len(text.rsplit(".", 1)[1]) == decimals
    else:
        assert "." not in text
    # The half-unit bound, with the tie rounded away from zero (Decimal of the repr).
    assert abs(Decimal(repr(value)) - Decimal(repr(shown))) <= Decimal(5).scaleb(-decimals - 1)
