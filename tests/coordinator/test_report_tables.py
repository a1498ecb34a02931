"""The report's tables show the numbers of results.json, formatted as a clinical paper would.

Main inputs are real results: ``sscjak-coordinator simulate`` over the bundled demo
centres, once with the default plan and once with a minimum cell of 25 (so that some
cells are suppressed). A hand-made results dict adds undefined (null) statistics.
Every check reads the written report back (HTML, Markdown, CSV) and compares it with
the results dict under the formatting rules, not with the report's own code.
"""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from sscjak.coordinator.cli import main as coordinator_main
from sscjak.coordinator.report.write_report import write_report
from sscjak.coordinator.synthetic.demo_bundle import bundled_demo_folder

DEMO_CENTRES = sorted(bundled_demo_folder().glob("centre_*"))

SAMPLE_RESULTS = Path(__file__).with_name("report_sample_results.json")
MINUS = "\u2212"
DASH = "—"
MEASURE_DECIMALS = {0.1: 1, 1.0: 1, 0.25: 2}


def simulate_results(folder: Path, plan_text: str | None) -> dict[str, Any]:
    """Results of ``sscjak-coordinator simulate`` over the demo centres."""
    args = ["simulate", *map(str, DEMO_CENTRES), "--out", str(folder / "results.json")]
    if plan_text is not None:
        (folder / "plan.toml").write_text(plan_text, encoding="utf-8")
        args += ["--plan", str(folder / "plan.toml")]
    assert coordinator_main(args) == 0
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module", params=["demo_default", "demo_min_cell_25", "sample"])
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(results, report folder) for each kind of results."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "demo_default":
        results = simulate_results(folder, None)
    elif request.param == "demo_min_cell_25":
        results = simulate_results(folder, "min_cell = 25\n")
    else:
        results = json.loads(SAMPLE_RESULTS.read_text(encoding="utf-8"))
    write_report(results, folder / "report")
    return results, folder / "report"


class _TableReader(HTMLParser):
    """Rows of every <table>, keyed by the id of the section around it."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._section: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self._section = dict(attrs).get("id")
            self.tables[self._section or ""] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._section or ""].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(folder: Path) -> dict[str, list[list[str]]]:
    reader = _TableReader()
    reader.feed((folder / "report.html").read_text(encoding="utf-8"))
    return reader.tables


def csv_rows(folder: Path, key: str) -> list[dict[str, str]]:
    with (folder / "tables" / f"{key}.csv").open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def change_csv_by_cell(folder: Path) -> dict[tuple[str, int], dict[str, str]]:
    """Rows of both change tables' CSV files by (outcome, months)."""
    rows = csv_rows(folder, "table2_change_from_baseline")
    rows += csv_rows(folder, "table4_glucocorticoid_dose")
    return {(row["outcome"], int(row["months"])): row for row in rows}


def number(text: str) -> float:
    return float(text.replace(MINUS, "-").rstrip("%"))


def assert_shows(text: str, value: float | None, decimals: int) -> None:
    """``text`` is ``value`` with exactly ``decimals`` decimals, or a dash for null."""
    if value is None:
        assert text == DASH
        return
    assert "-" not in text, f"{text!r} uses a hyphen, not a minus sign"
    if decimals == 0:
        assert re.fullmatch(f"{MINUS}?\\d+", text), text
    else:
        assert re.fullmatch(f"{MINUS}?\\d+\\.\\d{{{decimals}}}", text), (text, decimals)
    assert abs(number(text) - value) <= 0.5 * 10**-decimals + 1e-9, (text, value)


def assert_p_value(text: str, p: float | None) -> None:
    """P values: "< 0.001"; else 2 decimals, 3 below 0.01 or when 2 would print 0.05."""
    if p is None:
        assert text == DASH
    elif p < 0.001:
        assert text == "< 0.001"
    elif p > 0.99:
        assert text == "> 0.99"
    else:
        decimals = 3 if p < 0.01 or 0.045 <= p < 0.055 else 2
        assert_shows(text, p, decimals)


def split_pair(text: str) -> tuple[str, str]:
    """``a (b)`` → (a, b)."""
    match = re.fullmatch(r"(\S+) \((\S+)\)", text)
    assert match, text
    return match.group(1), match.group(2)


def change_rows(results: dict[str, Any], folder: Path) -> list[tuple[dict, list[str]]]:
    tables = html_tables(folder)
    rows = tables["table2_change_from_baseline"][1:] + tables["table4_glucocorticoid_dose"][1:]
    cells = [c for c in results["changes"] if c["outcome"] != "gc_dose_mg"]
    cells += [c for c in results["changes"] if c["outcome"] == "gc_dose_mg"]
    assert len(rows) == len(cells)
    return list(zip(cells, rows, strict=True))


