"""The pooled results as a plain-text table for the statistician's terminal."""

from __future__ import annotations

from typing import Any

from sscjak.shared.data_contract import DAYS_PER_MONTH, JAKI_DRUGS


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _p_value(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _interval(low: float | None, high: float | None, digits: int) -> str:
    return f"{_number(low, digits)}, {_number(high, digits)}"


def _change_line(row: dict[str, Any]) -> str:
    head = f"{row['label']:<24}{row['months']:>6}"
    if row["suppressed"]:
        return f"{head}   suppressed ({row['suppression_rule']})"
    ci = row["smc_ci"] or [None, None]
    mean_sd = f"{_number(row['mean_change'], 2)} ({_number(row['sd_change'], 2)})"
    median_iqr = (
        f"{_number(row['median_change'], 2)} [{_interval(row['q1_change'], row['q3_change'], 2)}]"
    )
    smc = f"{_number(row['smc'], 2)} ({_interval(ci[0], ci[1], 2)})"
    return (
        f"{head}{row['n']:>6}{mean_sd:>18}{median_iqr:>22}{smc:>22}"
        f"{_number(row['V'], 1):>9}{_p_value(row['p_value']):>8}  {row['p_method'] or '—'}"
    )


def format_results_table(results: dict[str, Any]) -> str:
    """Cohort line, one line per change cell, calcinosis/DU/GC lines, safety table; then
    the time-to-event endpoints and the heterogeneity between centres, when present."""
    cohort = results["cohort"]
    followup = cohort["followup_months"]
    drugs = ", ".join(f"{d} {cohort['drugs'][d]}" for d in JAKI_DRUGS if cohort["drugs"][d])
    lines = [
        f"Pooled analysis: {cohort['patients']} patients from {results['nodes']} centres "
        f"(plan {results['plan_sha256'][:12]})",
        f"Follow-up on treatment: median {_number(followup['median'], 1)} months "
        f"(IQR {_interval(followup['q1'], followup['q3'], 1)}), "
        f"{cohort['patient_years']:.1f} patient-years",
        f"JAK inhibitors: {drugs or 'none'}",
        "",
        f"{'Outcome':<24}{'Month':>6}{'n':>6}{'Mean Δ (SD)':>18}{'Median Δ [IQR]':>22}"
        f"{'SMC (95% CI)':>22}{'V':>9}{'p':>8}  method",
    ]
    lines += [_change_line(row) for row in results["changes"]]
    calcinosis = results["calcinosis"]
    lines += [
        "",
        f"Calcinosis improved: {calcinosis['improved']} of {calcinosis['baseline_present']} "
        "patients with calcinosis at baseline",
        f"Developed digital ulcers: {results['digital_ulcers']['patients']} patients",
        f"On glucocorticoids at baseline: {results['glucocorticoids']['baseline_on_gc']} patients",
        "",
        f"{'Adverse event':<20}{'Events':>8}{'Patients':>10}  Rate per 100 PY (95% CI)",
    ]
    for row in results["safety"]:
        ci = row["ci"] or [None, None]
        rate = f"{_number(row['rate_per_100py'], 1)} ({_interval(ci[0], ci[1], 1)})"
        lines.append(f"{row['event_type']:<20}{row['events']:>8}{row['patients']:>10}  {rate}")
    for entry in results.get("time_to_event") or []:
        lines += ["", *_time_to_event_lines(entry)]
    if results.get("heterogeneity"):
        lines += ["", *_heterogeneity_lines(results["heterogeneity"])]
    return "\n".join(lines)


def _time_unit(entry: dict[str, Any]) -> str:
    grid = float(entry["time_grid_days"])
    return "months" if grid == DAYS_PER_MONTH else "days" if grid == 1 else f"× {grid:g} days"


def _time_to_event_lines(entry: dict[str, Any]) -> list[str]:
    """One endpoint: per stratum n, events and the median (95% CI); the log-rank test."""
    unit = _time_unit(entry)
    by = f" by {entry['by']}" if entry["by"] else ""
    lines = [
        f"{entry['label']}{by} (times in {unit})",
        f"{'Stratum':<20}{'n':>6}{'Events':>8}  Median (95% CI)",
    ]
    for row in entry["strata"]:
        events = row.get("events", "")
        head = f"{row['stratum']:<20}{row['n']:>6}{events:>8}  "
        if row["suppressed"]:
            lines.append(f"{head}suppressed ({row['suppression_rule']})")
            continue
        median = row["median"]
        withheld = median.get("withheld") or []

        def shown(key: str, median: dict[str, Any] = median, withheld: list = withheld) -> str:
            if key in withheld:
                return "withheld"
            if median[key] is None:
                return "not reached" if key == "time" else "—"
            return _number(median[key], 1)

        lines.append(f"{head}{shown('time')} ({shown('lower')}, {shown('upper')})")
    test = entry.get("log_rank")
    if test is not None:
        lines.append(
            f"Log-rank test: chi-square {_number(test['chisq'], 2)} on {test['df']} df, "
            f"p {_p_value(test['p_value'])}"
        )
    if entry["left_out_missing_stratum"]:
        lines.append(f"Left out (no {entry['by']} recorded): {entry['left_out_missing_stratum']}")
    return lines


#: Title of the terminal block of the heterogeneity between centres.
HETEROGENEITY_TITLE = "Heterogeneity between centres (DerSimonian–Laird)"


def _heterogeneity_line(row: dict[str, Any]) -> str:
    """One cell: k (left out), Q, its p, I², τ² and the random-effects SMC (95% CI)."""
    head = f"{row['label']:<24}{row['months']:>6}"
    if row["suppressed"]:
        return f"{head}   suppressed ({row['suppression_rule']})"
    centres = f"{row['centres']} ({row['centres_left_out']})"
    i2 = "—" if row["i2_percent"] is None else f"{row['i2_percent']:.1f}%"
    random = row.get("random_effects") or {}
    ci = random.get("ci") or [None, None]
    smc = f"{_number(random.get('estimate'), 2)} ({_interval(ci[0], ci[1], 2)})"
    return (
        f"{head}{centres:>10}{_number(row['q'], 2):>9}{_p_value(row['p_value']):>8}"
        f"{i2:>8}{_number(row['tau2'], 4):>9}  {smc}"
    )


def _heterogeneity_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The heterogeneity between centres: one line per change cell, a suppressed one with
    its rule."""
    return [
        HETEROGENEITY_TITLE,
        f"{'Outcome':<24}{'Month':>6}{'k (out)':>10}{'Q':>9}{'p':>8}{'I²':>8}{'τ²':>9}"
        "  Random-effects SMC (95% CI)",
        *(_heterogeneity_line(row) for row in rows),
    ]
