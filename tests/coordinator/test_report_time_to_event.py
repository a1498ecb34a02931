"""The report's time-to-event section: Kaplan–Meier figures that draw exactly the released
curve rows, the numbers at risk below them, one table per endpoint, and no such section
for results without ``time_to_event``.

The results are real: the bundled demo centres pooled in process under plans that ask
for drug retention and time to a new digital ulcer, with the minimum cell raised (so that
strata are suppressed), a week grid (times in days) and no stratification. Every check
compares the figure's drawn points, the tables and the written files with results.json.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import pytest

from sscjak.coordinator.federation.in_process import pool_centre_summaries
from sscjak.coordinator.report.figures import kaplan_meier_figure, report_figures
from sscjak.coordinator.report.provenance import methods_paragraph
from sscjak.coordinator.report.tables import report_tables, time_to_event_table
from sscjak.coordinator.report.write_report import ReportError, write_report
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders
from sscjak.shared.disclosure import DisclosureError
from sscjak.shared.plan import default_plan

SAMPLE_RESULTS = Path(__file__).with_name("report_sample_results.json")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MINUS = "\u2212"
DASH = "—"
MONTH = 30.4375
ENDPOINTS = ("drug_retention", "developed_du")
STRATUM_NAMES = {
    "tofacitinib": "Tofacitinib",
    "baricitinib": "Baricitinib",
    "upadacitinib": "Upadacitinib",
    "filgotinib": "Filgotinib",
    "ruxolitinib": "Ruxolitinib",
    "other": "Other JAK inhibitor",
    "F": "Female",
    "M": "Male",
    "all": "All patients",
}

#: Plans of the results checked: (name, changes to the default plan).
PLANS: dict[str, dict[str, Any]] = {
    "by_drug": {},
    "by_drug_min_cell_10": {"min_cell": 10},
    "by_sex_week_grid": {"by": "sex", "time_grid_days": 7.0, "horizon_months": 60},
    "unstratified": {"by": ""},
}


def pooled_results(**changes: Any) -> dict[str, Any]:
    """Results of the demo centres pooled in process, time to event asked for."""
    plan = replace(default_plan(), time_to_event=ENDPOINTS, by="jaki_drug")
    plan = replace(plan, **changes)
    pooled, nodes = pool_centre_summaries(list(demo_centre_folders().values()), plan)
    # Through JSON, as the report reads a results file.
    return json.loads(json.dumps(build_results(pooled, plan, nodes)))


@pytest.fixture(scope="module", params=list(PLANS))
def results(request: pytest.FixtureRequest) -> dict[str, Any]:
    return pooled_results(**PLANS[request.param])


@pytest.fixture(scope="module")
def suppressing() -> dict[str, Any]:
    """Results whose small strata (filgotinib, ruxolitinib, other) are suppressed."""
    return pooled_results(min_cell=10)


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory, suppressing: dict[str, Any]
) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("tte") / "report"
    write_report(suppressing, folder)
    return suppressing, folder


def scale(entry: dict[str, Any]) -> float:
    """Grid time → the figure's x unit: months on a month grid, else days."""
    return 1.0 if entry["time_grid_days"] == MONTH else float(entry["time_grid_days"])


def shown(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in entry["strata"] if not row["suppressed"]]


_FIGURES: dict[tuple[int, str], tuple[Any, ...]] = {}


def figure_of(results: dict[str, Any], endpoint: str):
    """The Kaplan–Meier figure of ``endpoint`` (drawn once per results and endpoint)."""
    key = (id(results), endpoint)
    if key not in _FIGURES:
        (entry,) = [e for e in results["time_to_event"] if e["endpoint"] == endpoint]
        _FIGURES[key] = (results, kaplan_meier_figure(results, entry, 10))
    return _FIGURES[key][1]


def assert_real_png(png: bytes) -> None:
    assert png.startswith(PNG_SIGNATURE)
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    assert pixels.shape[0] > 300 and pixels.shape[1] > 600
    assert pixels[..., :3].std() > 0.05, "blank image"