def test_table2_shows_every_change_cell_of_the_results(report) -> None:
    results, folder = report
    for cell, row in change_rows(results, folder):
        assert row[0].startswith(cell["label"]) and cell["unit"] in row[0]
        assert row[1] == str(cell["months"])
        if cell["suppressed"]:
            continue
        decimals = MEASURE_DECIMALS[cell["resolution"]]
        n, baseline, median_iqr, mean_sd, smc, v, p, method = row[2:]
        assert n == str(cell["n"])
        mean, sd = split_pair(baseline)
        assert_shows(mean, cell["mean_baseline"], decimals)
        assert_shows(sd, cell["sd_baseline"], decimals)
        median, quartiles = re.fullmatch(r"(\S+) \((.+)\)", median_iqr).groups()
        q1, q3 = quartiles.split(", ")
        assert_shows(median, cell["median_change"], decimals)
        assert_shows(q1, cell["q1_change"], decimals)
        assert_shows(q3, cell["q3_change"], decimals)
        mean, sd = split_pair(mean_sd)
        assert_shows(mean, cell["mean_change"], decimals)
        assert_shows(sd, cell["sd_change"], decimals)
        if cell["smc"] is None:
            assert smc == DASH
        else:
            estimate, interval = re.fullmatch(r"(\S+) \((.+)\)", smc).groups()
            low, high = interval.split(" to ")
            assert_shows(estimate, cell["smc"], 2)
            assert_shows(low, cell["smc_ci"][0], 2)
            assert_shows(high, cell["smc_ci"][1], 2)
        if cell["V"] is None:
            assert v == DASH
        else:
            assert_shows(v, cell["V"], 0 if float(cell["V"]).is_integer() else 1)
        assert_p_value(p, cell["p_value"])
        if cell["p_value"] is not None:
            assert method == {"exact": "exact", "normal": "normal"}[cell["p_method"]]


def test_suppressed_cells_show_the_rule_and_no_statistic(report) -> None:
    results, folder = report
    minimum = results["plan"]["min_cell"]
    suppressed = [(c, row) for c, row in change_rows(results, folder) if c["suppressed"]]
    if results["plan"]["min_cell"] == 25 or "sample" in folder.parent.name:
        assert suppressed, "these results must exercise suppression"
    for cell, row in suppressed:
        # label, month, then one cell with the rule: no n, no statistic.
        assert len(row) == 3
        assert row[2] == f"Suppressed: {cell['suppression_rule']}"
        assert f"n < {minimum}" in row[2]
    by_key = change_csv_by_cell(folder)
    for cell, _ in suppressed:
        row = by_key[(cell["outcome"], cell["months"])]
        assert row["suppressed"] == "true"
        statistics = {
            k: v
            for k, v in row.items()
            if k not in {"outcome", "measure", "months", "suppressed", "suppression_rule"}
        }
        assert set(statistics.values()) == {""}, statistics
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert markdown.count("Suppressed: ") == len(suppressed)


def test_change_csv_holds_the_unrounded_results(report) -> None:
    results, folder = report
    by_key = change_csv_by_cell(folder)
    assert len(by_key) == len(results["changes"])
    for cell in results["changes"]:
        row = by_key[(cell["outcome"], cell["months"])]
        if cell["suppressed"]:
            continue
        for key in (
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
            "smc_baseline",
            "smc_change",
            "V",
            "p_value",
        ):
            if cell[key] is None:
                assert row[key] == ""
            else:
                assert float(row[key]) == cell[key], key
        low, high = cell["smc_ci"] or (None, None)
        assert row["smc_ci_low"] == ("" if low is None else repr(float(low)))
        assert row["smc_ci_high"] == ("" if high is None else repr(float(high)))
        assert row["p_method"] == cell["p_method"]


def table1_rows(folder: Path) -> dict[tuple[str, str], str]:
    """(section heading, row label) → value; rows above any heading have section ""."""
    rows, section = {}, ""
    for row in html_tables(folder)["table1_cohort"][1:]:
        if len(row) == 1:
            section = row[0]
        else:
            rows[(section, row[0])] = row[1]
    return rows


