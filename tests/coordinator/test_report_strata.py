"""The report's section "By stratum": change from baseline per stratum of the plan's ``by``
with the tests between strata, and adverse events per stratum; no such section (and the
report as before) for results without ``stratified``.

The results are real: the bundled demo centres pooled in process under the demo plan (by
JAK inhibitor, time to event asked for), with the minimum cell raised to 10 (so that
whole strata are suppressed, and a cell has no test between strata), and by sex (two
strata, so that the Wilcoxon rank-sum test is given). Every check compares the tables,
the written files and the text of the report with results.json, formatted here
independently of the report's code.
"""

from __future__ import annotations

import copy
import csv
import json
import re
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from html import escape
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import pytest

from sscjak.coordinator.federation.in_process import pool_centre_summaries
from sscjak.coordinator.report.provenance import methods_paragraph, provenance_items
from sscjak.coordinator.report.tables import ReportTable, report_tables
from sscjak.coordinator.report.write_report import write_report
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders, demo_plan

SAMPLE_RESULTS = Path(__file__).with_name("report_sample_results.json")
SECTION = "By stratum"
MINUS = "\u2212"
DASH = "—"
STRATUM_NAMES = {
    "tofacitinib": "Tofacitinib",
    "baricitinib": "Baricitinib",
    "upadacitinib": "Upadacitinib",
    "filgotinib": "Filgotinib",
    "ruxolitinib": "Ruxolitinib",
    "other": "Other JAK inhibitor",
    "F": "Female",
    "M": "Male",
}
BY_NAMES = {"jaki_drug": ("JAK inhibitor", "JAK inhibitor"), "sex": ("Sex", "sex")}
EVENT_NAMES = {
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
MEASURE_DECIMALS = {0.1: 1, 1.0: 1, 0.25: 2}
STRATA = {
    "jaki_drug": [
        "tofacitinib",
        "baricitinib",
        "upadacitinib",
        "filgotinib",
        "ruxolitinib",
        "other",
    ],
    "sex": ["F", "M"],
}

#: Plans of the results checked: (name, changes to the demo plan).
PLANS: dict[str, dict[str, Any]] = {
    "by_drug": {},
    "by_drug_min_cell_10": {"min_cell": 10},
    "by_sex": {"by": "sex"},
}


def pooled_results(**changes: Any) -> dict[str, Any]:
    """Results of the demo centres pooled in process under the demo plan changed so."""
    plan = replace(demo_plan(), **changes)
    pooled, nodes = pool_centre_summaries(list(demo_centre_folders().values()), plan)
    # Through JSON, as the report reads a results file.
    return json.loads(json.dumps(build_results(pooled, plan, nodes)))


@pytest.fixture(scope="module", params=list(PLANS))
def results(request: pytest.FixtureRequest) -> dict[str, Any]:
    return pooled_results(**PLANS[request.param])


@pytest.fixture(scope="module")
def written(
    results: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("strata") / "report"
    write_report(results, folder)
    return results, folder


def strata_tables(results: dict[str, Any]) -> tuple[ReportTable, ReportTable]:
    change, safety = (t for t in report_tables(results) if t.section == SECTION)
    return change, safety


def first_number(results: dict[str, Any]) -> int:
    """Number of the first table by stratum: after Tables 1–5 and the time-to-event ones."""
    return 6 + len(results.get("time_to_event") or [])


# Formatting, written independently of coordinator/report/formatting.py.


def shown(value: float | None, decimals: int) -> str:
    """Rounded half away from zero on the printed value, a true minus, no "−0.0"."""
    if value is None:
        return DASH
    rounded = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)
    text = f"{abs(rounded) if rounded == 0 else rounded:.{decimals}f}"
    return text.replace("-", MINUS)


def p_shown(p: float | None) -> str:
    if p is None:
        return DASH
    if p < 0.001:
        return "< 0.001"
    if p > 0.99:
        return "> 0.99"
    return shown(p, 3 if p < 0.01 or 0.045 <= p < 0.055 else 2)


def p_words(p: float | None) -> str:
    text = p_shown(p)
    return f"p {text}" if text[0] in "<>" else f"p = {text}"


def rank_statistic(value: float) -> str:
    return shown(value, 0 if float(value).is_integer() else 1)


def number(text: str) -> float:
    return float(text.replace(MINUS, "-"))


def assert_close(text: str, value: float | None, decimals: int) -> None:
    """``text`` is ``value`` with ``decimals`` decimals (quantiles may carry more)."""
    if value is None:
        assert text == DASH
        return
    assert "-" not in text, text
    assert abs(number(text) - value) <= 0.5 * 10**-decimals + 1e-9, (text, value)


def assert_change_cells(cells: tuple[str, ...], row: dict[str, Any]) -> None:
    """n, mean change (SD), median change (IQR), SMC (95% CI), signed-rank p of a row."""
    decimals = MEASURE_DECIMALS[row["resolution"]]
    n, mean_sd, median_iqr, smc, p = cells
    assert n == str(row["n"])
    mean, sd = re.fullmatch(r"(\S+) \((\S+)\)", mean_sd).groups()
    assert_close(mean, row["mean_change"], decimals)
    assert_close(sd, row["sd_change"], decimals)
    median, q1, q3 = re.fullmatch(r"(\S+) \((\S+), (\S+)\)", median_iqr).groups()
    assert_close(median, row["median_change"], decimals)
    assert_close(q1, row["q1_change"], decimals)
    assert_close(q3, row["q3_change"], decimals)
    low, high = row["smc_ci"] or (None, None)
    if row["smc"] is None:
        assert smc == DASH
    elif low is None or high is None:  # no interval: the estimate alone
        assert smc == shown(row["smc"], 2)
    else:
        assert smc == f"{shown(row['smc'], 2)} ({shown(low, 2)} to {shown(high, 2)})"
    assert p == p_shown(row["p_value"])


def expected_tests(entry: dict[str, Any]) -> list[str]:
    """The rows of the tests between strata of one cell, as the report must show them."""
    kruskal, wilcoxon = entry["kruskal"], entry["wilcoxon"]
    if kruskal is None:
        assert wilcoxon is None
        return [
            "Tests between strata: not available (the whole-cohort cell is suppressed, or "
            "fewer than two strata have patients in the cell)."
        ]
    suppressed = {r["stratum"] for r in entry["strata"] if r["suppressed"]}

    def included(strata: list[str]) -> str:
        names = [STRATUM_NAMES[s] for s in strata if s in suppressed]
        return f"; suppressed strata included: {', '.join(names)}" if names else ""

    h = DASH if kruskal["statistic"] is None else shown(kruskal["statistic"], 2)
    rows = [
        f"Kruskal–Wallis: H = {h}, df = {kruskal['df']}, {p_words(kruskal['p_value'])}"
        + included(kruskal["strata"])
    ]
    if wilcoxon is not None:
        method = f" ({wilcoxon['method']})" if wilcoxon["method"] else ""
        rows.append(
            f"Wilcoxon rank-sum: W = {rank_statistic(wilcoxon['statistic_w'])}, "
            f"{p_words(wilcoxon['p_value'])}{method}" + included(wilcoxon["strata"])
        )
    return rows


def test_change_by_stratum_rows_match_the_results(results: dict[str, Any]) -> None:
    stratified = results["stratified"]
    by = stratified["by"]
    change, _ = strata_tables(results)
    number_ = first_number(results)
    assert change.key == f"table{number_}_change_by_{by}"
    assert change.title == f"Table {number_}. Change from baseline by {BY_NAMES[by][1]}"
    assert change.header == (
        BY_NAMES[by][0],
        "n",
        "Change, mean (SD)",
        "Change, median (IQR)",
        "SMC (95% CI)",
        "p, signed-rank",
    )
    rows = list(change.rows)
    for entry in stratified["changes"]:
        first = entry["strata"][0]
        heading = rows.pop(0)
        assert heading.kind == "section"
        assert heading.cells == (f"{first['label']} ({first['unit']}) at {entry['months']} months",)
        # Every stratum, in the data contract's order.
        assert [r["stratum"] for r in entry["strata"]] == STRATA[by]
        for stratum_row in entry["strata"]:
            row = rows.pop(0)
            name = STRATUM_NAMES[stratum_row["stratum"]]
            assert row.cells[0] == name
            if stratum_row["suppressed"]:
                assert row.kind == "suppressed" and row.span_from == 1
                assert row.cells == (name, f"Suppressed: {stratum_row['suppression_rule']}")
                continue
            assert row.kind == "data"
            assert_change_cells(row.cells[1:], stratum_row)
        tests = expected_tests(entry)
        for text in tests:
            row = rows.pop(0)
            assert row.kind == "note" and row.cells == (text,)
    assert rows == []
    assert any(
        n.endswith(f"not recorded: {stratified['left_out_missing_stratum']}.") for n in change.notes
    )


def test_the_tests_between_strata_are_those_of_the_results(results: dict[str, Any]) -> None:
    change, _ = strata_tables(results)
    notes = [row.cells[0] for row in change.rows if row.kind == "note"]
    entries = results["stratified"]["changes"]
    assert notes == [text for entry in entries for text in expected_tests(entry)]
    wilcoxon = [entry for entry in entries if entry["wilcoxon"] is not None]
    if results["stratified"]["by"] == "sex":
        # Two strata: the rank-sum test is given, with its method, for the cells it has.
        assert wilcoxon
        assert sum(text.startswith("Wilcoxon rank-sum: W = ") for text in notes) == len(wilcoxon)
        assert {entry["wilcoxon"]["method"] for entry in wilcoxon} <= {"exact", "normal"}
        assert any(re.search(r"\((exact|normal)\)$", text) for text in notes)
    else:
        assert not wilcoxon and not any("Wilcoxon rank-sum" in text for text in notes)
    if results["plan"]["min_cell"] == 10:
        assert any(entry["kruskal"] is None for entry in entries)
        assert any(text.startswith("Tests between strata: not available") for text in notes)
    # A test over strata suppressed in the cell names them.
    assert any("suppressed strata included: " in text for text in notes)


def test_suppressed_strata_show_the_rule_and_no_statistic(written) -> None:
    results, folder = written
    stratified = results["stratified"]
    suppressed_cells = [
        (entry, row)
        for entry in stratified["changes"]
        for row in entry["strata"]
        if row["suppressed"]
    ]
    assert suppressed_cells, "these results must exercise suppression"
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    section = markdown[markdown.index(f"## {SECTION}") : markdown.index("## Statistical")]
    for _entry, row in suppressed_cells:
        assert set(row) == {
            "outcome",
            "months",
            "label",
            "unit",
            "resolution",
            "benefit",
            "suppressed",
            "suppression_rule",
            "stratum",
        }
    # Each suppressed cell, and each suppressed stratum of the safety table, once.
    suppressed_strata = [s for s in stratified["strata"] if s["suppressed"]]
    assert section.count("| Suppressed: ") == len(suppressed_cells) + len(suppressed_strata)
    _, safety = strata_tables(results)
    for stratum in suppressed_strata:
        (index,) = [
            i
            for i, row in enumerate(safety.rows)
            if row.kind == "section" and row.cells[0].startswith(STRATUM_NAMES[stratum["stratum"]])
        ]
        row = safety.rows[index + 1]
        assert row.kind == "suppressed" and row.span_from == 1
        assert row.cells == ("All event types", f"Suppressed: {stratum['suppression_rule']}")
    if results["plan"]["min_cell"] == 10:
        assert [s["stratum"] for s in suppressed_strata] == ["filgotinib", "ruxolitinib", "other"]


def test_safety_by_stratum_matches_the_results(results: dict[str, Any]) -> None:
    stratified = results["stratified"]
    _, safety = strata_tables(results)
    number_ = first_number(results) + 1
    assert safety.key == f"table{number_}_safety_by_{stratified['by']}"
    assert safety.header == (
        "Event type",
        "Events",
        "Patients, n (%)",
        "Rate per 100 patient-years (95% CI)",
    )
    rows = list(safety.rows)
    for stratum in stratified["strata"]:
        heading = rows.pop(0)
        centres = "centre" if stratum["centres"] == 1 else "centres"
        assert heading.kind == "section"
        assert heading.cells == (
            f"{STRATUM_NAMES[stratum['stratum']]}: {stratum['patients']} patients, "
            f"{shown(stratum['patient_years'], 1)} patient-years, "
            f"{stratum['centres']} {centres}",
        )
        if stratum["suppressed"]:
            assert rows.pop(0).kind == "suppressed"
            continue
        assert [e["event_type"] for e in stratum["safety"]] == list(EVENT_NAMES)
        for entry in stratum["safety"]:
            row = rows.pop(0)
            share = shown(100 * entry["patients"] / stratum["patients"], 1)
            low, high = entry["ci"]
            assert row.cells == (
                EVENT_NAMES[entry["event_type"]],
                str(entry["events"]),
                f"{entry['patients']} ({share}%)",
                f"{shown(entry['rate_per_100py'], 1)} ({shown(low, 1)} to {shown(high, 1)})",
            )
    assert rows == []


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def value(x: Any) -> str:
    if x is None:
        return ""
    return repr(x) if isinstance(x, float) else str(x)


def test_write_report_writes_the_tables_by_stratum_as_csv(written) -> None:
    results, folder = written
    stratified = results["stratified"]
    by = stratified["by"]
    number_ = first_number(results)
    names = sorted(p.name for p in (folder / "tables").glob("*.csv"))
    # Tables numbered consecutively, the two by stratum last.
    numbers = sorted(int(re.match(r"table(\d+)_", n).group(1)) for n in names)
    assert numbers == list(range(1, number_ + 2))
    change_rows = csv_rows(folder / "tables" / f"table{number_}_change_by_{by}.csv")
    cells = [(entry, row) for entry in stratified["changes"] for row in entry["strata"]]
    assert len(change_rows) == len(cells)
    for csv_row, (entry, row) in zip(change_rows, cells, strict=True):
        assert (csv_row["outcome"], int(csv_row["months"])) == (row["outcome"], row["months"])
        assert (csv_row["by"], csv_row["stratum"]) == (by, row["stratum"])
        assert csv_row["suppressed"] == ("true" if row["suppressed"] else "false")
        if row["suppressed"]:
            assert csv_row["suppression_rule"] == row["suppression_rule"]
            assert csv_row["n"] == csv_row["mean_change"] == csv_row["p_value"] == ""
        else:
            for key in ("n", "mean_change", "sd_change", "median_change", "smc", "V", "p_value"):
                assert csv_row[key] == value(row[key]), key
            assert csv_row["smc_ci_low"] == value((row["smc_ci"] or [None])[0])
            assert csv_row["p_method"] == row["p_method"]
        kruskal = entry["kruskal"] or {}
        assert csv_row["kruskal_statistic"] == value(kruskal.get("statistic"))
        assert csv_row["kruskal_p_value"] == value(kruskal.get("p_value"))
        assert csv_row["kruskal_strata"] == ";".join(kruskal.get("strata") or [])
        wilcoxon = entry["wilcoxon"] or {}
        assert csv_row["wilcoxon_statistic_w"] == value(wilcoxon.get("statistic_w"))
        assert csv_row["wilcoxon_method"] == value(wilcoxon.get("method"))
    safety_rows = csv_rows(folder / "tables" / f"table{number_ + 1}_safety_by_{by}.csv")
    expected = []
    for stratum in stratified["strata"]:
        for entry in [None] if stratum["suppressed"] else stratum["safety"]:
            expected.append((stratum, entry))
    assert len(safety_rows) == len(expected)
    for csv_row, (stratum, entry) in zip(safety_rows, expected, strict=True):
        assert csv_row["stratum"] == stratum["stratum"]
        assert csv_row["stratum_patients"] == str(stratum["patients"])
        assert csv_row["stratum_patient_years"] == value(stratum["patient_years"])
        if entry is None:
            assert csv_row["suppression_rule"] == stratum["suppression_rule"]
            assert csv_row["events"] == csv_row["rate_per_100py"] == ""
            continue
        assert csv_row["event_type"] == entry["event_type"]
        assert csv_row["events"] == str(entry["events"])
        assert csv_row["rate_per_100py"] == value(entry["rate_per_100py"])
        assert csv_row["ci_high"] == value(entry["ci"][1])


def html_section_rows(html: str) -> list[list[str]]:
    section = html[html.index(f"<h2>{SECTION}</h2>") : html.index("<h2>Statistical")]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).replace("&lt;", "<").replace("&gt;", ">")
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S)
    ]


