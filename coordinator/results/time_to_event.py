"""Time-to-event results from the pooled summary: Kaplan–Meier per stratum, the median,
numbers at risk and the log-rank test (docs/statistics.md, "Time to event").

Every statistic is computed from the pooled event and censoring histograms by
:mod:`sscjak.shared.statistics.survival` (equal to R ``survival``'s ``survfit`` and
``survdiff`` on the stacked rows); what is released follows the disclosure rules of
:mod:`sscjak.shared.disclosure`:

* a stratum with fewer patients than the minimum cell, or whose patients all come from
  one centre, is suppressed (its curve would be that centre's own);
* a curve is released only at the times where at least the minimum cell is at risk
  (the sparse tail is cut); a median or confidence limit beyond the released curve is
  withheld, and a number at risk below the minimum cell is not shown;
* when exactly one stratum with patients is suppressed, the smallest shown one is too
  (secondary suppression: the whole less the shown strata would give it);
* the log-rank test is released when at least two strata have patients; its observed
  and expected counts only for the strata that are shown.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sscjak.shared.data_contract import MONTH_IN_DAYS
from sscjak.shared.disclosure import (
    SECONDARY_SUPPRESSION_RULE,
    is_suppressed,
    secondary_suppressions,
    suppression_rule,
)
from sscjak.shared.plan import Plan
from sscjak.shared.statistics.survival import (
    kaplan_meier,
    log_rank_test,
    median_survival,
    number_at_risk,
)
from sscjak.shared.summary_layout import SummaryLayout, tte_segment

#: The rule that suppresses a stratum whose patients all come from one centre.
ONE_CENTRE_RULE = "patients from one centre only"

ENDPOINT_LABELS: dict[str, str] = {
    "drug_retention": "Drug retention (time to JAK inhibitor stop)",
    "developed_du": "Time to a new digital ulcer",
}


def endpoint_label(endpoint: str) -> str:
    """How an endpoint is named in results and reports."""
    return ENDPOINT_LABELS.get(endpoint, f"Time to the first {endpoint.replace('_', ' ')}")


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _stratum_result(
    stratum: str,
    events: np.ndarray,
    censored: np.ndarray,
    centres: int,
    plan: Plan,
    at_risk_grid: list[float],
) -> dict[str, Any]:
    n, n_events = int(events.sum() + censored.sum()), int(events.sum())
    row: dict[str, Any] = {"stratum": stratum, "n": n, "events": n_events, "centres": centres}
    if is_suppressed(n, plan.min_cell) or centres < 2:
        rule = suppression_rule(plan.min_cell) if n < plan.min_cell else ONE_CENTRE_RULE
        del row["events"]  # the stratum's size is the cohort's count; its events are not
        row.update(suppressed=True, suppression_rule=rule)
        return row
    curve = kaplan_meier(events, censored)
    median = median_survival(curve)
    shown = curve.n_risk >= plan.min_cell
    row["suppressed"] = False
    row["curve"] = {
        "time": curve.time[shown].astype(int).tolist(),
        "n_risk": curve.n_risk[shown].astype(int).tolist(),
        "n_event": curve.n_event[shown].astype(int).tolist(),
        "n_censor": curve.n_censor[shown].astype(int).tolist(),
        "surv": [float(v) for v in curve.surv[shown]],
        "std_err": [_finite(v) for v in curve.std_err[shown]],
        "lower": [_finite(v) for v in curve.lower[shown]],
        "upper": [_finite(v) for v in curve.upper[shown]],
    }
    # A median or limit beyond the released curve would tell what happens where fewer
    # than the minimum cell are at risk: it is withheld (None, named in "withheld").
    last_shown = int(curve.time[shown][-1]) if shown.any() else -1
    values = {"time": median.median, "lower": median.lower, "upper": median.upper}
    beyond = {k for k, v in values.items() if v is not None and v > last_shown}
    row["median"] = {k: None if k in beyond else _finite(v) for k, v in values.items()}
    row["median"]["withheld"] = sorted(beyond)
    risk = number_at_risk(events, censored, at_risk_grid, extend=True)
    row["at_risk"] = [
        {
            "months": months,
            "n_risk": int(count) if not is_suppressed(int(count), plan.min_cell) else None,
        }
        for months, count in zip(plan.at_risk_months, risk.n_risk, strict=True)
    ]
    return row


def _log_rank(
    events: dict[str, np.ndarray], censored: dict[str, np.ndarray], shown: set[str]
) -> dict[str, Any] | None:
    with_patients = [s for s in events if int(events[s].sum() + censored[s].sum()) > 0]
    if len(with_patients) < 2:
        return None
    try:
        test = log_rank_test(
            [events[s] for s in with_patients], [censored[s] for s in with_patients]
        )
    except ValueError:  # R's solve() stops: a singular variance matrix
        return None
    return {
        "strata": with_patients,
        "chisq": _finite(test.chisq),
        "df": int(test.df),
        "p_value": _finite(test.p_value),
        "observed": {
            s: float(o) for s, o in zip(with_patients, test.observed, strict=True) if s in shown
        },
        "expected": {
            s: float(x) for s, x in zip(with_patients, test.expected, strict=True) if s in shown
        },
    }


def time_to_event_results(layout: SummaryLayout, pooled: np.ndarray) -> list[dict[str, Any]]:
    """The ``time_to_event`` entries of the results file, one per endpoint of the plan."""
    plan = layout.plan
    centres = layout.counts(pooled, "strata")
    # at-risk times in months, on the grid: ceiling(months × month / grid)
    at_risk_grid = [
        float(math.ceil(months * MONTH_IN_DAYS / plan.time_grid)) for months in plan.at_risk_months
    ]
    results = []
    for endpoint in plan.time_to_event:
        events = {
            s: layout.view(pooled, tte_segment(endpoint, s, "events")).astype(np.int64)
            for s in plan.strata
        }
        censored = {
            s: layout.view(pooled, tte_segment(endpoint, s, "censored")).astype(np.int64)
            for s in plan.strata
        }
        strata = [
            _stratum_result(s, events[s], censored[s], centres[s], plan, at_risk_grid)
            for s in plan.strata
        ]
        for index in secondary_suppressions(
            [row["n"] for row in strata], [row["suppressed"] for row in strata]
        ):
            row = strata[index]
            strata[index] = {
                "stratum": row["stratum"],
                "n": row["n"],
                "centres": row["centres"],
                "suppressed": True,
                "suppression_rule": SECONDARY_SUPPRESSION_RULE,
            }
        shown = {row["stratum"] for row in strata if not row.get("suppressed", True)}
        results.append(
            {
                "endpoint": endpoint,
                "label": endpoint_label(endpoint),
                "by": plan.by,
                "time_grid_days": plan.time_grid_days,
                "horizon_months": plan.horizon_months,
                "left_out_missing_stratum": centres["missing"],
                "strata": strata,
                "log_rank": _log_rank(events, censored, shown) if plan.by else None,
            }
        )
    return results