def test_each_curve_drawn_is_exactly_its_released_rows(results: dict[str, Any]) -> None:
    minimum = results["plan"]["min_cell"]
    assert [e["endpoint"] for e in results["time_to_event"]] == list(ENDPOINTS)
    for entry in results["time_to_event"]:
        figure = figure_of(results, entry["endpoint"])
        assert_real_png(figure.png)
        factor = scale(entry)
        drawn_strata = {stratum for stratum, _, _ in figure.steps}
        assert drawn_strata == {row["stratum"] for row in shown(entry)}
        for row in shown(entry):
            curve = row["curve"]
            assert min(curve["n_risk"]) >= minimum
            steps = [(x, y) for stratum, x, y in figure.steps if stratum == row["stratum"]]
            # From (0, 1) through every released row, and not one point more.
            assert steps == [(0.0, 1.0)] + [
                (time * factor, surv)
                for time, surv in zip(curve["time"], curve["surv"], strict=True)
            ]
            marks = [(x, y) for stratum, x, y in figure.censor_marks if stratum == row["stratum"]]
            assert marks == [
                (time * factor, surv)
                for time, surv, censored in zip(
                    curve["time"], curve["surv"], curve["n_censor"], strict=True
                )
                if censored
            ]
        ((_, x_min, _),) = figure.x_limits
        assert x_min == 0.0


def test_the_x_axis_is_in_months_on_a_month_grid_and_in_days_otherwise(
    results: dict[str, Any],
) -> None:
    for entry in results["time_to_event"]:
        figure = figure_of(results, entry["endpoint"])
        unit = "months" if entry["time_grid_days"] == MONTH else "days"
        assert f"time from JAK inhibitor initiation in {unit}" in figure.caption
        table = time_to_event_table(results, entry, 6)
        assert f"Median, {unit} (95% CI)" in table.header


def test_suppressed_strata_are_not_drawn_and_the_caption_says_why(suppressing) -> None:
    for entry in suppressing["time_to_event"]:
        suppressed = [row for row in entry["strata"] if row["suppressed"]]
        assert {row["stratum"] for row in suppressed} == {"filgotinib", "ruxolitinib", "other"}
        figure = figure_of(suppressing, entry["endpoint"])
        drawn = {stratum for stratum, *_ in figure.steps + figure.censor_marks + figure.at_risk}
        assert drawn == {"tofacitinib", "baricitinib", "upadacitinib"}
        assert "Not drawn: " in figure.caption
        for row in suppressed:
            assert "curve" not in row
            name = STRATUM_NAMES[row["stratum"]]
            assert f"{name} (suppressed: pooled n < 10)" in figure.caption


def test_a_stratum_of_one_centre_is_named_with_its_rule(suppressing) -> None:
    altered = copy.deepcopy(suppressing)
    entry = altered["time_to_event"][0]
    row = entry["strata"][0]
    # Its curve left in the file by mistake: a suppressed stratum is still not drawn.
    row.update(suppressed=True, suppression_rule="patients from one centre only")
    figure = kaplan_meier_figure(altered, entry, 12)
    assert "Tofacitinib (suppressed: patients from one centre only)" in figure.caption
    assert "tofacitinib" not in {
        stratum for stratum, *_ in figure.steps + figure.censor_marks + figure.at_risk
    }
    table = time_to_event_table(altered, entry, 6)
    assert table.rows[0].cells == ("Tofacitinib", "Suppressed: patients from one centre only")


def test_numbers_at_risk_below_the_plot_show_lt_m_for_those_not_released(results) -> None:
    minimum = results["plan"]["min_cell"]
    hidden = 0
    for entry in results["time_to_event"]:
        figure = figure_of(results, entry["endpoint"])
        expected = []
        for row in shown(entry):
            assert [p["months"] for p in row["at_risk"]] == results["plan"]["at_risk_months"]
            for point in row["at_risk"]:
                count = point["n_risk"]
                hidden += count is None
                assert count is None or count >= minimum
                text = f"<{minimum}" if count is None else str(count)
                expected.append((row["stratum"], point["months"], text))
        assert list(figure.at_risk) == expected
        assert f"<{minimum}: fewer than {minimum}" in figure.caption
    assert hidden, "these results must hold numbers at risk that are not released"


def test_all_strata_suppressed_gives_a_text_only_unnumbered_figure(suppressing) -> None:
    altered = copy.deepcopy(suppressing)
    for entry in altered["time_to_event"]:
        for row in entry["strata"]:
            for key in ("curve", "median", "at_risk"):
                row.pop(key, None)
            row.update(suppressed=True, suppression_rule="pooled n < 10")
    km = [kaplan_meier_figure(altered, entry, 10) for entry in altered["time_to_event"]]
    assert all(f.png is None and not f.steps and not f.at_risk for f in km)
    assert all(not f.title.startswith("Figure") for f in km)
    assert all("Not drawn: Tofacitinib (suppressed: pooled n < 10)" in f.caption for f in km)


