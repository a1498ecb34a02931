"""The report's section "Heterogeneity between centres" and the terminal table's block of
the same name: one row per change cell with Cochran's Q, I², τ² and the random-effects SMC;
a suppressed row with its rule and no statistic; neither the section
nor the block (and the report as before) for results without ``heterogeneity``.

The results are real: the bundled demo centres pooled in process, the random-effects
exchange included, under plans asking for the heterogeneity with a small minimum per
centre (cells shown), a large one (every cell suppressed) and the demo plan's strata and
time to event (the section comes last). Every check compares the tables, the written
files, the report's text and the terminal table with results.json, formatted here
independently of the report's code.
"""

from __future__ import annotations

import copy
import csv
import json
import re
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from html import escape, unescape
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import pytest

from sscjak.coordinator.federation.in_process import (
    pool_centre_summaries,
    pool_random_effects,
)
from sscjak.coordinator.report.tables import ReportTable, report_tables
from sscjak.coordinator.report.write_report import ReportFiles, write_report
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.coordinator.results.results_table import format_results_table
from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders, demo_plan
from sscjak.shared.plan import default_plan

SECTION = "Heterogeneity between centres"
TERMINAL_TITLE = "Heterogeneity between centres (DerSimonian–Laird)"
MINUS = "\u2212"
DASH = "—"
HEADER = (
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

#: Plans of the results checked: (name, (base plan, changes to it)).
PLANS: dict[str, tuple[str, dict[str, Any]]] = {
    "min_centre_n_3": ("default", {"heterogeneity": True, "min_centre_n": 3}),
    "min_centre_n_20": ("default", {"heterogeneity": True, "min_centre_n": 20}),
    "by_drug_min_cell_10": ("demo", {"heterogeneity": True, "min_centre_n": 3, "min_cell": 10}),
}


def pooled_results(base: str, random_effects: bool = True, **changes: Any) -> dict[str, Any]:
    """Results of the demo centres pooled in process, with the random-effects exchange
    (``random_effects``) or without it."""
    plan = replace(demo_plan() if base == "demo" else default_plan(), **changes)
    folders = list(demo_centre_folders().values())
    pooled, nodes = pool_centre_summaries(folders, plan)
    second = pool_random_effects(folders, plan, pooled) if random_effects else None
    # Through JSON, as the report reads a results file.
    return json.loads(json.dumps(build_results(pooled, plan, nodes, second)))


@pytest.fixture(scope="module", params=list(PLANS))
def results(request: pytest.FixtureRequest) -> dict[str, Any]:
    base, changes = PLANS[request.param]
    return pooled_results(base, **changes)


@pytest.fixture(scope="module")
def shown_results() -> dict[str, Any]:
    """Results with shown rows (and, with four demo centres, suppressed ones too)."""
    base, changes = PLANS["min_centre_n_3"]
    return pooled_results(base, **changes)


@pytest.fixture(scope="module")
def written(
    results: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("heterogeneity") / "report"
    write_report(results, folder)
    return results, folder


def heterogeneity_table(results: dict[str, Any]) -> ReportTable:
    (table,) = [t for t in report_tables(results) if t.section == SECTION]
    return table


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


def measure_name(results: dict[str, Any], row: dict[str, Any]) -> str:
    """``label (unit)``, the unit from the change cell of the same measure and month."""
    (cell,) = [
        c
        for c in results["changes"]
        if (c["outcome"], c["months"]) == (row["outcome"], row["months"])
    ]
    return f"{row['label']} ({cell['unit']})"


def expected_cells(results: dict[str, Any], row: dict[str, Any]) -> tuple[str, ...]:
    """The cells of one row of the heterogeneity table, as the report must show them."""
    head = (measure_name(results, row), str(row["months"]))
    if row["suppressed"]:
        return (*head, f"Suppressed: {row['suppression_rule']}")
    random = row["random_effects"]
    if random is None:
        random_text = p_random = DASH
    else:
        low, high = random["ci"]
        random_text = f"{shown(random['estimate'], 2)} ({shown(low, 2)} to {shown(high, 2)})"
        p_random = p_shown(random["p_value"])
    return (
        *head,
        f"{row['centres']} ({row['centres_left_out']})",
        f"{shown(row['q'], 2)} ({row['df']})",
        p_shown(row["p_value"]),
        f"{shown(row['i2_percent'], 1)}%",
        shown(row["tau2"], 4),
        random_text,
        p_random,
    )


def kinds(results: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The shown and the suppressed rows of the results."""
    rows = results["heterogeneity"]
    return [r for r in rows if not r["suppressed"]], [r for r in rows if r["suppressed"]]


def test_the_results_exercise_shown_and_suppressed_rows(results: dict[str, Any]) -> None:
    shown_rows, suppressed = kinds(results)
    cells = [(c["outcome"], c["months"]) for c in results["changes"]]
    assert [(r["outcome"], r["months"]) for r in results["heterogeneity"]] == cells
    if results["plan"]["min_centre_n"] == 20:
        assert suppressed and not shown_rows
    else:
        assert shown_rows and suppressed
        assert all(r["random_effects"] is not None for r in shown_rows)


def test_the_table_rows_match_the_results(results: dict[str, Any]) -> None:
    tables = report_tables(results)
    table = heterogeneity_table(results)
    # The last table, numbered after the time-to-event tables and those by stratum.
    assert tables[-1] == table
    number = 6 + sum(t.section in ("Time to event", "By stratum") for t in tables)
    assert table.key == f"table{number}_heterogeneity_between_centres"
    assert table.title.startswith(f"Table {number}. Heterogeneity between centres")
    assert table.header == HEADER
    assert len(table.rows) == len(results["heterogeneity"])
    for report_row, row in zip(table.rows, results["heterogeneity"], strict=True):
        assert report_row.cells == expected_cells(results, row)
        if row["suppressed"]:
            assert report_row.kind == "suppressed" and report_row.span_from == 2
        else:
            assert report_row.kind == "data"


def test_the_note_says_what_the_table_is(results: dict[str, Any]) -> None:
    notes = " ".join(heterogeneity_table(results).notes)
    plan = results["plan"]
    assert "DerSimonian–Laird random-effects meta-analysis" in notes
    assert 'metafor rma(yi, vi, method = "DL")' in notes
    assert "Each centre's estimate never left it: only secure sums" in notes
    assert f"Centres with fewer than {plan['min_centre_n']} patients in a cell" in notes
    assert f"pooled n < {plan['min_cell']}" in notes
    assert "mean change / SD of baseline values" in notes
    assert "random-effects exchange was not run" not in notes


def md_section_rows(markdown: str) -> list[list[str]]:
    section = markdown[markdown.index(f"## {SECTION}") : markdown.index("## Statistical")]
    return [
        [cell.strip() for cell in line[1:-1].split(" | ")]
        for line in section.splitlines()
        if line.startswith("|") and not re.fullmatch(r"\|[-:|]+\|", line)
    ]


def html_section_rows(html: str) -> list[list[str]]:
    section = html[html.index(f"<h2>{SECTION}</h2>") : html.index("<h2>Statistical")]
    return [
        [
            unescape(re.sub(r"<[^>]+>", "", cell))
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S)
    ]


def test_markdown_and_html_show_the_section_last(written) -> None:
    results, folder = written
    html = (folder / "report.html").read_text(encoding="utf-8")
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    headings = ["Tables", "Figures"]
    if results.get("time_to_event"):
        headings.append("Time to event")
    if results.get("stratified"):
        headings.append("By stratum")
    headings += [SECTION, "Statistical methods", "Provenance"]
    assert re.findall(r"<h2>([^<]+)</h2>", html) == headings
    assert re.findall(r"^## (.+)$", markdown, re.M) == headings
    expected = [expected_cells(results, row) for row in results["heterogeneity"]]
    width = len(HEADER)
    assert md_section_rows(markdown) == [
        list(HEADER),
        *([*cells, *[""] * (width - len(cells))] for cells in expected),
    ]
    assert html_section_rows(html) == [list(HEADER), *map(list, expected)]
    note = heterogeneity_table(results).notes[0]
    assert f"- {note}" in markdown
    assert f"<li>{escape(note)}</li>" in html


def test_suppressed_rows_show_their_rule_and_no_statistic(written) -> None:
    results, folder = written
    _, suppressed = kinds(results)
    assert suppressed, "these results must exercise suppression"
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    html = (folder / "report.html").read_text(encoding="utf-8")
    md_rows = md_section_rows(markdown)
    html_rows = html_section_rows(html)
    for row in suppressed:
        label, months = measure_name(results, row), str(row["months"])
        rule = f"Suppressed: {row['suppression_rule']}"
        # The rule across the statistics' columns, which are empty in Markdown.
        assert [label, months, rule, *[""] * (len(HEADER) - 3)] in md_rows
        assert [label, months, rule] in html_rows
    spanned = f'<td class="rule" colspan="{len(HEADER) - 2}">Suppressed: '
    assert html.count(spanned) == len(suppressed)
    section = html[html.index(f"<h2>{SECTION}</h2>") : html.index("<h2>Statistical")]
    assert section.count('<tr class="suppressed">') == len(suppressed)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def value(x: Any) -> str:
    if x is None:
        return ""
    return repr(x) if isinstance(x, float) else str(x)


def test_the_csv_holds_the_unrounded_values(written) -> None:
    results, folder = written
    table = heterogeneity_table(results)
    rows = csv_rows(folder / "tables" / f"{table.key}.csv")
    assert len(rows) == len(results["heterogeneity"])
    for csv_row, row in zip(rows, results["heterogeneity"], strict=True):
        assert (csv_row["outcome"], csv_row["months"]) == (row["outcome"], str(row["months"]))
        assert csv_row["centres"] == str(row["centres"])
        assert csv_row["centres_left_out"] == str(row["centres_left_out"])
        assert csv_row["suppressed"] == ("true" if row["suppressed"] else "false")
        if row["suppressed"]:
            assert csv_row["suppression_rule"] == row["suppression_rule"]
            assert csv_row["q"] == csv_row["tau2"] == csv_row["random_effects_estimate"] == ""
            continue
        for key in ("q", "df", "p_value", "i2_percent", "h2", "tau2"):
            assert csv_row[key] == value(row[key]), key
        assert "fixed_effect_estimate" not in csv_row
        random = row["random_effects"]
        assert csv_row["random_effects_estimate"] == value(random["estimate"])
        assert csv_row["random_effects_ci_low"] == value(random["ci"][0])
        assert csv_row["random_effects_ci_high"] == value(random["ci"][1])
        assert csv_row["random_effects_p_value"] == value(random["p_value"])


TERMINAL_LINE = re.compile(
    r"(?P<label>.+?) +(?P<months>\d+) +(?P<k>\d+) \((?P<out>\d+)\) +(?P<q>\S+) +(?P<p>\S+) +"
    r"(?P<i2>\S+)% +(?P<tau2>\S+)  (?P<smc>\S+) \((?P<low>\S+), (?P<high>\S+)\)"
)


def p_terminal(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def test_the_terminal_table_shows_the_block(results: dict[str, Any]) -> None:
    text = format_results_table(results)
    lines = text.splitlines()
    start = lines.index(TERMINAL_TITLE)
    block = lines[start + 2 :]
    assert len(block) == len(results["heterogeneity"])
    for line, row in zip(block, results["heterogeneity"], strict=True):
        if row["suppressed"]:
            assert re.fullmatch(
                rf"{re.escape(row['label'])} +{row['months']} +suppressed "
                rf"\({re.escape(row['suppression_rule'])}\)",
                line,
            ), line
            continue
        match = TERMINAL_LINE.fullmatch(line)
        assert match, line
        random = row["random_effects"]
        assert match.groupdict() == {
            "label": row["label"],
            "months": str(row["months"]),
            "k": str(row["centres"]),
            "out": str(row["centres_left_out"]),
            "q": f"{row['q']:.2f}",
            "p": p_terminal(row["p_value"]),
            "i2": f"{row['i2_percent']:.1f}",
            "tau2": f"{row['tau2']:.4f}",
            "smc": f"{random['estimate']:.2f}",
            "low": f"{random['ci'][0]:.2f}",
            "high": f"{random['ci'][1]:.2f}",
        }


def without_heterogeneity(results: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in results.items() if key != "heterogeneity"}


@pytest.fixture(scope="module")
def written_without(
    results: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> ReportFiles:
    """The report of the same results with the heterogeneity left out."""
    folder = tmp_path_factory.mktemp("without-heterogeneity") / "report"
    return write_report(without_heterogeneity(results), folder)


def test_no_section_or_block_without_heterogeneity(
    results: dict[str, Any], written_without: ReportFiles
) -> None:
    without = without_heterogeneity(results)
    tables = report_tables(without)
    assert tables == tuple(t for t in report_tables(results) if t.section != SECTION)
    assert report_tables(without | {"heterogeneity": []}) == tables
    files = written_without
    html = files.html.read_text(encoding="utf-8")
    markdown = files.markdown.read_text(encoding="utf-8")
    for text in (html, markdown):
        assert SECTION not in text and "DerSimonian" not in text and "Cochran" not in text
    assert not [p for p in files.tables if "heterogeneity" in p.name]
    # The terminal table is the one without the section, the block appended to it.
    terminal = format_results_table(without)
    assert TERMINAL_TITLE not in terminal
    assert format_results_table(results).startswith(f"{terminal}\n\n{TERMINAL_TITLE}\n")


def test_the_report_is_otherwise_unchanged_by_the_section(
    written, written_without: ReportFiles
) -> None:
    _, folder = written
    files = written_without
    with_section = (folder / "report.md").read_text(encoding="utf-8")
    plain = files.markdown.read_text(encoding="utf-8")
    start = with_section.index(f"## {SECTION}")
    end = with_section.index("## Statistical methods")
    assert with_section[:start] + with_section[end:] == plain


def test_rows_without_the_random_effects_exchange_show_dashes() -> None:
    base, changes = PLANS["min_centre_n_3"]
    results = pooled_results(base, random_effects=False, **changes)
    shown_rows, _ = kinds(results)
    assert shown_rows and all(r["random_effects"] is None for r in shown_rows)
    table = heterogeneity_table(results)
    for report_row, row in zip(table.rows, results["heterogeneity"], strict=True):
        assert report_row.cells == expected_cells(results, row)
        if not row["suppressed"]:
            assert report_row.cells[-2:] == (DASH, DASH)
            assert report_row.cells[3] == f"{shown(row['q'], 2)} ({row['df']})"
    assert any("random-effects exchange was not run" in note for note in table.notes)
    terminal = format_results_table(results)
    assert terminal.count(f"  {DASH} ({DASH}, {DASH})") == len(shown_rows)


def test_undefined_statistics_are_dashes(shown_results: dict[str, Any]) -> None:
    changed = copy.deepcopy(shown_results)
    row = next(r for r in changed["heterogeneity"] if not r["suppressed"])
    row["i2_percent"] = row["p_value"] = None
    index = changed["heterogeneity"].index(row)
    cells = heterogeneity_table(changed).rows[index].cells
    assert cells[4] == DASH and cells[5] == DASH
    line = format_results_table(changed).splitlines()[-len(changed["heterogeneity"]) + index]
    assert re.search(rf" {DASH} +{DASH} ", line), line
