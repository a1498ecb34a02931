"""Incidence rates with exact Poisson confidence intervals.

The exact interval of Garwood (1936, "Fiducial limits for the Poisson distribution",
Biometrika 28:437-442) in its chi-square / gamma form, which is what R's
``poisson.test(x, T)$conf.int`` returns: lower = qgamma(α/2, x) / T (0 when x = 0),
upper = qgamma(1 − α/2, x + 1) / T, with α = 1 − level. qgamma(p, k) equals
qchisq(p, 2k)/2.
"""

from __future__ import annotations

import math
import operator

from scipy import stats


def _check(events: int, exposure: float, level: float) -> int:
    if isinstance(events, bool):
        raise ValueError(f"events must be a non-negative integer, got {events!r}")
    try:
        events = operator.index(events)
    except TypeError:
        raise ValueError(f"events must be a non-negative integer, got {events!r}") from None
    if events < 0:
        raise ValueError(f"events must be a non-negative integer, got {events}")
    if not (math.isfinite(exposure) and exposure > 0):
        raise ValueError(f"exposure must be a positive number of person-time, got {exposure}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    return events


def poisson_rate_ci(events: int, exposure: float, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood 1936) confidence interval of a Poisson rate, events per unit exposure.

    Equals R's ``poisson.test(events, exposure, conf.level = level)$conf.int``.
    """
    events = _check(events, exposure, level)
    alpha = 1.0 - level
    lower = 0.0 if events == 0 else float(stats.gamma.ppf(alpha / 2.0, events))
    upper = float(stats.gamma.ppf(1.0 - alpha / 2.0, events + 1))
    return (lower / exposure, upper / exposure)


def rate_per_100_patient_years(
    events: int, patient_years: float, level: float = 0.95
) -> tuple[float, tuple[float, float]]:
    """Incidence rate per 100 patient-years and its exact CI.

    Events and patient-years as in docs/derivation.md, the interval as in docs/statistics.md.

    rate = 100 × events / patient-years; the CI is :func:`poisson_rate_ci` scaled by 100.
    """
    events = _check(events, patient_years, level)
    lower, upper = poisson_rate_ci(events, patient_years, level)
    return (100.0 * events / patient_years, (100.0 * lower, 100.0 * upper))