def test_the_figures_are_numbered_after_the_others_and_their_bytes_are_stable(
    suppressing,
) -> None:
    figures = report_figures(suppressing)
    drawn = [f for f in figures if f.png is not None]
    assert [f.key for f in drawn][-2:] == ["km_drug_retention", "km_developed_du"]
    assert [f.title.split(".")[0] for f in drawn] == [
        f"Figure {i}" for i in range(1, len(drawn) + 1)
    ]
    # Drawn again, the same bytes (no date or version in the PNG).
    for figure, entry in zip(drawn[-2:], suppressing["time_to_event"], strict=True):
        number = int(figure.title.split(".")[0].removeprefix("Figure "))
        assert kaplan_meier_figure(suppressing, entry, number) == figure


def test_a_curve_row_or_number_at_risk_below_the_minimum_cell_is_refused(
    suppressing, tmp_path: Path
) -> None:
    minimum = suppressing["plan"]["min_cell"]
    unsafe = copy.deepcopy(suppressing)
    curve = unsafe["time_to_event"][0]["strata"][0]["curve"]
    for key in curve:  # one more row, as a curve not cut at the minimum cell would have
        curve[key].append(curve[key][-1])
    curve["time"][-1] += 1
    curve["n_risk"][-1] = minimum - 1
    with pytest.raises(DisclosureError, match="below the minimum cell"):
        kaplan_meier_figure(unsafe, unsafe["time_to_event"][0], 10)
    with pytest.raises(ReportError, match="minimum cell"):
        write_report(unsafe, tmp_path / "report")
    assert not (tmp_path / "report").exists()
    unsafe = copy.deepcopy(suppressing)
    unsafe["time_to_event"][1]["strata"][0]["at_risk"][-1]["n_risk"] = minimum - 1
    with pytest.raises(DisclosureError, match="number at risk of"):
        kaplan_meier_figure(unsafe, unsafe["time_to_event"][1], 10)


def format_time(value: float | None) -> str:
    if value is None:
        return DASH
    text = f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return text.replace("-", MINUS)


def test_the_table_rows_match_the_results(results: dict[str, Any]) -> None:
    minimum = results["plan"]["min_cell"]
    tables = [t for t in report_tables(results) if t.section == "Time to event"]
    assert [t.key for t in tables] == [
        "table6_time_to_event_drug_retention",
        "table7_time_to_event_developed_du",
    ]
    for table, entry in zip(tables, results["time_to_event"], strict=True):
        factor = scale(entry)
        months = results["plan"]["at_risk_months"]
        assert table.header[4:] == tuple(f"At risk, {m} mo" for m in months)
        assert len(table.rows) == len(entry["strata"])
        for row, stratum in zip(table.rows, entry["strata"], strict=True):
            name = STRATUM_NAMES[stratum["stratum"]]
            if stratum["suppressed"]:
                assert row.kind == "suppressed" and row.span_from == 1
                assert row.cells == (name, f"Suppressed: {stratum['suppression_rule']}")
                continue
            median = stratum["median"]

            def shown(key: str, median=median, factor=factor) -> str:
                if key in median["withheld"]:
                    return "withheld"
                if median[key] is None:
                    return "not reached" if key == "time" else DASH
                return format_time(median[key] * factor)

            assert row.cells[:4] == (
                name,
                str(stratum["n"]),
                str(stratum["events"]),
                f"{shown('time')} ({shown('lower')} to {shown('upper')})",
            )
            assert row.cells[4:] == tuple(
                f"<{minimum}" if p["n_risk"] is None else str(p["n_risk"])
                for p in stratum["at_risk"]
            )
        log_rank = entry["log_rank"]
        if entry["by"]:
            p = log_rank["p_value"]
            decimals = 3 if p < 0.01 or 0.045 <= p < 0.055 else 2
            sentence = (
                f"Log-rank test: χ² = {log_rank['chisq']:.2f} on {log_rank['df']} df, "
                f"p = {p:.{decimals}f}"
            )
            assert any(note.startswith(sentence) for note in table.notes), table.notes
            assert any(
                note.endswith(f"not recorded: {entry['left_out_missing_stratum']}.")
                for note in table.notes
            )
        else:
            assert log_rank is None
            assert not any("Log-rank" in note for note in table.notes)
    if results["plan"]["by"] == "sex":
        assert results["time_to_event"][0]["left_out_missing_stratum"] > 0


