"""The paper's tables, built from the pooled results dict alone (docs/results-file.md).

Each builder takes the results dict and returns a :class:`ReportTable`: the cells a
reader sees (formatted by :mod:`.formatting`) and, for spreadsheets, the same rows
with the unrounded values of ``results.json``. The HTML and Markdown writers only lay
these tables out; no number is computed or rounded anywhere else.

A change cell with ``"suppressed": true`` (pooled n below the plan's minimum cell,
docs/statistics.md) is shown with the rule that suppressed it and no statistic at all,
its n included; so is a suppressed stratum of a time-to-event endpoint.

Results of version 2 may hold ``time_to_event``: one table per endpoint (n, events,
median time with its 95% CI and the numbers at risk of each stratum, the log-rank test
in a note), shown in the report's section :data:`TIME_TO_EVENT_SECTION`.

Results may hold ``heterogeneity``: one row per change cell with the DerSimonian–Laird
meta-analysis of the centres' own standardized mean changes (Cochran's Q, I², τ², the
random-effects SMC), shown as one table in the report's section
:data:`HETEROGENEITY_SECTION`, after the others; a suppressed row shows its rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sscjak.coordinator.report.formatting import (
    UNDEFINED,
    decimals_for_resolution,
    format_count_percent,
    format_duration,
    format_estimate_interval,
    format_mean_sd,
    format_median_iqr,
    format_number,
    format_p_value,
    format_percent,
    format_rank_statistic,
    format_smc_with_ci,
)
from sscjak.shared import disclosure
from sscjak.shared.data_contract import (
    DAYS_PER_MONTH,
    EVENT_TYPES,
    JAKI_DRUGS,
    MEASURES,
    MONTH_IN_DAYS,
)
from sscjak.shared.disclosure import DEFAULT_MIN_CELL

#: The measure whose cells form the glucocorticoid table rather than Table 2.
GLUCOCORTICOID_OUTCOME = "gc_dose_mg"

DRUG_LABELS: dict[str, str] = {
    "tofacitinib": "Tofacitinib",
    "baricitinib": "Baricitinib",
    "upadacitinib": "Upadacitinib",
    "filgotinib": "Filgotinib",
    "ruxolitinib": "Ruxolitinib",
    "other": "Other JAK inhibitor",
}
SEX_LABELS: dict[str, str] = {"F": "Female", "M": "Male", "missing": "Not recorded"}
SUBSET_LABELS: dict[str, str] = {
    "lcSSc": "Limited cutaneous (lcSSc)",
    "dcSSc": "Diffuse cutaneous (dcSSc)",
    "other": "Other",
    "missing": "Not recorded",
}
EVENT_LABELS: dict[str, str] = {
    "infection": "Infection",
    "serious_infection": "Serious infection",
    "herpes_zoster": "Herpes zoster",
    "vte": "Venous thromboembolism",
    "mace": "Major adverse cardiovascular event",
    "malignancy": "Malignancy",
    "death": "Death",
    "digital_ulcer": "Digital ulcer",
    "other": "Other",
}
P_METHOD_LABELS: dict[str, str] = {
    "exact": "exact",
    "normal": "normal",
    "exact_conditional": "exact conditional",
}
SMC_LABELS: dict[str, str] = {
    "baseline": "mean change / SD of baseline values (SMCR; Becker 1988)",
    "change": "mean change / SD of changes (SMCC, d_z)",
}

CHANGE_HEADER: tuple[str, ...] = (
    "Measure",
    "Month",
    "n",
    "Baseline, mean (SD)",
    "Change, median (IQR)",
    "Change, mean (SD)",
    "SMC (95% CI)",
    "V",
    "p",
    "Test",
)
#: Columns of ``changes``-type CSV files: the results keys, unrounded.
CHANGE_CSV_KEYS: tuple[str, ...] = (
    "n",
    "n_pos",
    "n_neg",
    "n_zero",
    "mean_baseline",
    "sd_baseline",
    "median_change",
    "q1_change",
    "q3_change",
    "mean_change",
    "sd_change",
    "smc",
    "smc_ci_low",
    "smc_ci_high",
    "smc_baseline",
    "smc_change",
    "V",
    "p_value",
    "p_method",
    "p_value_exact_conditional",
)
#: Extra column of the change tables when the plan asks for the exact conditional p.
EXACT_CONDITIONAL_HEADER = "p, exact conditional"


#: The column a time-to-event stratification is named by (``by`` of the plan).
BY_LABELS: dict[str, str] = {
    "jaki_drug": "JAK inhibitor",
    "ssc_subset": "SSc subset",
    "sex": "Sex",
    "": "Stratum",
}
#: The label of each stratum's values, by the column that defines the strata.
STRATUM_LABELS: dict[str, dict[str, str]] = {
    "jaki_drug": DRUG_LABELS,
    "ssc_subset": SUBSET_LABELS,
    "sex": SEX_LABELS,
}

#: Columns holding words rather than numbers (left-aligned in HTML and Markdown).
TEXT_COLUMNS: frozenset[str] = frozenset(
    {"Measure", "Characteristic", "Outcome", "Event type", "Test", *BY_LABELS.values()}
)
#: The report section of the time-to-event tables and figures (after the others).
TIME_TO_EVENT_SECTION = "Time to event"
#: The report section of the tables by stratum of the plan's ``by`` (after time to event).
STRATA_SECTION = "By stratum"
#: The report section of the heterogeneity between centres (after the tables by stratum).
HETEROGENEITY_SECTION = "Heterogeneity between centres"


def is_numeric_column(header: str) -> bool:
    """Whether a column holds numbers (right-aligned, tabular figures)."""
    return header not in TEXT_COLUMNS


@dataclass(frozen=True)
class ReportRow:
    """One row of a table as displayed.

    ``kind`` is ``"data"`` (one cell per column), ``"section"`` (a heading row: its
    single cell spans the table), ``"note"`` (a sentence below a group of rows, such as
    a test between strata: its single cell spans the table) or ``"suppressed"`` (cells
    before ``span_from`` as usual, then one cell stating the suppression rule across the
    remaining columns).
    """

    cells: tuple[str, ...]
    kind: str = "data"
    span_from: int | None = None


@dataclass(frozen=True)
class ReportTable:
    """A table of the report: displayed rows plus the unrounded rows for its CSV file.

    ``section`` is the report section that shows it ("" for the main "Tables" section,
    :data:`TIME_TO_EVENT_SECTION` for a time-to-event table); ``group`` pairs it with the
    figures of the same group (an endpoint) in that section.
    """

    key: str
    title: str
    header: tuple[str, ...]
    rows: tuple[ReportRow, ...]
    csv_header: tuple[str, ...]
    csv_rows: tuple[tuple[Any, ...], ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    section: str = ""
    group: str = ""


def min_cell(results: Mapping[str, Any]) -> int:
    """The plan's minimum cell (pooled n below it is suppressed), default 5."""
    plan = results.get("plan") or {}
    value = plan.get("min_cell", DEFAULT_MIN_CELL)
    return int(value) if value is not None else DEFAULT_MIN_CELL


