"""Tests of sscjak.node.data.value_parsing: strict number and date notations, grid checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscjak.node.data.value_parsing import (
    decimal_point,
    is_whole_number,
    parse_dates,
    parse_numbers,
    shown,
)


def test_numbers_accepted_and_rejected() -> None:
    cells = pd.Series(["80.3", "80", "8.03e1", "-.5", "+2", "1.", "", "NaN", "inf", "1,5", "1_0"])
    parsed = parse_numbers(cells)
    np.testing.assert_array_equal(parsed.values[:6], [80.3, 80.0, 80.3, -0.5, 2.0, 1.0])
    assert parsed.missing.tolist() == [False] * 6 + [True] + [False] * 4
    assert parsed.unparsable.tolist() == [False] * 7 + [True] * 4
    assert np.isnan(parsed.values[6:]).all()


def test_unicode_digits_are_not_numbers_or_dates() -> None:
    assert parse_numbers(pd.Series(["٣"])).unparsable.tolist() == [True]
    assert parse_dates(pd.Series(["٢٠٢٠-01-01"])).unparsable.tolist() == [True]


def test_too_large_number_parses_to_infinity() -> None:
    parsed = parse_numbers(pd.Series(["1e400", "9" * 400]))
    assert np.isinf(parsed.values).all()
    assert not parsed.unparsable.any()


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_written_by_python_reads_back_exactly(value: float) -> None:
    assert parse_numbers(pd.Series([repr(value)])).values[0] == value


def test_missing_cells_given_as_none_are_missing() -> None:
    parsed = parse_numbers(pd.Series(["1", None], dtype=object))
    assert parsed.missing.tolist() == [False, True]


def test_dates_strict_iso_real_days_within_span() -> None:
    cells = pd.Series(
        ["2020-01-31", "2020-02-29", "2021-02-29", "2020-1-31", "31.01.2020", "", "1899-12-31"]
    )
    parsed = parse_dates(cells)
    assert parsed.values.dtype == "datetime64[ns]"
    assert parsed.values[0] == np.datetime64("2020-01-31")
    assert parsed.values[1] == np.datetime64("2020-02-29")
    assert np.isnat(parsed.values[2:]).all()
    assert parsed.not_a_day.tolist() == [False, False, True, False, False, False, True]
    assert parsed.unparsable.tolist() == [False, False, False, True, True, False, False]
    assert parsed.missing.tolist() == [False] * 5 + [True, False]


def test_year_beyond_nanosecond_range_does_not_overflow() -> None:
    parsed = parse_dates(pd.Series(["9999-12-31", "0001-01-01"]))
    assert parsed.not_a_day.all()


@pytest.mark.parametrize(("value", "whole"), [(3.0, True), (3.5, False), (np.nan, False)])
def test_is_whole_number(value: float, whole: bool) -> None:
    assert is_whole_number(np.array([value])).tolist() == [whole]


def test_shown_quotes_and_cuts() -> None:
    assert shown("250") == "'250'"
    assert shown("x" * 100) == repr("x" * 40 + "…")


def test_decimal_comma_is_flagged_among_the_unparsable() -> None:
    parsed = parse_numbers(pd.Series(["67,4", "-1,5", "1,000,5", "67.4", "", "x,5"]))
    assert parsed.decimal_comma.tolist() == [True, True, False, False, False, False]
    assert parsed.unparsable.tolist() == [True, True, True, False, False, True]
    assert decimal_point("67,4") == "67.4"


def test_dates_with_a_time_of_day_are_flagged_even_at_midnight() -> None:
    cells = pd.Series(
        ["2020-01-05 00:00:00", "2020-01-05T00:00", "2020-01-05 00:00:00.000", "2020-01-05 14:30"]
    )
    parsed = parse_dates(cells)
    assert np.isnat(parsed.values).all()
    assert parsed.with_time.tolist() == [True, True, True, True]
    assert not parsed.unparsable.any()