def test_html_and_markdown_show_the_section_with_the_same_cells(written) -> None:
    results, folder = written
    html = (folder / "report.html").read_text(encoding="utf-8")
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert re.findall(r"<h2>([^<]+)</h2>", html) == [
        "Tables",
        "Figures",
        "Time to event",
        SECTION,
        "Statistical methods",
        "Provenance",
    ]
    assert re.findall(r"^## (.+)$", markdown, re.M) == [
        "Tables",
        "Figures",
        "Time to event",
        SECTION,
        "Statistical methods",
        "Provenance",
    ]
    md_section = markdown[markdown.index(f"## {SECTION}") : markdown.index("## Statistical")]
    md_rows = [
        [cell.strip().strip("*") for cell in line.strip("|").split("|") if cell.strip()]
        for line in md_section.splitlines()
        if line.startswith("|") and not re.fullmatch(r"\|[-:|]+\|", line)
    ]
    assert html_section_rows(html) == md_rows
    # A test between strata spans the table's six columns, in italics.
    change, _ = strata_tables(results)
    note = next(row.cells[0] for row in change.rows if row.kind == "note")
    assert f'<tr class="note"><td colspan="6"><em>{escape(note)}</em></td></tr>' in html
    assert f"| *{note}* |  |  |  |  |  |" in md_section
    paragraph = methods_paragraph(results)
    assert "Kruskal–Wallis test" in paragraph and "kruskal.test" in paragraph