def suppression_rule(cell: Mapping[str, Any], minimum: int) -> str:
    """The rule that suppressed ``cell``, as the results state it or the plan implies."""
    return str(cell.get("suppression_rule") or disclosure.suppression_rule(minimum))


def measure_label(cell: Mapping[str, Any], with_unit: bool = True) -> str:
    """``label (unit)`` of a change cell, from the cell or the data contract."""
    measure = MEASURES.get(str(cell.get("outcome")))
    label = cell.get("label") or (measure.label if measure else str(cell.get("outcome")))
    unit = cell.get("unit") or (measure.unit if measure else "")
    return f"{label} ({unit})" if unit and with_unit else str(label)


def measure_resolution(cell: Mapping[str, Any]) -> float | None:
    """The recording grid of a change cell's measure, from the cell or the data contract."""
    if cell.get("resolution") is not None:
        return float(cell["resolution"])
    measure = MEASURES.get(str(cell.get("outcome")))
    return float(measure.resolution) if measure else None


BENEFIT_ARROWS: dict[str, str] = {"decrease": "↓", "increase": "↑"}


def _benefit(cell: Mapping[str, Any]) -> str | None:
    """The direction of change that is a benefit: the cell's own (a declared measure's),
    else the data contract's; ``None`` when unknown."""
    if cell.get("benefit") in BENEFIT_ARROWS:
        return str(cell["benefit"])
    measure = MEASURES.get(str(cell.get("outcome")))
    return measure.benefit if measure else None


def benefit_arrow(cell: Mapping[str, Any]) -> str:
    """ "↓" when a decrease of the cell's measure is a benefit, "↑" for an increase, "" when
    the measure is unknown (:attr:`sscjak.shared.data_contract.Measure.benefit`)."""
    benefit = _benefit(cell)
    return BENEFIT_ARROWS[benefit] if benefit else ""


def benefit_sentence(cell: Mapping[str, Any]) -> str:
    """Which direction of change of the cell's measure is a benefit, as a sentence."""
    benefit = _benefit(cell)
    if benefit is None:
        return ""
    better, worse = (
        ("a decrease", "an increase") if benefit == "decrease" else ("an increase", "a decrease")
    )
    return (
        f"{measure_label(cell, with_unit=False)}: {better} is an improvement "
        f"({BENEFIT_ARROWS[benefit]} better), {worse} a worsening."
    )


def benefit_summary(cells: Sequence[Mapping[str, Any]]) -> str:
    """The measures of ``cells`` grouped by the direction of change that is a benefit:
    "↓ better (a decrease is an improvement): mRSS, …; ↑ better (…): FVC, DLCO." """
    labels: dict[str, list[str]] = {"decrease": [], "increase": []}
    for cell in cells:
        benefit = _benefit(cell)
        label = measure_label(cell, with_unit=False)
        if benefit is not None and label not in labels[benefit]:
            labels[benefit].append(label)
    words = {"decrease": "a decrease", "increase": "an increase"}
    parts = [
        f"{BENEFIT_ARROWS[direction]} better ({words[direction]} is an improvement): "
        f"{', '.join(names)}"
        for direction, names in labels.items()
        if names
    ]
    return "; ".join(parts) + "." if parts else ""


def change_cell_texts(cell: Mapping[str, Any]) -> dict[str, str]:
    """The statistics of a released change cell as the report shows them, by column of
    Table 2: ``n``, ``baseline``, ``median``, ``mean``, ``smc``, ``V``, ``p``, ``test``
    and ``p_exact_conditional`` (Table 2 and the stratified table both use them)."""
    decimals = decimals_for_resolution(measure_resolution(cell))
    method = cell.get("p_method")
    return {
        "n": str(cell.get("n")),
        "baseline": format_mean_sd(cell.get("mean_baseline"), cell.get("sd_baseline"), decimals),
        "median": format_median_iqr(
            cell.get("median_change"),
            cell.get("q1_change"),
            cell.get("q3_change"),
            decimals,
            quantile_grid=measure_resolution(cell),
        ),
        "mean": format_mean_sd(cell.get("mean_change"), cell.get("sd_change"), decimals),
        "smc": format_smc_with_ci(cell.get("smc"), cell.get("smc_ci")),
        "V": format_rank_statistic(cell.get("V")),
        "p": format_p_value(cell.get("p_value")),
        "test": P_METHOD_LABELS.get(str(method), str(method))
        if method is not None and cell.get("p_value") is not None
        else UNDEFINED,
        "p_exact_conditional": format_p_value(cell.get("p_value_exact_conditional")),
    }


def _change_row(cell: Mapping[str, Any], minimum: int, exact_conditional: bool) -> ReportRow:
    label, months = measure_label(cell), str(cell.get("months"))
    if cell.get("suppressed"):
        rule = suppression_rule(cell, minimum)
        return ReportRow((label, months, f"Suppressed: {rule}"), "suppressed", span_from=2)
    texts = change_cell_texts(cell)
    conditional = (texts["p_exact_conditional"],) if exact_conditional else ()
    return ReportRow(
        (
            label,
            months,
            *(texts[key] for key in ("n", "baseline", "median", "mean", "smc", "V", "p", "test")),
            *conditional,
        )
    )


def _change_csv_row(cell: Mapping[str, Any], minimum: int) -> tuple[Any, ...]:
    suppressed = bool(cell.get("suppressed"))
    rule = suppression_rule(cell, minimum) if suppressed else ""
    head = (cell.get("outcome"), measure_label(cell), cell.get("months"), suppressed, rule)
    if suppressed:
        return head + tuple(None for _ in CHANGE_CSV_KEYS)
    ci = cell.get("smc_ci") or [None, None]
    values = {**cell, "smc_ci_low": ci[0], "smc_ci_high": ci[1]}
    return head + tuple(values.get(key) for key in CHANGE_CSV_KEYS)


EXACT_CONDITIONAL_NOTE = (
    "p, exact conditional: exact p of the signed-rank statistic's permutation distribution "
    "given the observed ties, zero changes dropped (as R's exactRankTests::wilcox.exact)."
)


def _change_notes(
    results: Mapping[str, Any], minimum: int, cells: Sequence[Mapping[str, Any]]
) -> tuple[str, ...]:
    plan = results.get("plan") or {}
    smc_kind = str(plan.get("smc", "baseline"))
    window = f"{float(plan.get('window_months', 2)):g}"
    benefit = benefit_summary(cells)
    return (
        f"Change = value at the month ±{window} months minus the baseline value (JAKi "
        "initiation); n = patients with both values. IQR given as (Q1, Q3), R quantile type 7.",
        *((f"Direction of benefit: {benefit}",) if benefit else ()),
        f"SMC, standardized mean change = {SMC_LABELS.get(smc_kind, smc_kind)}; 95% CI from "
        "its large-sample variance.",
        "V, Wilcoxon signed-rank statistic (sum of the ranks of positive changes, zero "
        "changes dropped); p two-sided; Test: exact, when fewer than 50 non-zero changes "
        "without ties, otherwise normal, the normal approximation with tie and continuity "
        "correction (R wilcox.test).",
        disclosure.suppression_sentence(minimum),
        f"{UNDEFINED}: statistic undefined for these data (e.g. SD of 0).",
    )