GROUP_LABELS = {
    "drugs": (
        "JAK inhibitor, n (%)",
        {
            "tofacitinib": "Tofacitinib",
            "baricitinib": "Baricitinib",
            "upadacitinib": "Upadacitinib",
            "filgotinib": "Filgotinib",
            "ruxolitinib": "Ruxolitinib",
            "other": "Other JAK inhibitor",
        },
    ),
    "sex": ("Sex, n (%)", {"F": "Female", "M": "Male", "missing": "Not recorded"}),
    "ssc_subset": (
        "SSc subset, n (%)",
        {
            "lcSSc": "Limited cutaneous (lcSSc)",
            "dcSSc": "Diffuse cutaneous (dcSSc)",
            "other": "Other",
            "missing": "Not recorded",
        },
    ),
}


def test_table1_cohort_matches_the_results(report) -> None:
    results, folder = report
    cohort = results["cohort"]
    rows = table1_rows(folder)
    assert rows[("", "Patients")] == str(cohort["patients"])
    assert rows[("", "Centres contributing")] == str(cohort["centres"])
    for group, (heading, labels) in GROUP_LABELS.items():
        assert set(cohort[group]) == set(labels)
        for name, count in cohort[group].items():
            shown, percent = split_pair(rows[(heading, labels[name])])
            assert shown == str(count)
            assert percent.endswith("%")
            assert_shows(percent.rstrip("%"), 100 * count / cohort["patients"], 1)
    followup = cohort["followup_months"]
    last = "SSc subset, n (%)"
    text = rows[(last, "Follow-up on treatment, months, median (IQR)")]
    median, quartiles = re.fullmatch(r"(\S+) \((.+)\)", text).groups()
    q1, q3 = quartiles.split(", ")
    assert_shows(median, followup["median"], 1)
    assert_shows(q1, followup["q1"], 1)
    assert_shows(q3, followup["q3"], 1)
    assert_shows(rows[(last, "Patient-years on treatment")], cohort["patient_years"], 1)
    table = {(r["characteristic"], r["category"]): r for r in csv_rows(folder, "table1_cohort")}
    assert float(table[("patient_years", "")]["value"]) == cohort["patient_years"]
    assert float(table[("followup_months", "median")]["value"]) == followup["median"]
    for name, count in cohort["drugs"].items():
        assert int(table[("drugs", name)]["n"]) == count


def test_calcinosis_and_digital_ulcers_match_the_results(report) -> None:
    results, folder = report
    rows = {row[0]: row[1] for row in html_tables(folder)["table3_calcinosis_digital_ulcers"][1:]}
    calcinosis, patients = results["calcinosis"], results["cohort"]["patients"]
    improved = rows["Calcinosis improved, of those with calcinosis at baseline"]
    fraction, percent = split_pair(improved)
    assert fraction == f"{calcinosis['improved']}/{calcinosis['baseline_present']}"
    assert_shows(
        percent.rstrip("%"), 100 * calcinosis["improved"] / calcinosis["baseline_present"], 1
    )
    fraction, percent = split_pair(rows["Developed digital ulcers on treatment"])
    assert fraction == f"{results['digital_ulcers']['patients']}/{patients}"
    assert_shows(percent.rstrip("%"), 100 * results["digital_ulcers"]["patients"] / patients, 1)


def test_glucocorticoid_table_names_the_subgroup(report) -> None:
    results, folder = report
    html = (folder / "report.html").read_text(encoding="utf-8")
    on_gc = results["glucocorticoids"]["baseline_on_gc"]
    assert f"(n = {on_gc} on glucocorticoids at baseline)" in html
    rows = html_tables(folder)["table4_glucocorticoid_dose"][1:]
    assert len(rows) == sum(c["outcome"] == "gc_dose_mg" for c in results["changes"])
    assert all(row[0].startswith("Glucocorticoid dose") for row in rows)


def test_safety_table_has_every_event_type_with_rate_and_exact_ci(report) -> None:
    results, folder = report
    rows = html_tables(folder)["table5_safety"][1:]
    assert len(rows) == len(results["safety"]) == 9
    patients = results["cohort"]["patients"]
    shown = {row[0]: row for row in rows}
    labels = {
        "herpes_zoster": "Herpes zoster",
        "vte": "Venous thromboembolism",
        "infection": "Infection",
        "death": "Death",
    }
    for entry in results["safety"]:
        if entry["event_type"] not in labels:
            continue
        _, events, patients_cell, rate_cell = shown[labels[entry["event_type"]]]
        assert events == str(entry["events"])
        count, percent = split_pair(patients_cell)
        assert count == str(entry["patients"])
        assert_shows(percent.rstrip("%"), 100 * entry["patients"] / patients, 1)
        rate, interval = re.fullmatch(r"(\S+) \((.+)\)", rate_cell).groups()
        low, high = interval.split(" to ")
        assert_shows(rate, entry["rate_per_100py"], 1)
        assert_shows(low, entry["ci"][0], 1)
        assert_shows(high, entry["ci"][1], 1)
    by_type = {r["event_type"]: r for r in csv_rows(folder, "table5_safety")}
    for entry in results["safety"]:
        assert int(by_type[entry["event_type"]]["events"]) == entry["events"]
        assert float(by_type[entry["event_type"]]["ci_high"]) == entry["ci"][1]


