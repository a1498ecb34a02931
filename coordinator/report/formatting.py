"""How the report writes a number: the conventions of a clinical paper.

Every function takes a value exactly as it stands in ``results.json`` (a float, an
int or ``None`` for an undefined statistic) and returns the text a reader sees.
Rounding is half away from zero on the shortest decimal representation of the
value (``Decimal(repr(x))``), as a person rounding the printed number would, not
binary round-half-even (Python's ``format`` turns 2.675 into "2.67").

Conventions (AMA Manual of Style, 11th ed., §19 "Numbers and percentages", and
§20.9 on P values):

* P values: "< 0.001" below 0.001; three decimals below 0.01; two decimals
  otherwise, except three when two would print 0.05 (0.045 ≤ p < 0.055), so a
  reader never has to guess which side of 0.05 a result fell; "> 0.99" above 0.99.
* Percentages: one decimal.
* Standardized mean changes and their confidence limits: two decimals.
* Descriptive statistics of a measure: the decimals its recording grid needs, at
  least one (mRSS, grid 1 → 14.1; FVC%, grid 0.1 → 78.4; glucocorticoid dose,
  grid 0.25 → 2 decimals).
* Negative numbers carry a true minus sign (U+2212); a value that rounds to zero
  is printed without a sign.
* Quantiles of a measure recorded on a grid (median and IQR of a change): R's type-7
  quantile of grid values at p = 0.25, 0.5, 0.75 is a multiple of a quarter of the grid
  step (Hyndman and Fan 1996, definition 7), so the value is first put on that exact
  multiple (removing binary noise: −0.04999999999999999 is −0.05) and then rounded as
  above; a quantile that is not zero but would print as zero is printed with the
  decimals that show it exactly (Q1 = −0.025 on a 0.1 grid prints as −0.025, never 0.0).
* Times to event (a median survival time and its confidence limits, in months or
  days): a whole number, or one decimal when the value is a midpoint of grid times.
* An undefined statistic (JSON ``null``) is printed as an em dash.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

#: What the report prints for a statistic that is undefined for the data (JSON null).
UNDEFINED = "—"
#: The minus sign of typeset numbers (U+2212), as journals print it.
MINUS = "\u2212"


def round_half_away(value: float, decimals: int) -> Decimal:
    """``value`` rounded to ``decimals`` places, half away from zero, on its decimal repr."""
    quantum = Decimal(1).scaleb(-decimals)
    return Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)


def format_number(value: float | None, decimals: int) -> str:
    """A number with a fixed count of decimals, a true minus sign, no ``-0.0``."""
    if value is None:
        return UNDEFINED
    rounded = round_half_away(value, decimals)
    if rounded == 0:
        rounded = abs(rounded)
    text = f"{rounded:.{decimals}f}"
    return text.replace("-", MINUS)


def decimals_for_resolution(resolution: float | None) -> int:
    """Decimals for the descriptives of a measure recorded on a grid of ``resolution``.

    The decimals the grid itself needs, at least one: integer grids (mRSS, joint
    counts) → 1, FVC% and DLCO% (grid 0.1) → 1, glucocorticoid dose (grid 0.25) → 2.
    """
    if resolution is None or resolution <= 0:
        return 1
    step = Fraction(repr(float(resolution)))
    decimals = 0
    while (step * 10**decimals).denominator != 1 and decimals < 3:
        decimals += 1
    return max(1, decimals)


def format_p_value(p: float | None) -> str:
    """A P value as a clinical paper prints it (AMA Manual of Style §20.9)."""
    if p is None:
        return UNDEFINED
    if p < 0.001:
        return "< 0.001"
    if p > 0.99:
        return "> 0.99"
    if p < 0.01 or 0.045 <= p < 0.055:
        return format_number(p, 3)
    return format_number(p, 2)


def format_percent(count: int | None, total: int | None) -> str:
    """``count`` as a percentage of ``total`` with one decimal, "—" when undefined."""
    if count is None or not total:
        return UNDEFINED
    return f"{format_number(100 * count / total, 1)}%"


def format_count_percent(count: int | None, total: int | None) -> str:
    """``n (x.x%)``, the usual form of a categorical characteristic."""
    if count is None:
        return UNDEFINED
    if not total:
        return str(count)
    return f"{count} ({format_percent(count, total)})"


#: Decimals of a standardized mean change and of its confidence limits.
SMC_DECIMALS = 2


def format_smc(value: float | None) -> str:
    """A standardized mean change, two decimals."""
    return format_number(value, SMC_DECIMALS)


def format_smc_with_ci(value: float | None, interval: list[float | None] | None) -> str:
    """``SMC (low to high)`` with two decimals throughout."""
    return format_estimate_interval(value, interval, SMC_DECIMALS)


def format_interval(low: float | None, high: float | None, decimals: int) -> str:
    """A confidence interval as ``low to high`` (the word avoids ``−0.60–0.02``)."""
    if low is None or high is None:
        return UNDEFINED
    return f"{format_number(low, decimals)} to {format_number(high, decimals)}"


def format_estimate_interval(
    value: float | None, interval: list[float | None] | tuple | None, decimals: int
) -> str:
    """``estimate (low to high)``, e.g. an SMC with its 95% CI or a rate with its CI."""
    if value is None:
        return UNDEFINED
    if not interval or len(interval) != 2 or interval[0] is None or interval[1] is None:
        return format_number(value, decimals)
    return (
        f"{format_number(value, decimals)} ({format_interval(interval[0], interval[1], decimals)})"
    )


def format_mean_sd(mean: float | None, sd: float | None, decimals: int) -> str:
    """``mean (SD)``."""
    if mean is None:
        return UNDEFINED
    return f"{format_number(mean, decimals)} ({format_number(sd, decimals)})"


def _grid_decimal(value: float, step: Fraction) -> Decimal:
    """``value`` as the exact nearest multiple of ``step`` (a decimal fraction)."""
    multiple = round(Fraction(repr(float(value))) / step)
    exact = multiple * step
    return Decimal(exact.numerator) / Decimal(exact.denominator)


def format_quantile(value: float | None, decimals: int, grid: float | None = None) -> str:
    """A quantile of a measure recorded on ``grid``: on the quarter-grid, never a false 0.

    Without ``grid`` it is :func:`format_number`. With it, the value is first put on the
    nearest multiple of grid / 4 (what R's type-7 quartiles of grid values are); when it
    is not zero but rounds to zero at ``decimals``, it is printed with the decimals of
    that exact multiple instead, its sign kept.
    """
    if value is None:
        return UNDEFINED
    if grid is None or grid <= 0:
        return format_number(value, decimals)
    exact = _grid_decimal(value, Fraction(repr(float(grid))) / 4)
    if exact != 0 and round_half_away(float(exact), decimals) == 0:
        decimals = max(decimals, -exact.normalize().as_tuple().exponent)
    return format_number(float(exact), decimals)


def format_grid_value(value: float | None, resolution: float | None = None) -> str:
    """A value on a measure's grid (a bin bound) exactly, with the decimals it needs and
    no more (−20, −2.5, 0.25), a true minus sign. ``resolution`` is accepted for the
    reader's sake: a released bound is a multiple of it, so its decimals suffice."""
    if value is None:
        return UNDEFINED
    exact = Fraction(repr(float(value)))
    decimals = 0
    while (exact * 10**decimals).denominator != 1 and decimals < 6:
        decimals += 1
    return format_number(value, decimals)


def format_median_iqr(
    median: float | None,
    q1: float | None,
    q3: float | None,
    decimals: int,
    quantile_grid: float | None = None,
) -> str:
    """``median (Q1, Q3)``, the interquartile range written as its two quartiles.

    ``quantile_grid`` is the recording grid of the measure whose quantiles these are
    (:func:`format_quantile`); without it each is printed by :func:`format_number`.
    """
    if median is None:
        return UNDEFINED
    if q1 is None or q3 is None:
        return format_quantile(median, decimals, quantile_grid)
    return (
        f"{format_quantile(median, decimals, quantile_grid)} "
        f"({format_quantile(q1, decimals, quantile_grid)}, "
        f"{format_quantile(q3, decimals, quantile_grid)})"
    )


def format_rank_statistic(v: float | None) -> str:
    """Wilcoxon's V: a whole number, or a half when tied ranks were averaged."""
    if v is None:
        return UNDEFINED
    return format_number(v, 0) if float(v).is_integer() else format_number(v, 1)


def format_duration(value: float | None) -> str:
    """A time on the plan's grid (a median survival time or its limit, in months or days):
    a whole number, or one decimal when it is not (quantile.survfit's midpoint of two grid
    times is a half); "—" when undefined."""
    if value is None:
        return UNDEFINED
    return format_number(value, 0) if float(value).is_integer() else format_number(value, 1)


def parse_number(text: str) -> float:
    """The float a formatted number stands for (for reading the report back in tests)."""
    return float(text.replace(MINUS, "-").rstrip("%"))
