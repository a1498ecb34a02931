"""Where the numbers come from: the provenance list and a citable methods paragraph.

Both are written from the results dict alone: the plan (its text and SHA-256), the
software versions, the creation date, the number of centres and the suppression rule;
and, when the results hold results by stratum or time-to-event endpoints, how those were
estimated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sscjak.coordinator.report.tables import (
    SMC_LABELS,
    by_words,
    is_month_grid,
    min_cell,
    stratified_entry,
    time_to_event_entries,
)
from sscjak.shared.data_contract import DAYS_PER_MONTH
from sscjak.shared.disclosure import suppression_sentence


def report_title(results: Mapping[str, Any]) -> str:
    """The study's title from the plan, or a plain default."""
    plan = results.get("plan") or {}
    return str(plan.get("title") or "Pooled analysis of JAK inhibitors in systemic sclerosis")


def provenance_items(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs stating what produced the results."""
    software = results.get("software") or {}
    plan = results.get("plan") or {}
    months = plan.get("months")
    items = [
        ("Results schema", str(results.get("schema"))),
        ("Created", str(results.get("created", "not recorded"))),
        ("Centres (nodes) contributing", str(results.get("nodes"))),
        ("Plan SHA-256", str(results.get("plan_sha256"))),
        ("Outcomes", ", ".join(map(str, plan.get("outcomes") or [])) or "not recorded"),
        ("Time points", ", ".join(f"{m} months" for m in months) if months else "not recorded"),
        ("Window", f"±{float(plan.get('window_months', 2)):g} months"),
        (
            "Suppression rule",
            suppression_sentence(min_cell(results)),
        ),
        (
            "SMC reported",
            SMC_LABELS.get(str(plan.get("smc", "baseline")), str(plan.get("smc", "baseline"))),
        ),
    ]
    entries = time_to_event_entries(results)
    if entries:
        first = entries[0]
        strata = f" by {by_words(first)}" if first.get("by") else ""
        items.append(
            (
                "Time to event",
                f"{', '.join(str(e.get('endpoint')) for e in entries)}{strata}; grid "
                f"{float(first.get('time_grid_days', DAYS_PER_MONTH)):g} days; horizon "
                f"{first.get('horizon_months')} months",
            )
        )
    stratified = stratified_entry(results)
    if stratified is not None:
        items.append(
            (
                "Strata",
                f"by {stratified.get('by')}; {stratified.get('left_out_missing_stratum', 0)} "
                "patients without a value left out",
            )
        )
    if results.get("participants"):
        items.append(("Participating nodes", ", ".join(map(str, results["participants"]))))
    if results.get("attempts") is not None:
        items.append(
            (
                "Aggregation attempts",
                f"{results['attempts']} (a rerun follows a node that did not answer)",
            )
        )
    items += [(f"{name} version", str(version)) for name, version in software.items()]
    return items


def _aggregation_clause(results: Mapping[str, Any]) -> str:
    """How the centres' vectors were combined, as far as the results record it."""
    if results.get("participants"):
        return (
            "the coordinating centre combined these vectors by secure aggregation "
            "(pairwise masking) and saw only their sum."
        )
    return "these vectors were summed."


def time_to_event_sentence(results: Mapping[str, Any]) -> str:
    """The methods' sentence on time to event; "" when the results hold none."""
    entries = time_to_event_entries(results)
    if not entries:
        return ""
    first = entries[0]
    minimum = min_cell(results)
    labels = [str(e.get("label") or e.get("endpoint")) for e in entries]
    labels = [label[:1].lower() + label[1:] if label[1:2].islower() else label for label in labels]
    named = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
    grid = float(first.get("time_grid_days", DAYS_PER_MONTH))
    unit = f"a month of {DAYS_PER_MONTH:g} days" if is_month_grid(first) else f"{grid:g} days"
    strata = f" by {by_words(first)}" if first.get("by") else ""
    endpoints = "endpoint" if len(labels) == 1 else "endpoints"
    return (
        f" The time-to-event {endpoints}, {named}, {'was' if len(labels) == 1 else 'were'} "
        f"analysed{strata} with time measured from JAK inhibitor initiation on the plan's "
        f"time grid ({unit}) and administrative censoring at "
        f"{first.get('horizon_months')} months; from the pooled histograms of event and "
        "censoring times, survival was estimated by the Kaplan–Meier method with Greenwood "
        "standard errors and log-transformed 95% confidence intervals, as R survival's "
        "survfit, the median time with its 95% confidence interval as quantile.survfit, "
        "and strata compared by the log-rank test as survdiff; curves are shown only while "
        f"at least {minimum} patients remain at risk, and strata of fewer than {minimum} "
        "patients or of one centre only are suppressed."
    )


def strata_sentence(results: Mapping[str, Any]) -> str:
    """The methods' sentence on the results by stratum; "" when the results hold none."""
    stratified = stratified_entry(results)
    if stratified is None:
        return ""
    minimum = min_cell(results)
    return (
        f" Change from baseline and incidence rates were also computed within each stratum of "
        f"{by_words(stratified)} (patients without a recorded value were left out) with the "
        "same methods, and the changes of the strata compared by the Kruskal–Wallis test "
        "and, with two strata, the Wilcoxon rank-sum test, as R's kruskal.test and "
        "wilcox.test; a stratum's rates and its change cells were suppressed when they "
        f"held fewer than {minimum} patients or patients of one centre only."
    )


def methods_paragraph(results: Mapping[str, Any]) -> str:
    """One paragraph a manuscript's statistical-methods section can cite as it stands."""
    plan = results.get("plan") or {}
    software = results.get("software") or {}
    months = plan.get("months") or [12, 24]
    when = " and ".join(str(m) for m in months)
    window = f"{float(plan.get('window_months', 2)):g}"
    minimum = min_cell(results)
    smc_kind = str(plan.get("smc", "baseline"))
    smc_text = (
        "the mean change divided by the standard deviation of the baseline values "
        "(standardized mean change, Becker 1988), with a 95% confidence interval from its "
        "large-sample variance 2(1 − r)/n + SMC²/(2n), r being the correlation of baseline "
        "and follow-up values"
        if smc_kind == "baseline"
        else "the mean change divided by the standard deviation of the changes (d_z), with "
        "a 95% confidence interval from its large-sample variance 1/n + SMC²/(2n)"
    )
    versions = f"sscjak {software.get('sscjak', '(version not recorded)')}"
    if software.get("flwr"):
        versions += f" on Flower {software['flwr']}"
    return (
        f"Data from {results.get('nodes')} centres were analysed by federated analysis "
        f"({versions}): no patient-level data left any centre. Each centre derived, on its "
        "own premises, each patient's change from baseline (the value closest to JAK "
        "inhibitor initiation within 90 days before to 14 days after it) to the value "
        f"closest to {when} months (within ±{window} months, on treatment), rounded to "
        "the measure's recording resolution, and released only a fixed-layout vector of "
        "integer summaries (counts, exact sums and histograms of the changes on the "
        f"recording grid); {_aggregation_clause(results)} Pooled statistics computed from "
        "the summed vector equal those computed on the stacked patient-level data. "
        "Quantiles follow "
        "R's default (type 7; Hyndman and Fan 1996). Paired changes were tested with the "
        "two-sided Wilcoxon signed-rank test (Wilcoxon 1945) as implemented in R's "
        "wilcox.test: zero changes dropped, an exact p value with fewer than 50 non-zero "
        "changes and no ties, otherwise the normal approximation with tie and continuity "
        f"corrections. Effect sizes are {smc_text}. Incidence rates are events per 100 "
        "patient-years on treatment with exact Poisson 95% confidence intervals (Garwood "
        "1936); recurrent events were counted. Glucocorticoid dose change was analysed "
        "among patients on glucocorticoids (dose > 0) at baseline. Follow-up on treatment "
        "ran from JAK inhibitor initiation to its stop or the last contact (a month being "
        f"{DAYS_PER_MONTH:g} days). To protect patients, results for cells of fewer than "
        f"{minimum} patients "
        f"were suppressed and histogram bins merged so that no bar shows fewer than "
        f"{minimum} patients.{strata_sentence(results)}{time_to_event_sentence(results)}"
    )