def test_a_version_1_results_file_renders_without_a_time_to_event_section(
    tmp_path: Path,
) -> None:
    sample = json.loads(SAMPLE_RESULTS.read_text(encoding="utf-8"))
    assert sample["schema"] == "sscjak.results/1" and "time_to_event" not in sample
    files = write_report(sample, tmp_path / "report")
    html = files.html.read_text(encoding="utf-8")
    markdown = files.markdown.read_text(encoding="utf-8")
    assert "Time to event" not in html and "Time to event" not in markdown
    assert "Kaplan" not in html and "Kaplan" not in markdown
    assert re.findall(r"<h2>([^<]+)</h2>", html) == [
        "Tables",
        "Figures",
        "Statistical methods",
        "Provenance",
    ]
    assert not [p for p in files.figures if p.name.startswith("km_")]
    assert len(files.tables) == 5
    # An empty list of endpoints (a version-2 file of a plan without any) is the same.
    assert report_tables(sample | {"time_to_event": []}) == report_tables(sample)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def test_write_report_writes_the_time_to_event_tables_and_figures(written) -> None:
    results, folder = written
    figures = folder / "figures"
    for endpoint in ENDPOINTS:
        png = (figures / f"km_{endpoint}.png").read_bytes()
        assert png == figure_of(results, endpoint).png
        assert_real_png(png)
    html = (folder / "report.html").read_text(encoding="utf-8")
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert re.findall(r"<h2>([^<]+)</h2>", html) == [
        "Tables",
        "Figures",
        "Time to event",
        "By stratum",
        "Statistical methods",
        "Provenance",
    ]
    section = html[html.index("<h2>Time to event</h2>") : html.index("<h2>By stratum")]
    # Each endpoint's table, then its figure.
    order = [
        section.index('id="table6_time_to_event_drug_retention"'),
        section.index('id="km_drug_retention"'),
        section.index('id="table7_time_to_event_developed_du"'),
        section.index('id="km_developed_du"'),
    ]
    assert order == sorted(order)
    assert "data-steps=" in section and "data-at-risk=" in section
    assert "## Time to event" in markdown
    md_section = markdown[markdown.index("## Time to event") : markdown.index("## By stratum")]
    assert "(figures/km_drug_retention.png)" in md_section
    assert "| Filgotinib | Suppressed: pooled n < 10 |" in md_section
    assert "Kaplan–Meier method with Greenwood standard errors" in methods_paragraph(results)
    assert "quantile.survfit" in markdown and "survdiff" in markdown
    for number, entry in enumerate(results["time_to_event"], start=6):
        rows = csv_rows(folder / "tables" / f"table{number}_time_to_event_{entry['endpoint']}.csv")
        assert [r["stratum"] for r in rows] == [s["stratum"] for s in entry["strata"]]
        for row, stratum in zip(rows, entry["strata"], strict=True):
            assert row["suppressed"] == ("true" if stratum["suppressed"] else "false")
            if stratum["suppressed"]:
                assert row["suppression_rule"] == stratum["suppression_rule"]
                assert row["n"] == row["median"] == ""
                continue
            assert int(row["n"]) == stratum["n"] and int(row["events"]) == stratum["events"]
            for key, column in (("time", "median"), ("lower", "median_lower")):
                value = stratum["median"][key]
                assert row[column] == ("" if value is None else repr(float(value)))
            for point in stratum["at_risk"]:
                shown_count = row[f"at_risk_{point['months']}_months"]
                assert shown_count == ("" if point["n_risk"] is None else str(point["n_risk"]))
            observed = entry["log_rank"]["observed"][stratum["stratum"]]
            assert float(row["log_rank_observed"]) == observed


def test_markdown_and_html_time_to_event_tables_hold_the_same_cells(written) -> None:
    _, folder = written
    html = (folder / "report.html").read_text(encoding="utf-8")
    section = html[html.index("<h2>Time to event</h2>") : html.index("<h2>By stratum")]
    html_rows = [
        [
            re.sub(r"<[^>]+>", "", cell).replace("&lt;", "<")
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S)
    ]
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    md_section = markdown[markdown.index("## Time to event") : markdown.index("## By stratum")]
    md_rows = [
        [cell.strip() for cell in line.strip("|").split("|") if cell.strip()]
        for line in md_section.splitlines()
        if line.startswith("|") and not re.fullmatch(r"\|[-:|]+\|", line)
    ]
    assert html_rows == md_rows


def test_a_withheld_median_is_said_to_be_withheld() -> None:
    from sscjak.coordinator.report.tables import format_median_time

    median = {"time": None, "lower": 11.0, "upper": None, "withheld": ["time"]}
    assert format_median_time(median, 1.0).startswith("withheld (")
    assert format_median_time({"time": None, "lower": None, "upper": None}, 1.0).startswith(
        "not reached"
    )