def test_undefined_tests_are_shown_as_dashes(results: dict[str, Any]) -> None:
    changed = copy.deepcopy(results)
    entry = next(e for e in changed["stratified"]["changes"] if e["kruskal"] is not None)
    entry["kruskal"]["statistic"] = entry["kruskal"]["p_value"] = None
    entry["wilcoxon"] = {"strata": ["F", "M"], "statistic_w": 12.5, "p_value": None, "method": None}
    change, _ = strata_tables(changed)
    notes = [row.cells[0] for row in change.rows if row.kind == "note"]
    assert f"Kruskal–Wallis: H = —, df = {entry['kruskal']['df']}, p = —" in [
        text.split(";")[0] for text in notes
    ]
    assert "Wilcoxon rank-sum: W = 12.5, p = —" in [text.split(";")[0] for text in notes]


def test_no_section_without_stratified(results: dict[str, Any], tmp_path: Path) -> None:
    without = {key: item for key, item in results.items() if key != "stratified"}
    tables = report_tables(without)
    assert tables == tuple(t for t in report_tables(results) if t.section != SECTION)
    assert report_tables(without | {"stratified": None}) == tables
    files = write_report(without, tmp_path / "report")
    html = files.html.read_text(encoding="utf-8")
    markdown = files.markdown.read_text(encoding="utf-8")
    assert SECTION not in html and SECTION not in markdown
    assert "Kruskal" not in html and "Kruskal" not in markdown
    assert not [p for p in files.tables if "_by_" in p.name]


def test_a_version_1_results_file_renders_without_the_section(tmp_path: Path) -> None:
    sample = json.loads(SAMPLE_RESULTS.read_text(encoding="utf-8"))
    assert sample["schema"] == "sscjak.results/1" and "stratified" not in sample
    files = write_report(sample, tmp_path / "report")
    html = files.html.read_text(encoding="utf-8")
    markdown = files.markdown.read_text(encoding="utf-8")
    assert re.findall(r"<h2>([^<]+)</h2>", html) == [
        "Tables",
        "Figures",
        "Statistical methods",
        "Provenance",
    ]
    assert SECTION not in markdown and "Kruskal" not in markdown
    assert 'class="note"' not in html
    assert [p.name for p in files.tables] == [
        "table1_cohort.csv",
        "table2_change_from_baseline.csv",
        "table3_calcinosis_digital_ulcers.csv",
        "table4_glucocorticoid_dose.csv",
        "table5_safety.csv",
    ]
    assert "Strata" not in dict(provenance_items(sample))
