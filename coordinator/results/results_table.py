"""The pooled results as a plain-text table for the statistician's terminal."""

from __future__ import annotations

from typing import Any

from sscjak.shared.data_contract import JAKI_DRUGS


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
    """Cohort line, one line per change cell, calcinosis/DU/GC lines, safety table."""
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
    return "\n".join(lines)
