"""Time to event from pooled histograms: Kaplan–Meier, median survival, log-rank test.

Follow-up in whole days is put on a grid as ``ceiling(days / grid_days)`` (one month =
30.4375 days by default, or days with ``grid_days = 1``). Per stratum a node sends two
histograms over grid time 0 … T: how many patients have an event at grid time t and how
many are censored there. The pooled histograms are sums over centres, and everything
here is a function of them only: the stacked patient rows (t, e) are never rebuilt.

What R ``survival`` (3.x, ``Surv(t, e)`` with integer t) gives on the stacked rows:

* :func:`kaplan_meier` — ``survfit(Surv(t, e) ~ 1)`` with its defaults (one curve; a
  ``~ stratum`` fit is the same curve per stratum): Kaplan & Meier (1958), Greenwood
  (1926) standard error, ``conf.type = "log"`` interval (R's ``survfitKM.R``,
  ``src/survfitkm.c`` and ``survfit_confint`` in ``survfit.R``).
* :func:`survival_quantile` / :func:`median_survival` — ``quantile(fit, probs)`` of R's
  ``quantile.survfit.R`` (``findq``), or with ``rule = "print"`` the median and its
  limits that ``print(fit)`` shows (``survmean``'s ``minmin`` in ``print.survfit.R``).
* :func:`number_at_risk` — ``summary(fit, times = ...)$n.risk`` (``summary.survfit.R``).
* :func:`log_rank_test` — ``survdiff(Surv(t, e) ~ group)`` with rho = 0 (Mantel 1966;
  Peto & Peto 1972; R's ``survdiff.R``, ``survdiff.fit.R``, ``src/survdiff2.c``).
* :func:`grid_time` — the exact ``ceiling(days / grid_days)`` that builds the histograms.

Checked against R 4.2.2 with survival 3.5-3 (tests/shared/test_statistics_survival.py);
the rules read from survival's sources agree with its 2026 development version except
that ``summary(fit, times)`` there no longer stops when no requested time is kept.
No I/O, no pandas, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Literal

import numpy as np

from sscjak.shared.data_contract import MONTH_IN_DAYS

#: One month in days (365.25 / 12 = 487/16, exact in binary floating point).
MONTH_DAYS = MONTH_IN_DAYS
#: ``sqrt(.Machine$double.eps)``, the tolerance of ``quantile.survfit`` and ``survmean``.
R_QUANTILE_TOLERANCE = math.sqrt(2.0**-52)

HistogramLike = Sequence[int] | np.ndarray


# --------------------------------------------------------------------------- grid time


def _exact_fraction(value: int | float | Fraction | str) -> Fraction:
    if isinstance(value, bool):
        raise ValueError(f"grid_days must be a positive number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"grid_days must be a positive number, got {value!r}")
        # The shortest decimal that round-trips: 30.4375 -> 487/16, 30.44 -> 761/25.
        return Fraction(repr(value))
    return Fraction(value)


def grid_time(
    days: int | Sequence[int] | np.ndarray, grid_days: int | float | Fraction | str = MONTH_DAYS
) -> int | np.ndarray:
    """``ceiling(days / grid_days)`` in exact rational arithmetic.

    ``grid_days`` is read as an exact fraction (a float through its shortest decimal
    representation, so 30.4375 is 487/16 and 30.4375·k days map to exactly k). Days must
    be non-negative integers; 0 days is grid time 0. A scalar gives an ``int``, an array
    or sequence an int64 array of the same shape.
    """
    step = _exact_fraction(grid_days)
    if step <= 0:
        raise ValueError(f"grid_days must be a positive number, got {grid_days!r}")
    array = np.asarray(days)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_
    ):
        raise ValueError(f"days must be whole numbers of days, got dtype {array.dtype}")
    if array.dtype == np.bool_:
        raise ValueError("days must be whole numbers of days, got booleans")
    if np.any(array < 0):
        raise ValueError("days must be >= 0")
    p, q = step.numerator, step.denominator
    # ceiling(d / (p/q)) = ceiling(d·q / p) = −floor(−d·q / p), in Python integers.
    flat = [-((-int(d) * q) // p) for d in array.ravel()]
    if array.ndim == 0:
        return flat[0]
    return np.asarray(flat, dtype=np.int64).reshape(array.shape)


def on_time_grid(
    days: np.ndarray, event: np.ndarray, grid_days: int | float | Fraction | str, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Times on the grid and event flags, administratively censored at ``horizon``.

    ``t = ceiling(days / grid_days)`` (:func:`grid_time`); a time beyond ``horizon`` (in
    grid units) becomes ``horizon`` and is censored there, as R's
    ``Surv(pmin(t, H), e & t <= H)``. Curves up to the horizon equal R's on the raw times;
    the log-rank test equals R's on the censored times.
    """
    t = np.asarray(grid_time(np.asarray(days, dtype=np.int64), grid_days), dtype=np.int64)
    e = np.asarray(event, dtype=bool) & (t <= horizon)
    return np.minimum(t, horizon), e