def change_table(
    results: Mapping[str, Any],
    outcomes: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    key: str = "table2_change_from_baseline",
    title: str = "Table 2. Change from baseline by measure and time point",
    extra_notes: Sequence[str] = (),
) -> ReportTable:
    """Change-from-baseline cells as a table, in the order of ``results["changes"]``.

    ``outcomes`` keeps only those measures; ``exclude`` drops some (Table 2 leaves the
    glucocorticoid dose to its own table).
    """
    minimum = min_cell(results)
    exact_conditional = bool((results.get("plan") or {}).get("exact_conditional_p"))
    cells = [
        cell
        for cell in results.get("changes", [])
        if (outcomes is None or cell.get("outcome") in outcomes)
        and cell.get("outcome") not in exclude
    ]
    return ReportTable(
        key=key,
        title=title,
        header=CHANGE_HEADER + ((EXACT_CONDITIONAL_HEADER,) if exact_conditional else ()),
        rows=tuple(_change_row(cell, minimum, exact_conditional) for cell in cells),
        csv_header=(
            "outcome",
            "measure",
            "months",
            "suppressed",
            "suppression_rule",
            *CHANGE_CSV_KEYS,
        ),
        csv_rows=tuple(_change_csv_row(cell, minimum) for cell in cells),
        notes=tuple(extra_notes)
        + _change_notes(results, minimum, cells)
        + ((EXACT_CONDITIONAL_NOTE,) if exact_conditional else ()),
    )


def cohort_table(results: Mapping[str, Any]) -> ReportTable:
    """Table 1: the pooled cohort (patients, centres, drugs, sex, subset, follow-up)."""
    cohort = results.get("cohort") or {}
    patients = cohort.get("patients")
    centres = cohort.get("centres", results.get("nodes"))
    rows: list[ReportRow] = [
        ReportRow(("Patients", str(patients))),
        ReportRow(("Centres contributing", str(centres))),
    ]
    csv_rows: list[tuple[Any, ...]] = [
        ("patients", "", patients, None, None),
        ("centres", "", centres, None, None),
    ]
    age = cohort.get("age_at_start_years")
    if age is not None:
        _age_rows(age, patients, min_cell(results), rows, csv_rows)

    def categorical(key: str, heading: str, order: Sequence[str], labels: dict[str, str]):
        counts = cohort.get(key)
        if not counts:
            return
        rows.append(ReportRow((heading,), "section"))
        names = [name for name in order if name in counts]
        names += [name for name in counts if name not in names]
        for name in names:
            count = counts[name]
            rows.append(ReportRow((labels.get(name, name), format_count_percent(count, patients))))
            share = 100 * count / patients if patients else None
            csv_rows.append((key, name, count, share, None))

    categorical("drugs", "JAK inhibitor, n (%)", JAKI_DRUGS, DRUG_LABELS)
    categorical("sex", "Sex, n (%)", ("F", "M", "missing"), SEX_LABELS)
    categorical(
        "ssc_subset", "SSc subset, n (%)", ("lcSSc", "dcSSc", "other", "missing"), SUBSET_LABELS
    )
    followup = cohort.get("followup_months") or {}
    rows.append(
        ReportRow(
            (
                "Follow-up on treatment, months, median (IQR)",
                format_median_iqr(
                    followup.get("median"), followup.get("q1"), followup.get("q3"), 1
                ),
            )
        )
    )
    for statistic in ("median", "q1", "q3"):
        csv_rows.append(("followup_months", statistic, None, None, followup.get(statistic)))
    rows.append(
        ReportRow(("Patient-years on treatment", format_number(cohort.get("patient_years"), 1)))
    )
    csv_rows.append(("patient_years", "", None, None, cohort.get("patient_years")))
    return ReportTable(
        key="table1_cohort",
        title="Table 1. Cohort",
        header=("Characteristic", f"All patients (n = {patients})"),
        rows=tuple(rows),
        csv_header=("characteristic", "category", "n", "percent", "value"),
        csv_rows=tuple(csv_rows),
        notes=(
            "Age at JAKi start = calendar year of JAKi initiation − birth year, in whole "
            "years (only the birth year is collected); ages outside 0–120 years count as not "
            "available.",
            "Follow-up on treatment from JAKi initiation to stop or last contact; "
            "IQR given as (Q1, Q3), R quantile type 7. Percentages of all patients.",
        ),
    )


AGE_LABEL = "Age at JAKi start, years, median (IQR)"
AGE_UNAVAILABLE_LABEL = "Age not available (birth year not recorded or implausible), n (%)"


def _age_rows(
    age: Mapping[str, Any],
    patients: Any,
    minimum: int,
    rows: list[ReportRow],
    csv_rows: list[tuple[Any, ...]],
) -> None:
    """Age at JAKi start: median (IQR) of the patients with an age, and those without one.

    Only the quartiles are released (never the age histogram); they are suppressed when
    fewer than the minimum cell of patients have an age.
    """
    if age.get("suppressed"):
        shown = f"Suppressed: {suppression_rule(age, minimum)}"
    else:
        shown = format_median_iqr(age.get("median"), age.get("q1"), age.get("q3"), 0)
        if age.get("n") is not None:
            shown += f"; n = {age.get('n')}"
    rows.append(ReportRow((AGE_LABEL, shown)))
    for statistic in ("median", "q1", "q3"):
        csv_rows.append(("age_at_start_years", statistic, None, None, age.get(statistic)))
    csv_rows.append(("age_at_start_years", "n", age.get("n"), None, None))
    unavailable = int(age.get("birth_year_missing") or 0) + int(age.get("outside_0_120") or 0)
    rows.append(ReportRow((AGE_UNAVAILABLE_LABEL, format_count_percent(unavailable, patients))))
    for label in ("birth_year_missing", "outside_0_120"):
        count = age.get(label)
        share = 100 * count / patients if patients and count is not None else None
        csv_rows.append(("age_at_start_years", label, count, share, None))