def _markdown_tables(text: str) -> list[list[list[str]]]:
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            if not re.fullmatch(r"\|[-:|]+\|", line):
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
                current.append(cells)
        else:
            current = None
    return tables


def test_markdown_tables_hold_the_same_cells_as_the_html(report) -> None:
    _, folder = report
    html = list(html_tables(folder).values())
    markdown = _markdown_tables((folder / "report.md").read_text(encoding="utf-8"))
    assert len(markdown) == len(html)
    for html_rows, md_rows in zip(html, markdown, strict=True):
        assert len(html_rows) == len(md_rows)
        for html_row, md_row in zip(html_rows, md_rows, strict=True):
            md_cells = [c.strip("*") for c in md_row if c]
            assert md_cells == [c for c in html_row if c]


def test_provenance_states_plan_hash_versions_date_centres_and_rule(report) -> None:
    results, folder = report
    for name in ("report.html", "report.md"):
        text = (folder / name).read_text(encoding="utf-8")
        assert results["plan_sha256"] in text
        assert results["created"] in text
        assert f"sscjak {results['software']['sscjak']}" in text
        assert f"Flower {results['software']['flwr']}" in text
        assert f"Data from {results['nodes']} centres" in text
        assert f"pooled n &lt; {results['plan']['min_cell']}" in text or (
            f"pooled n < {results['plan']['min_cell']}" in text
        )
        assert "Wilcoxon" in text and "Becker 1988" in text and "type 7" in text
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert results["plan"]["toml"].strip() in markdown


def test_numbers_are_never_nan_or_infinite(report) -> None:
    _, folder = report
    for path in [folder / "report.html", folder / "report.md", *(folder / "tables").glob("*.csv")]:
        # Embedded figures are base64, whose letters may spell anything: leave them out.
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", path.read_text("utf-8"))
        assert not re.search(r"\b(nan|NaN|inf|Infinity|None)\b", text), path


def test_exact_conditional_p_gets_its_own_column_when_the_plan_asks(tmp_path: Path) -> None:
    results = simulate_results(tmp_path, "exact_conditional_p = true\n")
    write_report(results, tmp_path / "report")
    tables = html_tables(tmp_path / "report")
    header, *rows = tables["table2_change_from_baseline"]
    assert header[-1] == "p, exact conditional"
    cells = [c for c in results["changes"] if c["outcome"] != "gc_dose_mg"]
    checked = 0
    for cell, row in zip(cells, rows, strict=True):
        if cell["suppressed"]:
            continue
        assert_p_value(row[-1], cell["p_value_exact_conditional"])
        checked += cell["p_value_exact_conditional"] is not None
    assert checked > 0
    by_key = change_csv_by_cell(tmp_path / "report")
    for cell in cells:
        value = by_key[(cell["outcome"], cell["months"])]["p_value_exact_conditional"]
        expected = cell.get("p_value_exact_conditional")
        assert value == ("" if expected is None else repr(float(expected)))


def test_table1_shows_age_at_jaki_start_as_median_and_iqr(report) -> None:
    results, folder = report
    age = results["cohort"]["age_at_start_years"]
    rows = {row[0]: row[1:] for row in html_tables(folder)["table1_cohort"] if row}
    shown = rows["Age at JAKi start, years, median (IQR)"][0]
    if age["suppressed"]:
        assert shown.startswith("Suppressed")
    else:
        median, q1, q3 = (round(age[k]) for k in ("median", "q1", "q3"))
        assert shown.startswith(f"{median} ({q1}, {q3})") and f"n = {age['n']}" in shown
    unavailable = age["birth_year_missing"] + age["outside_0_120"]
    label = "Age not available (birth year not recorded or implausible), n (%)"
    assert rows[label][0].startswith(f"{unavailable} (")
    # Only median and quartiles are released: no age histogram in results or report.
    assert "age" not in json.dumps(results["distributions"])