# ------------------------------------------------------------------------ histograms


def _check_histogram(name: str, values: HistogramLike) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional histogram over grid time")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer counts, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if np.any(array < 0):
        raise ValueError(f"{name} counts must be >= 0")
    return array


def _check_pair(events: HistogramLike, censored: HistogramLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate one stratum's event and censoring histograms; pad them to one length."""
    e = _check_histogram("events", events)
    c = _check_histogram("censored", censored)
    length = max(e.size, c.size)
    e = np.pad(e, (0, length - e.size))
    c = np.pad(c, (0, length - c.size))
    return e, c


def _at_risk(total: np.ndarray) -> np.ndarray:
    """Number with grid time ≥ t for every t: the reversed cumulative sum."""
    return np.cumsum(total[::-1])[::-1]


# ---------------------------------------------------------------------- Kaplan–Meier


@dataclass(frozen=True)
class KaplanMeierCurve:
    """One curve of R's ``survfit(Surv(t, e) ~ 1)`` (defaults), from the histograms.

    One entry per distinct grid time with an event or a censoring, ascending, as R's
    ``fit$time`` (R lists censoring-only times too).

    Attributes
    ----------
    n:
        Number of patients (``fit$n``).
    time, n_risk, n_event, n_censor:
        ``fit$time``, ``fit$n.risk``, ``fit$n.event``, ``fit$n.censor`` (int64).
    surv:
        Kaplan–Meier estimate Π (1 − d/n) over event times ≤ t (``fit$surv``).
    std_err:
        ``fit$std.err``: the Greenwood standard error of log S, sqrt(Σ d / (n(n − d)))
        (R's survfit keeps the log scale; ``summary(fit)$std.err`` is
        :attr:`std_err_surv`). ``inf`` at the time the curve drops to 0, as in R
        (d = n divides by zero).
    lower, upper:
        ``fit$lower``, ``fit$upper`` with ``conf.type = "log"``; NaN where R has NA
        (after the curve reaches 0).
    conf_int:
        The level of the interval (``fit$conf.int``).
    """

    n: int
    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray
    std_err: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    conf_int: float = 0.95

    @property
    def std_err_surv(self) -> np.ndarray:
        """Standard error of S itself, ``summary(fit)$std.err`` = surv × std.err.

        R multiplies in floating point, so at S = 0 this is 0 × ∞ = NaN (R prints NaN).
        """
        with np.errstate(invalid="ignore"):
            return self.surv * self.std_err

    @property
    def n_events_total(self) -> int:
        return int(self.n_event.sum())


def log_confidence_interval(
    surv: np.ndarray, std_err: np.ndarray, conf_int: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """R's ``survfit_confint(p, se, logse = TRUE, conf.type = "log", conf.int)``.

    exp(log S ∓ z·se), the upper limit capped at 1 (``ulimit = TRUE``), with
    z = ``qnorm(1 − (1 − conf.int)/2)`` (Wichura's AS 241 both in R and in Python's
    ``statistics.NormalDist``). Where se = 0 both limits are S; where S = 0 (and se ≠ 0)
    both are NA, returned as NaN — R's choice, "the CI curve doesn't dive to zero".
    """
    if not 0.0 < conf_int < 1.0:
        raise ValueError(f"conf_int must lie strictly between 0 and 1, got {conf_int}")
    z = NormalDist().inv_cdf(1.0 - (1.0 - conf_int) / 2.0)
    surv = np.asarray(surv, dtype=np.float64)
    std_err = np.asarray(std_err, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.log(np.where(surv == 0, np.nan, surv))
        half_width = z * std_err
        lower = np.where(std_err == 0, surv, np.exp(log_s - half_width))
        upper = np.where(std_err == 0, surv, np.exp(log_s + half_width))
    # pmin(temp2, 1) keeps NA: np.fmin would drop it, np.minimum keeps NaN.
    return lower, np.minimum(upper, 1.0)


def kaplan_meier(
    events: HistogramLike, censored: HistogramLike, conf_int: float = 0.95
) -> KaplanMeierCurve:
    """Kaplan–Meier curve of one stratum, as R's ``survfit(Surv(t, e) ~ 1)``.

    Parameters
    ----------
    events, censored:
        Pooled histograms over grid time 0 … T: ``events[t]`` patients had the event at
        grid time t, ``censored[t]`` were censored there (non-negative integers; the two
        may differ in length, the shorter is padded with zeros).
    conf_int:
        Level of the pointwise interval (R's ``conf.int``, default 0.95).

    Notes
    -----
    Kaplan & Meier (1958, JASA 53:457-481); variance of Greenwood (1926, "The natural
    duration of cancer", Rep. Public Health Med. Subj. 33). Computed as R's
    ``src/survfitkm.c`` does (unweighted, type 1): at each listed time, with n at risk
    (all with t_i ≥ t; ties of events and censorings at t count as at risk, the events
    first) and d events, ``km *= (n − d)/n`` and ``v += d/(n(n − d))`` when d > 0, in
    the same order of floating-point operations; ``std.err = sqrt(v)``. The interval is
    :func:`log_confidence_interval`. With no patients R refuses to fit; here the curve
    is empty (``n = 0``, zero-length arrays).
    """
    e, c = _check_pair(events, censored)
    total = e + c
    at_risk = _at_risk(total)
    time = np.flatnonzero(total > 0).astype(np.int64)
    n_risk = at_risk[time].astype(np.int64)
    n_event = e[time]
    n_censor = c[time]
    d = n_event.astype(np.float64)
    n = n_risk.astype(np.float64)
    has_event = n_event > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(has_event, (n - d) / n, 1.0)
        increment = np.where(has_event, d / (n * (n - d)), 0.0)
    surv = np.cumprod(factor)
    std_err = np.sqrt(np.cumsum(increment))
    lower, upper = log_confidence_interval(surv, std_err, conf_int)
    return KaplanMeierCurve(
        n=int(total.sum()),
        time=time,
        n_risk=n_risk,
        n_event=n_event,
        n_censor=n_censor,
        surv=surv,
        std_err=std_err,
        lower=lower,
        upper=upper,
        conf_int=conf_int,
    )


# ------------------------------------------------------------------------- quantiles


@dataclass(frozen=True)
class SurvivalQuantile:
    """A quantile of survival time and its confidence limits, in grid units.

    ``time`` is where the curve crosses 1 − ``prob``; ``lower`` and ``upper`` are where
    the lower and upper pointwise confidence curves cross it. ``None`` where R gives NA
    (the curve, or that confidence curve, never gets down to 1 − prob).
    """

    prob: float
    time: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class MedianSurvival:
    """Median survival time and its confidence interval, in grid units (None = NA).

    ``n`` and ``events`` are the ``n`` and ``events`` columns of ``print(fit)``.
    """

    median: float | None
    lower: float | None
    upper: float | None
    n: int
    events: int
    conf_int: float


def _approx_constant_right(x: np.ndarray, index: np.ndarray, v: float) -> float:
    """R's ``approx(x, index, v, method = "constant", f = 1)$y`` (rule 1, ties = mean).

    As R's ``regularize.values`` and C ``approx1``: pairs with NA x are dropped, the
    pairs are sorted by x, tied x values get the mean index; outside [min x, max x] the
    result is NA (NaN); at v = x_j the result is index_j, strictly inside (x_i, x_j) it
    is index_j (f = 1).
    """
    keep = ~np.isnan(x)
    x, index = x[keep], index[keep]
    order = np.argsort(x, kind="stable")
    x, index = x[order], index[order]
    unique_x, start = np.unique(x, return_index=True)
    sums = np.add.reduceat(index, start)
    counts = np.diff(np.append(start, x.size))
    y = sums / counts
    if unique_x.size == 0 or v < unique_x[0] or v > unique_x[-1]:
        return math.nan
    j = int(np.searchsorted(unique_x, v, side="left"))
    return float(y[j])


def _findq(x: np.ndarray, y: np.ndarray, p: float, tol: float) -> float | None:
    """``findq`` of R's ``quantile.survfit.R``: where 1 − S crosses p, flats averaged.

    x: times with the start time (0) in front; y: 1 − S (or 1 − a confidence curve)
    with 0 in front, NaN for NA.
    """
    if not np.any(~np.isnan(y)) or np.nanmax(y) < p:
        return None
    xmax = x[-1]
    # duplicated(y) keeps the first of each value; NA counts as a value of its own.
    _, first = np.unique(np.where(np.isnan(y), np.inf, y), return_index=True)
    keep = np.sort(first)
    x, y = x[keep], y[keep]
    n = y.size
    index = np.arange(1, n + 1, dtype=np.float64)
    index1 = _approx_constant_right(y + tol, index, p)
    index2 = _approx_constant_right(y - tol, index, p)

    def at(position: float) -> float:
        # R subscripts x[position]: NA stays NA, a fractional index is truncated.
        return math.nan if math.isnan(position) else float(x[int(position) - 1])

    quant = (at(index1) + at(index2)) / 2
    if p == 0:
        quant = float(x[0])
    if not math.isnan(y[-1]) and abs(p - y[-1]) < tol:
        quant = (at(index1) + float(xmax)) / 2
    return None if math.isnan(quant) else quant


def _minmin(y: np.ndarray, x: np.ndarray, tol: float) -> float | None:
    """``minmin`` of R's ``survmean`` (``print.survfit.R``): first x with y < 0.5.

    The first time with y < 0.5 + tol; if that y is 0.5 (within tol) and a later y is
    smaller, the midpoint of that time and the first time with a smaller y.
    """
    keep = ~np.isnan(y) & (y < 0.5 + tol)
    if not np.any(keep):
        return None
    x, y = x[keep], y[keep]
    if abs(y[0] - 0.5) < tol and np.any(y < y[0]):
        return (float(x[0]) + float(x[int(np.argmax(y < y[0]))])) / 2
    return float(x[0])


def survival_quantile(
    curve: KaplanMeierCurve, prob: float = 0.5, tolerance: float = R_QUANTILE_TOLERANCE
) -> SurvivalQuantile:
    """``quantile(fit, probs = prob)`` of R's ``quantile.survfit`` (one curve).

    R's rule (``findq``): the p-quantile is the first time at which 1 − S ≥ p (i.e.
    S ≤ 1 − p), comparisons with tolerance ``sqrt(.Machine$double.eps)``. When S equals
    1 − p (within the tolerance) over a stretch, the quantile is the midpoint of the time
    it got there and the next event time (the time S drops below); when that stretch is
    the end of the curve, the midpoint of the time it got there and the last time of the
    curve (its last censoring). NA (``None``) when S never reaches 1 − p. The
    limits apply the same rule to the lower and upper curves of the pointwise interval
    (``fit$lower`` gives the lower limit). R finds the crossing with
    ``approx(1 − curve ± tol, index, p, method = "constant", f = 1)``, which sorts the
    curve values first: for an upper curve that is not monotone (an event can raise
    exp(log S + z·se) when few are at risk) this is the index whose value is the
    smallest one ≥ p, not necessarily the first such time. This is reproduced.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must lie in [0, 1], got {prob}")
    if curve.time.size == 0:
        return SurvivalQuantile(prob, None, None, None)
    x = np.concatenate([[0.0], curve.time.astype(np.float64)])

    def crossing(values: np.ndarray) -> float | None:
        return _findq(x, np.concatenate([[0.0], 1.0 - values]), prob, tolerance)

    return SurvivalQuantile(
        prob, crossing(curve.surv), crossing(curve.lower), crossing(curve.upper)
    )


def median_survival(
    curve: KaplanMeierCurve,
    rule: Literal["quantile", "print"] = "quantile",
    tolerance: float = R_QUANTILE_TOLERANCE,
) -> MedianSurvival:
    """Median survival and its CI (grid units) of one Kaplan–Meier curve.

    ``rule = "quantile"`` (default): ``quantile(fit, 0.5)`` of R's ``quantile.survfit``
    (:func:`survival_quantile`). ``rule = "print"``: the ``median``, ``0.95LCL`` and
    ``0.95UCL`` columns of ``print(fit)`` / ``summary(fit)$table`` (R's ``survmean`` with
    its ``minmin``): the first time with S < 0.5 + tol; if S there is 0.5 (within tol)
    and S drops later, the midpoint of that time and the first time with a smaller S.
    The two rules differ only when S stays at exactly 0.5 until the end of the curve
    (``quantile`` takes the midpoint with the last time, ``print`` the time S reached
    0.5) and, for the limits, when a confidence curve is not monotone around 0.5.
    """
    if rule == "quantile":
        q = survival_quantile(curve, 0.5, tolerance)
        median, lower, upper = q.time, q.lower, q.upper
    elif rule == "print":
        time = curve.time.astype(np.float64)
        median = _minmin(curve.surv, time, tolerance)
        lower = _minmin(curve.lower, time, tolerance)
        upper = _minmin(curve.upper, time, tolerance)
    else:
        raise ValueError(f"rule must be 'quantile' or 'print', got {rule!r}")
    return MedianSurvival(median, lower, upper, curve.n, curve.n_events_total, curve.conf_int)


# -------------------------------------------------------------------- numbers at risk


@dataclass(frozen=True)
class NumberAtRisk:
    """``summary(fit, times = ...)``'s ``time`` and ``n.risk`` for one curve.

    ``time`` holds the requested times R keeps (with ``extend = FALSE`` those after the
    last observed time are dropped), ``n_risk`` the number at risk at each.
    """

    time: np.ndarray
    n_risk: np.ndarray


def number_at_risk(
    events: HistogramLike,
    censored: HistogramLike,
    times: Sequence[float] | np.ndarray,
    extend: bool = False,
) -> NumberAtRisk:
    """Numbers at risk at chosen times, as R's ``summary(fit, times, extend)$n.risk``.

    R (``summary.survfit.R``, ``findrow`` on ``survfit0(fit)``) takes the ``n.risk`` of
    the first curve time ≥ t, i.e. the number of patients with grid time ≥ t (at t ≤ 0
    everybody: ``survfit0`` adds a time-0 row with the first ``n.risk``). Times after
    the last observed time are dropped unless ``extend = TRUE``, and then get 0 ("the
    number at risk after the last observed time must be 0"). Times are kept in the
    order given, duplicates included. R 4.2 / survival 3.5 stops ("no points selected
    for one or more curves") when no requested time is kept, and refuses to fit a curve
    without patients; here the result is then empty (or all 0 with ``extend``).
    """
    e, c = _check_pair(events, censored)
    total = e + c
    requested = np.asarray(times, dtype=np.float64)
    if requested.ndim != 1 or np.any(np.isnan(requested)):
        raise ValueError("times must be a one-dimensional sequence of numbers, no NaN")
    if requested.size == 0:
        raise ValueError("no values in times vector")
    observed = np.flatnonzero(total > 0)
    if not extend:
        last = int(observed[-1]) if observed.size else -math.inf
        requested = requested[requested <= last]
    at_risk = np.append(_at_risk(total), 0)
    # first grid index ≥ t, clipped to [0, T + 1] (T + 1 holds the 0 after the end)
    first = np.clip(np.ceil(requested), 0, total.size).astype(np.int64)
    return NumberAtRisk(time=requested, n_risk=at_risk[first].astype(np.int64))


# --------------------------------------------------------------------- log-rank test


@dataclass(frozen=True)
class LogRankResult:
    """R's ``survdiff(Surv(t, e) ~ group)`` (rho = 0), one entry per input group.

    Attributes
    ----------
    n:
        Patients per group (``fit$n``; R has no entry for a group without patients, here
        it is 0 in every array).
    observed, expected:
        Observed events and their expectation under H0 per group (``fit$obs``,
        ``fit$exp``).
    variance:
        ``fit$var``, the variance matrix of O − E (rows sum to 0).
    chisq:
        (O − E)' V⁻ (O − E), R's ``fit$chisq``.
    df:
        Number of groups with expected > 0, minus 1.
    p_value:
        ``pchisq(chisq, df, lower.tail = FALSE)``: 1 when df = 0 (events in one group
        only: R's χ² is 0 and ``pchisq(0, 0, lower.tail = FALSE)`` is 1); ``None``
        where R gives NaN (df = −1, no event at all).
    """

    n: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    variance: np.ndarray
    chisq: float
    df: int
    p_value: float | None


def _stack_groups(
    events: Sequence[HistogramLike] | np.ndarray, censored: Sequence[HistogramLike] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if len(events) != len(censored):
        raise ValueError(
            f"events and censored must list the same groups, got {len(events)} and {len(censored)}"
        )
    pairs = [_check_pair(e, c) for e, c in zip(events, censored, strict=True)]
    length = max((e.size for e, _ in pairs), default=0)
    e = np.zeros((len(pairs), length), dtype=np.int64)
    c = np.zeros((len(pairs), length), dtype=np.int64)
    for k, (ek, ck) in enumerate(pairs):
        e[k, : ek.size] = ek
        c[k, : ck.size] = ck
    return e, c


def _r_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """R's ``solve(a, b)`` (``La_solve`` in R's ``src/modules/lapack/Lapack.c``).

    LAPACK ``dgesv``; R stops when a pivot is exactly 0 ("system is exactly singular")
    or when the reciprocal condition number in the 1-norm (``dgecon``) is below
    ``tol = .Machine$double.eps`` ("system is computationally singular"). Both are a
    ``ValueError`` here: survdiff's reduced variance matrix is singular when the groups
    split into sets that never share an informative event time (e.g. every event at a
    time where all patients at risk die).
    """
    from scipy.linalg import lapack  # imported when used: a node needs only the time grid

    a = np.array(a, dtype=np.float64, order="F")
    lu, _, x, info = lapack.dgesv(a, np.array(b, dtype=np.float64))
    if info > 0:
        raise ValueError(
            f"survdiff's variance matrix is exactly singular (dgesv: U[{info},{info}] = 0)"
        )
    anorm = lapack.dlange("1", a)
    rcond, _ = lapack.dgecon(lu, anorm, norm="1")
    if rcond < np.finfo(np.float64).eps:
        raise ValueError(
            "survdiff's variance matrix is computationally singular: reciprocal condition "
            f"number = {rcond:g}"
        )
    return np.asarray(x)


def log_rank_test(
    events: Sequence[HistogramLike] | np.ndarray, censored: Sequence[HistogramLike] | np.ndarray
) -> LogRankResult:
    """Log-rank test of equal survival across groups, as R's ``survdiff`` (rho = 0).

    Parameters
    ----------
    events, censored:
        One histogram per group over grid time 0 … T (a 2-D array groups × time or a
        list of 1-D histograms), groups in the order of R's factor levels.

    Notes
    -----
    Mantel (1966, Cancer Chemother. Rep. 50:163-170); Peto & Peto (1972, JRSS A
    135:185-207). As R's ``src/survdiff2.c`` with rho = 0: going down from the last
    time, at each event time with d events among N at risk (r_k in group k),
    E_k += d·r_k/N and, if N > 1, with a_j = d·r_j(N − d)/(N(N − 1)),
    V[j, j] += a_j and V[k, j] −= a_j·r_k/N for every k (same operation order). Then,
    as ``survdiff.R``: groups with E_k = 0 are left out, the first remaining one is
    dropped and χ² = (O − E)' V⁻¹ (O − E) over the others (:func:`_r_solve`, R's
    ``solve``), df = (number of groups with E_k > 0) − 1, and χ² = 0 when fewer than 2
    groups remain. Where R's ``solve`` stops on a singular matrix, this raises
    ``ValueError``.
    Groups without patients are not levels in R; they are left out here too. Fewer
    than two groups with patients is an error, as in R ("There is only 1 group").
    """
    e, c = _stack_groups(events, censored)
    total = e + c
    n_group = total.sum(axis=1)
    if int(np.count_nonzero(n_group)) < 2:
        raise ValueError("the log-rank test needs at least 2 groups with patients")
    n_groups = e.shape[0]
    risk = np.cumsum(total[:, ::-1], axis=1)[:, ::-1].astype(np.float64)  # r_k(t)
    deaths_all = e.sum(axis=0)
    risk_all = risk.sum(axis=0)
    expected = [0.0] * n_groups
    var = np.zeros((n_groups, n_groups))
    for t in np.flatnonzero(deaths_all > 0)[::-1]:
        deaths = float(deaths_all[t])
        nrisk = float(risk_all[t])
        r = risk[:, t]
        for k in range(n_groups):
            expected[k] += deaths * r[k] / nrisk
        if nrisk == 1:
            continue
        for j in range(n_groups):
            tmp = deaths * r[j] * (nrisk - deaths) / (nrisk * (nrisk - 1))
            var[j, j] += tmp
            var[:, j] -= tmp * r / nrisk
    observed = e.sum(axis=1)
    expected_array = np.asarray(expected)
    keep = expected_array > 0
    df = int(np.count_nonzero(keep)) - 1
    if df < 1:
        chisq = 0.0
    else:
        diff = (observed - expected_array)[keep][1:]
        vv = var[np.ix_(keep, keep)][1:, 1:]
        chisq = math.fsum(_r_solve(vv, diff) * diff)
    if df < 0:
        p_value = None  # pchisq(0, -1): NaN with a warning
    elif df == 0:
        p_value = 1.0  # pchisq(0, 0, lower.tail = FALSE) is 1 in R
    else:
        from scipy import stats  # imported when used, as above

        p_value = float(stats.chi2.sf(chisq, df))
    return LogRankResult(
        n=n_group,
        observed=observed,
        expected=expected_array,
        variance=var,
        chisq=float(chisq),
        df=df,
        p_value=p_value,
    )