def other_outcomes_table(results: Mapping[str, Any]) -> ReportTable:
    """Calcinosis improvement and patients who developed digital ulcers."""
    patients = (results.get("cohort") or {}).get("patients")
    calcinosis = results.get("calcinosis") or {}
    ulcers = results.get("digital_ulcers") or {}
    with_calcinosis = calcinosis.get("baseline_present")
    improved = calcinosis.get("improved")
    developed = ulcers.get("patients")

    def share(count: Any, total: Any) -> str:
        if count is None or total is None:
            return UNDEFINED
        return f"{count}/{total} ({format_percent(count, total)})"

    rows = (
        ReportRow(("Calcinosis at baseline", format_count_percent(with_calcinosis, patients))),
        ReportRow(
            (
                "Calcinosis improved, of those with calcinosis at baseline",
                share(improved, with_calcinosis),
            )
        ),
        ReportRow(("Developed digital ulcers on treatment", share(developed, patients))),
    )
    csv_rows = (
        (
            "calcinosis_baseline",
            with_calcinosis,
            patients,
            100 * with_calcinosis / patients if with_calcinosis is not None and patients else None,
        ),
        (
            "calcinosis_improved",
            improved,
            with_calcinosis,
            100 * improved / with_calcinosis if improved is not None and with_calcinosis else None,
        ),
        (
            "digital_ulcers_developed",
            developed,
            patients,
            100 * developed / patients if developed is not None and patients else None,
        ),
    )
    return ReportTable(
        key="table3_calcinosis_digital_ulcers",
        title="Table 3. Calcinosis and digital ulcers",
        header=("Outcome", "n/N (%)"),
        rows=rows,
        csv_header=("outcome", "n", "denominator", "percent"),
        csv_rows=csv_rows,
        notes=(
            "Calcinosis improved: the last calcinosis course recorded on treatment after "
            "baseline is 'improved'. Developed digital ulcers: a visit on treatment after "
            "baseline with active ulcers, or a digital-ulcer event on treatment.",
        ),
    )


def glucocorticoid_table(results: Mapping[str, Any]) -> ReportTable:
    """Glucocorticoid dose change among patients on glucocorticoids at baseline."""
    on_gc = (results.get("glucocorticoids") or {}).get("baseline_on_gc")
    count = f" (n = {on_gc} on glucocorticoids at baseline)" if on_gc is not None else ""
    return change_table(
        results,
        outcomes=(GLUCOCORTICOID_OUTCOME,),
        key="table4_glucocorticoid_dose",
        title=f"Table 4. Glucocorticoid dose change among patients on glucocorticoids at "
        f"baseline{count}",
        extra_notes=("Prednisone-equivalent mg/day; only patients with a baseline dose > 0.",),
    )


#: Columns of a safety CSV file (Table 5 and the safety by stratum).
SAFETY_CSV_KEYS: tuple[str, ...] = (
    "event_type",
    "events",
    "patients",
    "rate_per_100py",
    "ci_low",
    "ci_high",
)
#: Columns of the safety tables after the first (the event type).
SAFETY_HEADER: tuple[str, ...] = (
    "Events",
    "Patients, n (%)",
    "Rate per 100 patient-years (95% CI)",
)


def sorted_safety(entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Safety rows in the data contract's order of event types, unknown types last."""
    order = {name: index for index, name in enumerate(EVENT_TYPES)}
    return sorted(entries, key=lambda entry: order.get(entry.get("event_type"), len(order)))


def safety_row(entry: Mapping[str, Any], patients: Any) -> ReportRow:
    """One event type: its label, events, patients n (% of ``patients``), rate (95% CI)."""
    name = str(entry.get("event_type"))
    return ReportRow(
        (
            EVENT_LABELS.get(name, name),
            str(entry.get("events")),
            format_count_percent(entry.get("patients"), patients),
            format_estimate_interval(entry.get("rate_per_100py"), entry.get("ci"), 1),
        )
    )


def safety_csv_values(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """One event type's unrounded values, in the order of :data:`SAFETY_CSV_KEYS`."""
    ci = entry.get("ci") or [None, None]
    return (
        str(entry.get("event_type")),
        entry.get("events"),
        entry.get("patients"),
        entry.get("rate_per_100py"),
        ci[0],
        ci[1],
    )


def safety_table(results: Mapping[str, Any]) -> ReportTable:
    """Adverse events by type: events, patients, rate per 100 patient-years (exact CI)."""
    patients = (results.get("cohort") or {}).get("patients")
    entries = sorted_safety(list(results.get("safety") or []))
    rows = [safety_row(entry, patients) for entry in entries]
    csv_rows = [safety_csv_values(entry) for entry in entries]
    patient_years = (results.get("cohort") or {}).get("patient_years")
    return ReportTable(
        key="table5_safety",
        title="Table 5. Adverse events on treatment",
        header=("Event type", *SAFETY_HEADER),
        rows=tuple(rows),
        csv_header=SAFETY_CSV_KEYS,
        csv_rows=tuple(csv_rows),
        notes=(
            f"Events from JAKi initiation to end of treatment; recurrent events counted; "
            f"rate = 100 × events / {format_number(patient_years, 1)} patient-years; "
            "exact Poisson 95% CI (Garwood 1936).",
        ),
    )


def time_to_event_entries(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The results' time-to-event endpoints (none in a version-1 results file)."""
    return list(results.get("time_to_event") or [])


def by_label(entry: Mapping[str, Any]) -> str:
    """What the strata of an endpoint are values of ("JAK inhibitor"), "Stratum" if none."""
    by = str(entry.get("by") or "")
    return BY_LABELS.get(by, by.replace("_", " ").capitalize())


def by_words(entry: Mapping[str, Any]) -> str:
    """:func:`by_label` within a sentence: "sex", "JAK inhibitor", "SSc subset"."""
    label = by_label(entry)
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


def stratum_label(entry: Mapping[str, Any], stratum: Any) -> str:
    """A stratum as a reader names it ("Tofacitinib"); the single stratum "All patients"."""
    by = str(entry.get("by") or "")
    if not by and stratum == "all":
        return "All patients"
    return STRATUM_LABELS.get(by, {}).get(str(stratum), str(stratum))


def is_month_grid(entry: Mapping[str, Any]) -> bool:
    """Whether the endpoint's time grid is a month (times are then shown in months)."""
    return float(entry.get("time_grid_days", DAYS_PER_MONTH)) == DAYS_PER_MONTH


def time_scale(entry: Mapping[str, Any]) -> tuple[str, float]:
    """The unit times are shown in and the factor from a grid time to it: ``("months",
    1.0)`` when the grid is a month, else ``("days", time_grid_days)``."""
    if is_month_grid(entry):
        return "months", 1.0
    return "days", float(entry.get("time_grid_days", DAYS_PER_MONTH))


def at_risk_grid_time(entry: Mapping[str, Any], months: int) -> int:
    """The grid time a number at risk at ``months`` is counted at (as the results module
    counts it): ceiling(months × month / grid)."""
    grid = Fraction(repr(float(entry.get("time_grid_days", DAYS_PER_MONTH))))
    return math.ceil(months * MONTH_IN_DAYS / grid)


def format_at_risk(n_risk: int | None, minimum: int) -> str:
    """A number at risk; one not released (below the minimum cell) as ``<m``."""
    return f"<{minimum}" if n_risk is None else str(n_risk)


def format_median_time(median: Mapping[str, Any] | None, factor: float) -> str:
    """``median (low to high)`` in the display unit: "not reached" for a median the curve
    never reaches, "—" for a limit it never reaches, "withheld" for a value the results
    withhold because it lies beyond the released curve."""
    median = median or {}
    withheld = set(median.get("withheld") or [])

    def shown(key: str) -> str:
        if key in withheld:
            return "withheld"
        value = median.get(key)
        if value is None:
            return "not reached" if key == "time" else format_duration(None)
        return format_duration(float(value) * factor)

    return f"{shown('time')} ({shown('lower')} to {shown('upper')})"


def p_clause(p: float | None) -> str:
    """``p = 0.03``, ``p < 0.001``, ``p > 0.99`` or ``p = —`` within a sentence."""
    text = format_p_value(p)
    return f"p {text}" if text[:1] in "<>" else f"p = {text}"


def log_rank_sentence(entry: Mapping[str, Any]) -> str | None:
    """``Log-rank test: χ² = x on df df, p = …`` and the strata it compared; ``None`` when
    the endpoint has no strata to compare."""
    log_rank = entry.get("log_rank")
    if log_rank is None:
        if not entry.get("by"):
            return None
        return (
            "Log-rank test: not available (fewer than two strata with patients, or not estimable)."
        )
    p_text = p_clause(log_rank.get("p_value"))
    compared = [stratum_label(entry, s) for s in log_rank.get("strata") or []]
    shown = {row.get("stratum") for row in entry.get("strata") or [] if not row.get("suppressed")}
    suppressed = [s for s in log_rank.get("strata") or [] if s not in shown]
    including = "; suppressed strata included" if suppressed else ""
    return (
        f"Log-rank test: χ² = {format_number(log_rank.get('chisq'), 2)} on "
        f"{log_rank.get('df')} df, {p_text} (strata with patients compared: "
        f"{', '.join(compared)}{including}; R survdiff)."
    )


def _stratum_row(
    entry: Mapping[str, Any], row: Mapping[str, Any], minimum: int, factor: float
) -> ReportRow:
    label = stratum_label(entry, row.get("stratum"))
    if row.get("suppressed"):
        return ReportRow(
            (label, f"Suppressed: {suppression_rule(row, minimum)}"), "suppressed", span_from=1
        )
    at_risk = [format_at_risk(point.get("n_risk"), minimum) for point in row.get("at_risk") or []]
    return ReportRow(
        (
            label,
            str(row.get("n")),
            str(row.get("events")),
            format_median_time(row.get("median"), factor),
            *at_risk,
        )
    )


#: Columns of a time-to-event CSV file after the stratum's identification.
TIME_TO_EVENT_CSV_KEYS: tuple[str, ...] = (
    "n",
    "events",
    "centres",
    "time_grid_days",
    "median",
    "median_lower",
    "median_upper",
)


def _stratum_csv_row(
    entry: Mapping[str, Any], row: Mapping[str, Any], minimum: int, months: Sequence[int]
) -> tuple[Any, ...]:
    suppressed = bool(row.get("suppressed"))
    rule = suppression_rule(row, minimum) if suppressed else ""
    head = (entry.get("endpoint"), entry.get("by") or "", row.get("stratum"), suppressed, rule)
    width = len(TIME_TO_EVENT_CSV_KEYS) + len(months) + 2
    if suppressed:
        return head + (None,) * width
    median = row.get("median") or {}
    at_risk = {point.get("months"): point.get("n_risk") for point in row.get("at_risk") or []}
    log_rank = entry.get("log_rank") or {}
    stratum = row.get("stratum")
    return (
        *head,
        row.get("n"),
        row.get("events"),
        row.get("centres"),
        entry.get("time_grid_days"),
        median.get("time"),
        median.get("lower"),
        median.get("upper"),
        *(at_risk.get(m) for m in months),
        (log_rank.get("observed") or {}).get(stratum),
        (log_rank.get("expected") or {}).get(stratum),
    )


def time_to_event_table(
    results: Mapping[str, Any], entry: Mapping[str, Any], number: int
) -> ReportTable:
    """One endpoint's strata: n, events, median time (95% CI) and numbers at risk.

    A suppressed stratum shows its rule across the statistics (no n, no curve); a number
    at risk below the minimum cell shows as ``<m``. The notes carry the log-rank test and
    the patients left out for a missing stratum. The CSV holds the results' values, times
    on the plan's grid (``time_grid_days`` days per unit).
    """
    minimum = min_cell(results)
    unit, factor = time_scale(entry)
    strata = list(entry.get("strata") or [])
    months = next(
        ([p.get("months") for p in row.get("at_risk") or []] for row in strata if "at_risk" in row),
        list((results.get("plan") or {}).get("at_risk_months") or []),
    )
    label = str(entry.get("label") or entry.get("endpoint"))
    by = entry.get("by")
    grid = f"{float(entry.get('time_grid_days', DAYS_PER_MONTH)):g}"
    notes = [
        f"Time from JAK inhibitor initiation, in {unit}"
        + (f" (a month = {DAYS_PER_MONTH:g} days)" if unit == "months" else "")
        + f", on the plan's grid of {grid} days; patients without the event are censored at "
        f"their last follow-up on treatment, and all at {entry.get('horizon_months')} months "
        "(administrative censoring). Kaplan–Meier estimate as R survival's survfit.",
        f"Median: the median time to the event with its 95% CI (R quantile.survfit); not "
        f"reached: the estimate stays above 0.5; {UNDEFINED}: the CI limit is not reached.",
        f"At risk: patients still at risk at the month shown; <{minimum}: fewer than "
        f"{minimum} (not shown).",
        f"Strata with {disclosure.suppression_rule(minimum)} or whose patients all come from "
        "one centre are suppressed: no statistic or curve is shown.",
    ]
    sentence = log_rank_sentence(entry)
    if sentence:
        notes.append(sentence)
    if by:
        notes.append(
            f"Patients left out because their {by_words(entry)} is not recorded: "
            f"{entry.get('left_out_missing_stratum', 0)}."
        )
    return ReportTable(
        key=f"table{number}_time_to_event_{entry.get('endpoint')}",
        title=f"Table {number}. {label}" + (f" by {by_words(entry)}" if by else ""),
        header=(
            by_label(entry),
            "n",
            "Events",
            f"Median, {unit} (95% CI)",
            *(f"At risk, {m} mo" for m in months),
        ),
        rows=tuple(_stratum_row(entry, row, minimum, factor) for row in strata),
        csv_header=(
            "endpoint",
            "by",
            "stratum",
            "suppressed",
            "suppression_rule",
            *TIME_TO_EVENT_CSV_KEYS,
            *(f"at_risk_{m}_months" for m in months),
            "log_rank_observed",
            "log_rank_expected",
        ),
        csv_rows=tuple(_stratum_csv_row(entry, row, minimum, months) for row in strata),
        notes=tuple(notes),
        section=TIME_TO_EVENT_SECTION,
        group=str(entry.get("endpoint")),
    )


#: Columns of the change table by stratum after the stratum (Table 2's names).
STRATIFIED_CHANGE_COLUMNS: dict[str, str] = {
    "n": "n",
    "mean": "Change, mean (SD)",
    "median": "Change, median (IQR)",
    "smc": "SMC (95% CI)",
    "p": "p, signed-rank",
}
#: Columns of the change-by-stratum CSV file after those of a change cell: the tests
#: between strata of the cell, repeated on each of its strata.
BETWEEN_STRATA_CSV_KEYS: tuple[str, ...] = (
    "kruskal_strata",
    "kruskal_statistic",
    "kruskal_df",
    "kruskal_p_value",
    "wilcoxon_strata",
    "wilcoxon_statistic_w",
    "wilcoxon_p_value",
    "wilcoxon_method",
)
BETWEEN_STRATA_UNAVAILABLE = (
    "Tests between strata: not available (the whole-cohort cell is suppressed, or fewer "
    "than two strata have patients in the cell)."
)


def stratified_entry(results: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The results' ``stratified`` key (none in a version-1 file or a plan without by)."""
    return results.get("stratified") or None


def _stratified_change_row(
    stratified: Mapping[str, Any], cell: Mapping[str, Any], minimum: int
) -> ReportRow:
    label = stratum_label(stratified, cell.get("stratum"))
    if cell.get("suppressed"):
        rule = suppression_rule(cell, minimum)
        return ReportRow((label, f"Suppressed: {rule}"), "suppressed", span_from=1)
    texts = change_cell_texts(cell)
    return ReportRow((label, *(texts[key] for key in STRATIFIED_CHANGE_COLUMNS)))


def _suppressed_named(
    stratified: Mapping[str, Any], entry: Mapping[str, Any], compared: Sequence[Any]
) -> str:
    """The compared strata of a test that are suppressed in the cell, as the end of its
    sentence ("; suppressed strata included: Filgotinib, Ruxolitinib"), "" when none is."""
    suppressed = {row.get("stratum") for row in entry.get("strata") or [] if row.get("suppressed")}
    names = [stratum_label(stratified, s) for s in compared if s in suppressed]
    return f"; suppressed strata included: {', '.join(names)}" if names else ""


def between_strata_sentences(
    stratified: Mapping[str, Any], entry: Mapping[str, Any]
) -> tuple[str, ...]:
    """The tests between the strata of one change cell, as the report shows them:
    "Kruskal–Wallis: H = x, df = k, p = …" and, for two strata, "Wilcoxon rank-sum:
    W = w, p = … (exact|normal)"; one sentence saying why when there is no test."""
    kruskal = entry.get("kruskal")
    if kruskal is None:
        return (BETWEEN_STRATA_UNAVAILABLE,)
    sentences = [
        f"Kruskal–Wallis: H = {format_number(kruskal.get('statistic'), 2)}, "
        f"df = {kruskal.get('df')}, {p_clause(kruskal.get('p_value'))}"
        + _suppressed_named(stratified, entry, kruskal.get("strata") or [])
    ]
    wilcoxon = entry.get("wilcoxon")
    if wilcoxon is not None:
        method = wilcoxon.get("method")
        shown = f" ({P_METHOD_LABELS.get(str(method), str(method))})" if method else ""
        sentences.append(
            f"Wilcoxon rank-sum: W = {format_rank_statistic(wilcoxon.get('statistic_w'))}, "
            f"{p_clause(wilcoxon.get('p_value'))}{shown}"
            + _suppressed_named(stratified, entry, wilcoxon.get("strata") or [])
        )
    return tuple(sentences)


def _between_strata_csv_values(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    kruskal = entry.get("kruskal") or {}
    wilcoxon = entry.get("wilcoxon") or {}
    return (
        ";".join(map(str, kruskal.get("strata") or [])) or None,
        kruskal.get("statistic"),
        kruskal.get("df"),
        kruskal.get("p_value"),
        ";".join(map(str, wilcoxon.get("strata") or [])) or None,
        wilcoxon.get("statistic_w"),
        wilcoxon.get("p_value"),
        wilcoxon.get("method"),
    )


def _left_out_note(stratified: Mapping[str, Any]) -> str:
    return (
        f"Patients left out because their {by_words(stratified)} is not recorded: "
        f"{stratified.get('left_out_missing_stratum', 0)}."
    )


def stratified_change_table(results: Mapping[str, Any], number: int) -> ReportTable:
    """Change from baseline by stratum of the plan's ``by``: per change cell (a heading
    row), one row per stratum with n, mean change (SD), median change (IQR), SMC (95% CI)
    and the signed-rank p, formatted as in Table 2; a suppressed stratum shows its rule
    across them; then the tests between strata of the cell, one row each.

    The CSV holds the change cell's values of each stratum (as Table 2's CSV, plus ``by``
    and ``stratum``) and the cell's tests between strata, repeated on each stratum.
    """
    stratified = stratified_entry(results) or {}
    minimum = min_cell(results)
    by = str(stratified.get("by") or "")
    rows: list[ReportRow] = []
    csv_rows: list[tuple[Any, ...]] = []
    cells: list[Mapping[str, Any]] = []
    for entry in stratified.get("changes") or []:
        strata = list(entry.get("strata") or [])
        named = strata[0] if strata else entry
        rows.append(
            ReportRow((f"{measure_label(named)} at {entry.get('months')} months",), "section")
        )
        for cell in strata:
            rows.append(_stratified_change_row(stratified, cell, minimum))
            head = _change_csv_row(cell, minimum)
            csv_rows.append(
                (*head[:3], by, cell.get("stratum"), *head[3:], *_between_strata_csv_values(entry))
            )
        rows.extend(
            ReportRow((text,), "note") for text in between_strata_sentences(stratified, entry)
        )
        cells.append(named)
    plan = results.get("plan") or {}
    smc_kind = str(plan.get("smc", "baseline"))
    benefit = benefit_summary(cells)
    notes = (
        f"Each stratum's change cells are Table 2's statistics on the patients of that "
        f"{by_words(stratified)}: change = value at the month ±"
        f"{float(plan.get('window_months', 2)):g} months minus the baseline value; "
        "IQR given as (Q1, Q3), R quantile type 7; SMC, standardized mean change = "
        f"{SMC_LABELS.get(smc_kind, smc_kind)}; p, two-sided Wilcoxon signed-rank test "
        "(R wilcox.test, as in Table 2).",
        *((f"Direction of benefit: {benefit}",) if benefit else ()),
        *(
            (
                "Glucocorticoid dose: only patients on glucocorticoids at baseline (dose > 0), "
                "as in Table 4.",
            )
            if any(cell.get("outcome") == GLUCOCORTICOID_OUTCOME for cell in cells)
            else ()
        ),
        "Tests between strata compare the changes of the strata with patients in the cell, "
        "suppressed strata included: Kruskal–Wallis test (R kruskal.test; H with df = "
        "strata − 1) and, with exactly two strata, the Wilcoxon rank-sum test (R "
        "wilcox.test; W = rank sum of the first stratum in sorted order of its code minus "
        "n(n + 1)/2; exact, when both strata have fewer than 50 patients and no ties, "
        "otherwise normal, the normal approximation with tie and continuity correction).",
        f"Cells of a stratum with {disclosure.suppression_rule(minimum)} or whose patients "
        "all come from one centre are suppressed: no statistic is shown.",
        _left_out_note(stratified),
        f"{UNDEFINED}: statistic undefined for these data (e.g. SD of 0).",
    )
    return ReportTable(
        key=f"table{number}_change_by_{by or 'stratum'}",
        title=f"Table {number}. Change from baseline by {by_words(stratified)}",
        header=(by_label(stratified), *STRATIFIED_CHANGE_COLUMNS.values()),
        rows=tuple(rows),
        csv_header=(
            "outcome",
            "measure",
            "months",
            "by",
            "stratum",
            "suppressed",
            "suppression_rule",
            *CHANGE_CSV_KEYS,
            *BETWEEN_STRATA_CSV_KEYS,
        ),
        csv_rows=tuple(csv_rows),
        notes=notes,
        section=STRATA_SECTION,
    )


#: Columns of the safety-by-stratum CSV file before those of Table 5's CSV.
STRATUM_CSV_KEYS: tuple[str, ...] = (
    "by",
    "stratum",
    "stratum_patients",
    "stratum_patient_years",
    "stratum_centres",
    "suppressed",
    "suppression_rule",
)


def stratified_safety_table(results: Mapping[str, Any], number: int) -> ReportTable:
    """Adverse events by stratum of the plan's ``by``: per stratum a heading row with its
    patients, patient-years and centres, then one row per event type as in Table 5
    (patients as a percentage of the stratum's); a suppressed stratum shows its rule."""
    stratified = stratified_entry(results) or {}
    minimum = min_cell(results)
    by = str(stratified.get("by") or "")
    rows: list[ReportRow] = []
    csv_rows: list[tuple[Any, ...]] = []
    for stratum in stratified.get("strata") or []:
        patients = stratum.get("patients")
        centres = stratum.get("centres")
        rows.append(
            ReportRow(
                (
                    f"{stratum_label(stratified, stratum.get('stratum'))}: {patients} patients, "
                    f"{format_number(stratum.get('patient_years'), 1)} patient-years, "
                    f"{centres} {'centre' if centres == 1 else 'centres'}",
                ),
                "section",
            )
        )
        suppressed = bool(stratum.get("suppressed"))
        head = (
            by,
            stratum.get("stratum"),
            patients,
            stratum.get("patient_years"),
            centres,
            suppressed,
            suppression_rule(stratum, minimum) if suppressed else "",
        )
        if suppressed:
            rule = suppression_rule(stratum, minimum)
            rows.append(ReportRow(("All event types", f"Suppressed: {rule}"), "suppressed", 1))
            csv_rows.append(head + (None,) * len(SAFETY_CSV_KEYS))
            continue
        for entry in sorted_safety(list(stratum.get("safety") or [])):
            rows.append(safety_row(entry, patients))
            csv_rows.append(head + safety_csv_values(entry))
    return ReportTable(
        key=f"table{number}_safety_by_{by or 'stratum'}",
        title=f"Table {number}. Adverse events on treatment by {by_words(stratified)}",
        header=("Event type", *SAFETY_HEADER),
        rows=tuple(rows),
        csv_header=(*STRATUM_CSV_KEYS, *SAFETY_CSV_KEYS),
        csv_rows=tuple(csv_rows),
        notes=(
            "As Table 5, on the patients of each stratum: rate = 100 × events / the "
            "stratum's patient-years; exact Poisson 95% CI (Garwood 1936); patients, n (%) "
            "of the stratum's patients.",
            f"Strata with {disclosure.suppression_rule(minimum)} or whose patients all come "
            "from one centre are suppressed: no rate is shown; their patients, patient-years "
            "and centres are.",
            _left_out_note(stratified),
        ),
        section=STRATA_SECTION,
    )


def stratified_tables(results: Mapping[str, Any], first: int) -> tuple[ReportTable, ...]:
    """The tables of the section :data:`STRATA_SECTION`, numbered from ``first``: change
    from baseline by stratum (when there are change cells) and adverse events by stratum
    (when there are strata); none without ``stratified``."""
    stratified = stratified_entry(results)
    if stratified is None:
        return ()
    builders = []
    if stratified.get("changes"):
        builders.append(stratified_change_table)
    if stratified.get("strata"):
        builders.append(stratified_safety_table)
    return tuple(builder(results, number) for number, builder in enumerate(builders, start=first))


#: Columns of the heterogeneity table (the measure and month first, as in Table 2).
HETEROGENEITY_HEADER: tuple[str, ...] = (
    "Measure",
    "Month",
    "Centres, k (left out)",
    "Q (df)",
    "p, Q",
    "I²",
    "τ²",
    "Random-effects SMC (95% CI)",
    "p, random effects",
)
#: Columns of the heterogeneity CSV file after the cell's identification: the results
#: keys, unrounded (nested ones flattened).
HETEROGENEITY_CSV_KEYS: tuple[str, ...] = (
    "q",
    "df",
    "p_value",
    "i2_percent",
    "h2",
    "tau2",
    "random_effects_tau2_used",
    "random_effects_estimate",
    "random_effects_se",
    "random_effects_ci_low",
    "random_effects_ci_high",
    "random_effects_z",
    "random_effects_p_value",
)
#: Decimals of Cochran's Q, of I² (a percentage) and of τ² (as metafor prints it).
Q_DECIMALS = 2
I2_DECIMALS = 1
TAU2_DECIMALS = 4
#: The R call whose estimates the heterogeneity table reproduces.
METAFOR_CALL = 'rma(yi, vi, method = "DL")'
RANDOM_EFFECTS_NOT_RUN = (
    f"Random-effects SMC {UNDEFINED}: the random-effects exchange was not run for these results."
)


def heterogeneity_entries(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The results' ``heterogeneity`` rows (none in a results file without the key)."""
    return list(results.get("heterogeneity") or [])


def _change_cell_of(results: Mapping[str, Any], row: Mapping[str, Any]) -> Mapping[str, Any]:
    """The change cell of the same measure and month (it carries the measure's unit)."""
    return next(
        (
            cell
            for cell in results.get("changes") or []
            if cell.get("outcome") == row.get("outcome") and cell.get("months") == row.get("months")
        ),
        {},
    )


def heterogeneity_label(results: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    """``label (unit)`` of a heterogeneity row, the unit from its change cell."""
    return measure_label({**_change_cell_of(results, row), **row})


def heterogeneity_texts(row: Mapping[str, Any]) -> dict[str, str]:
    """A shown heterogeneity row's statistics as the report shows them, by column of
    :data:`HETEROGENEITY_HEADER` after the month: ``centres``, ``q``, ``p_q``, ``i2``,
    ``tau2``, ``random`` and ``p_random``."""
    random = row.get("random_effects") or {}
    return {
        "centres": f"{row.get('centres')} ({row.get('centres_left_out')})",
        "q": f"{format_number(row.get('q'), Q_DECIMALS)} ({row.get('df')})",
        "p_q": format_p_value(row.get("p_value")),
        "i2": UNDEFINED
        if row.get("i2_percent") is None
        else f"{format_number(row.get('i2_percent'), I2_DECIMALS)}%",
        "tau2": format_number(row.get("tau2"), TAU2_DECIMALS),
        "random": format_smc_with_ci(random.get("estimate"), random.get("ci")),
        "p_random": format_p_value(random.get("p_value")),
    }


def _heterogeneity_row(
    results: Mapping[str, Any], row: Mapping[str, Any], minimum: int
) -> ReportRow:
    label, months = heterogeneity_label(results, row), str(row.get("months"))
    if row.get("suppressed"):
        rule = suppression_rule(row, minimum)
        return ReportRow((label, months, f"Suppressed: {rule}"), "suppressed", span_from=2)
    texts = heterogeneity_texts(row)
    return ReportRow((label, months, *texts.values()))


def _heterogeneity_csv_row(
    results: Mapping[str, Any], row: Mapping[str, Any], minimum: int
) -> tuple[Any, ...]:
    suppressed = bool(row.get("suppressed"))
    head = (
        row.get("outcome"),
        heterogeneity_label(results, row),
        row.get("months"),
        row.get("centres"),
        row.get("centres_left_out"),
        row.get("min_centre_n"),
        suppressed,
        suppression_rule(row, minimum) if suppressed else "",
    )
    if suppressed:
        return head + (None,) * len(HETEROGENEITY_CSV_KEYS)
    random = row.get("random_effects") or {}
    ci = random.get("ci") or [None, None]
    return (
        *head,
        *(row.get(key) for key in ("q", "df", "p_value", "i2_percent", "h2", "tau2")),
        *(random.get(key) for key in ("tau2_used", "estimate", "se")),
        ci[0],
        ci[1],
        random.get("z"),
        random.get("p_value"),
    )


def min_centre_n(results: Mapping[str, Any]) -> Any:
    """The plan's fewest patients a centre needs in a cell for its estimate to enter."""
    plan = results.get("plan") or {}
    if plan.get("min_centre_n") is not None:
        return plan["min_centre_n"]
    return next((row.get("min_centre_n") for row in heterogeneity_entries(results)), None)


def _heterogeneity_notes(results: Mapping[str, Any], minimum: int) -> tuple[str, ...]:
    smc_kind = str((results.get("plan") or {}).get("smc", "baseline"))
    rows = heterogeneity_entries(results)
    not_run = any(not row.get("suppressed") and not row.get("random_effects") for row in rows)
    return (
        "DerSimonian–Laird random-effects meta-analysis of the centres' own standardized mean "
        f"changes in each cell, as R metafor {METAFOR_CALL}; SMC = "
        f"{SMC_LABELS.get(smc_kind, smc_kind)}. Each centre's estimate never left it: only "
        f"secure sums of its terms did. Centres with fewer than {min_centre_n(results)} "
        "patients in a cell, or without an estimate, are left out.",
        "Q, Cochran's Q on df = k − 1 and its p (χ²); I², the share of the variation between "
        "centres due to heterogeneity; τ², the between-centre variance; random-effects SMC, "
        "weighted by 1 / (within-centre variance + τ²), with its 95% CI and two-sided p "
        "(z test).",
        "A cell is suppressed, with its rule and no statistic, when its change cell is "
        f"suppressed ({disclosure.suppression_rule(minimum)}) or too few centres contribute an "
        "estimate to keep each centre's own hidden.",
        *((RANDOM_EFFECTS_NOT_RUN,) if not_run else ()),
        f"{UNDEFINED}: statistic undefined for these data.",
    )


def heterogeneity_table(results: Mapping[str, Any], number: int) -> ReportTable:
    """Heterogeneity between centres: one row per change cell with the centres that
    entered (and those left out), Cochran's Q (df) and its p, I², τ² and the
    random-effects SMC (95% CI) with its p; a suppressed row shows its rule across them.
    The CSV holds the results' values, unrounded."""
    minimum = min_cell(results)
    rows = heterogeneity_entries(results)
    return ReportTable(
        key=f"table{number}_heterogeneity_between_centres",
        title=f"Table {number}. Heterogeneity between centres by measure and time point",
        header=HETEROGENEITY_HEADER,
        rows=tuple(_heterogeneity_row(results, row, minimum) for row in rows),
        csv_header=(
            "outcome",
            "measure",
            "months",
            "centres",
            "centres_left_out",
            "min_centre_n",
            "suppressed",
            "suppression_rule",
            *HETEROGENEITY_CSV_KEYS,
        ),
        csv_rows=tuple(_heterogeneity_csv_row(results, row, minimum) for row in rows),
        notes=_heterogeneity_notes(results, minimum),
        section=HETEROGENEITY_SECTION,
    )


def heterogeneity_tables(results: Mapping[str, Any], number: int) -> tuple[ReportTable, ...]:
    """The table of the section :data:`HETEROGENEITY_SECTION` numbered ``number``; none
    without ``heterogeneity`` rows."""
    if not heterogeneity_entries(results):
        return ()
    return (heterogeneity_table(results, number),)


#: Number of the first time-to-event table (after Tables 1–5).
FIRST_TIME_TO_EVENT_TABLE = 6


def report_tables(results: Mapping[str, Any]) -> tuple[ReportTable, ...]:
    """Every table of the report, in the order the report shows them: Tables 1–5, then
    one time-to-event table per endpoint when the results hold ``time_to_event``, then
    the tables by stratum when they hold ``stratified``, then the heterogeneity between
    centres when they hold ``heterogeneity``; numbered consecutively."""
    entries = time_to_event_entries(results)
    strata = stratified_tables(results, FIRST_TIME_TO_EVENT_TABLE + len(entries))
    return (
        cohort_table(results),
        change_table(results, exclude=(GLUCOCORTICOID_OUTCOME,)),
        other_outcomes_table(results),
        glucocorticoid_table(results),
        safety_table(results),
        *(
            time_to_event_table(results, entry, number)
            for number, entry in enumerate(entries, start=FIRST_TIME_TO_EVENT_TABLE)
        ),
        *strata,
        *heterogeneity_tables(results, FIRST_TIME_TO_EVENT_TABLE + len(entries) + len(strata)),
    )
