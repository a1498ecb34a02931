"""The report's figures: real PNGs, the right data, and no bar below the minimum cell."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import itertools

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pytest

from sscjak.coordinator.cli import main as coordinator_main
from sscjak.coordinator.report.figures import (
    ReportFigure,
    _draw_histogram,
    bar_extents,
    change_distribution_figure,
    followup_figure,
    forest_plot,
    report_figures,
)
from sscjak.coordinator.synthetic.demo_bundle import bundled_demo_folder
from sscjak.shared.disclosure import DisclosureError

DEMO_CENTRES = sorted(bundled_demo_folder().glob("centre_*"))

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def simulate_results(folder: Path, plan_text: str | None) -> dict[str, Any]:
    """Results of ``sscjak-coordinator simulate`` over the demo centres."""
    args = ["simulate", *map(str, DEMO_CENTRES), "--out", str(folder / "results.json")]
    if plan_text is not None:
        (folder / "plan.toml").write_text(plan_text, encoding="utf-8")
        args += ["--plan", str(folder / "plan.toml")]
    assert coordinator_main(args) == 0
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module", params=[None, "min_cell = 25\n", "min_cell = 12\n"])
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return simulate_results(tmp_path_factory.mktemp("simulate"), request.param)


def assert_real_png(png: bytes) -> None:
    assert png.startswith(PNG_SIGNATURE)
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 300
    assert pixels[..., :3].std() > 0.05, "blank image"


def assert_bars_pool_consecutive_bins(bars: list, released: list) -> None:
    """Each bar is the union of a run of consecutive released bins, in order, all used."""
    position = 0
    for low, high, count in bars:
        assert released[position][0] == low
        pooled = 0
        while pooled < count:
            pooled += released[position][2]
            position += 1
        assert pooled == count and released[position - 1][1] == high
    assert position == len(released)


@pytest.fixture(scope="module")
def figures(results) -> list[ReportFigure]:
    """The report's figures of ``results``, drawn once for the tests that only read them."""
    return list(report_figures(results))


def test_no_bar_of_any_figure_holds_fewer_patients_than_the_minimum_cell(results, figures) -> None:
    minimum = results["plan"]["min_cell"]
    bars = [bar for figure in figures for bar in figure.bars]
    assert bars, "the demo results must give histograms"
    assert all(count >= minimum for _, _, _, count in bars), bars


def assert_drawn_bars_are_the_released_bins(drawn: list, released: list) -> None:
    """The bars read back from the axes are the released bins: same number, same counts
    (from each bar's area), the outer edges at the released outer bounds, and each
    boundary between two bars within the gap between the two bins' grid values."""
    assert [count for *_, count in drawn] == [count for *_, count in released]
    assert drawn[0][0] == released[0][0] and drawn[-1][1] == released[-1][1]
    for (left, right, _), (low, high, _) in zip(drawn, released, strict=True):
        assert left <= low <= high <= right or (left == low and high == right)
    for (_, right, _), (left, _, _) in itertools.pairwise(drawn):
        assert right == pytest.approx(left)


def test_change_histograms_draw_exactly_the_released_bins_of_each_cell(results, figures) -> None:
    minimum = results["plan"]["min_cell"]
    distributions = {
        (d["outcome"], d["months"]): d["bins"] for d in results["distributions"]["changes"]
    }
    outcomes = list(dict.fromkeys(c["outcome"] for c in results["changes"]))
    by_key = {figure.key: figure for figure in figures}
    for outcome in outcomes:
        figure = by_key[f"changes_{outcome}"]
        for cell in (c for c in results["changes"] if c["outcome"] == outcome):
            name = f"{cell['months']} months"
            panel = [bar for bar in figure.bars if bar[0] == name]
            drawn = [bar[1:] for bar in figure.drawn if bar[0] == name]
            if cell["suppressed"]:
                assert panel == drawn == [], "a suppressed cell must not be drawn"
                assert (outcome, cell["months"]) not in distributions
                assert any(text.startswith(f"{name}: suppressed") for text in figure.texts)
                continue
            released = [b for b in distributions[(outcome, cell["months"])] if b[2] > 0]
            if len(released) == 1:
                # A single bar says nothing about the shape: stated in words, not drawn.
                assert panel == drawn == []
                *_, count = released[0]
                assert any(f"all {count} patients" in text for text in figure.texts)
                continue
            assert_real_png(figure.png)
            # Every patient of the cell is in exactly one bar, each bar ≥ minimum cell.
            assert sum(count for *_, count in panel) == cell["n"]
            assert all(count >= minimum for *_, count in panel)
            # The bars are the released bins, as they stand and as drawn on the axes.
            assert [list(bar[1:]) for bar in panel] == released
            assert_drawn_bars_are_the_released_bins(drawn, released)
        if not figure.bars:
            assert figure.png is None and figure.texts


def test_followup_histogram_draws_the_released_bins_on_an_axis_from_zero(results) -> None:
    figure = followup_figure(results, 9)
    assert figure is not None
    assert_real_png(figure.png)
    released = results["distributions"]["followup_months"]
    assert released[0][0] >= 0
    assert [list(bar[1:]) for bar in figure.bars] == released
    assert_drawn_bars_are_the_released_bins([bar[1:] for bar in figure.drawn], released)
    ((_, x_min, x_max),) = figure.x_limits
    assert x_min >= 0 and x_min == released[0][0] and x_max == released[-1][1]
    assert sum(count for *_, count in figure.drawn) == results["cohort"]["patients"]
    assert min(count for *_, count in figure.drawn) >= results["plan"]["min_cell"]


def test_followup_axis_starts_at_zero_even_for_a_bound_below_zero(results) -> None:
    # An older results file coarsened the lowest bound of follow-up below 0 months.
    altered = copy.deepcopy(results)
    altered["distributions"]["followup_months"][0][0] = -50.0
    figure = followup_figure(altered, 9)
    assert figure is not None
    ((_, x_min, _),) = figure.x_limits
    assert x_min == 0.0 and figure.drawn[0][1] == 0.0


def test_forest_plot_shows_each_estimable_cell_with_its_ci(results) -> None:
    figure = forest_plot(results)
    assert_real_png(figure.png)
    # The caption says which direction is a benefit for each measure.
    assert "↓ better (a decrease is an improvement): mRSS" in figure.caption
    assert "↑ better (an increase is an improvement): FVC, DLCO" in figure.caption
    estimable = [c for c in results["changes"] if not c["suppressed"] and c["smc"] is not None]
    assert [(p[1], p[2], p[3]) for p in figure.points] == [
        (c["smc"], *c["smc_ci"]) for c in estimable
    ]
    assert all(p[2] <= p[1] <= p[3] for p in figure.points)


def test_a_figure_is_refused_when_the_whole_histogram_is_below_the_minimum_cell(results) -> None:
    altered = copy.deepcopy(results)
    minimum = altered["plan"]["min_cell"]
    entry = altered["distributions"]["changes"][0]
    # Not even stated in words: a single bar below the minimum cell is refused.
    entry["bins"] = [[0.0, 0.0, minimum - 1]]
    with pytest.raises(DisclosureError, match="below the minimum cell"):
        report_figures(altered)


def test_small_bins_reaching_the_figure_are_refused_not_merged(results) -> None:
    altered = copy.deepcopy(results)
    entry = altered["distributions"]["changes"][0]
    total = sum(count for *_, count in entry["bins"])
    # A histogram of single patients (as an unmerged centre histogram would be).
    entry["bins"] = [[float(i), float(i), 1] for i in range(total)]
    with pytest.raises(DisclosureError, match="bin of 1 patients"):
        change_distribution_figure(altered, entry["outcome"], 2)


def test_drawing_refuses_a_bar_below_the_minimum_cell() -> None:
    figure, ax = plt.subplots()
    try:
        with pytest.raises(DisclosureError, match="bar of 3 patients"):
            _draw_histogram(ax, [(0.0, 1.0, 7), (2.0, 3.0, 3)], 5, "point")
        assert len(ax.patches) == 0, "nothing may be drawn before the check"
    finally:
        plt.close(figure)


def test_bars_tile_the_range_of_the_released_bins() -> None:
    # The outer edges are the released (coarsened) bounds; inner edges meet halfway
    # between one bin's last grid value and the next bin's first: [-2, -2] is one value.
    assert bar_extents([(-5.0, -2.0, 7), (-1.0, 1.0, 9), (2.0, 5.0, 6)]) == [
        (-5.0, -1.5),
        (-1.5, 1.5),
        (1.5, 5.0),
    ]
    assert bar_extents([(-10.0, -9.0, 5), (-7.0, 0.0, 8)]) == [(-10.0, -8.0), (-8.0, 0.0)]


def test_histogram_bars_are_densities_whose_areas_are_the_counts() -> None:
    figure, ax = plt.subplots()
    try:
        bins = [(-15.0, -9.0, 5), (-7.0, -5.0, 8), (-2.0, 10.0, 7)]
        drawn = _draw_histogram(ax, bins, 5, "point", "p")
        areas = [patch.get_width() * patch.get_height() for patch in ax.patches]
        assert areas == pytest.approx([5, 8, 7])
        assert [count for *_, count in drawn] == [5, 8, 7]
        # The axis spans exactly the released outer bounds, no margin beyond them.
        assert ax.get_xlim() == (-15.0, 10.0)
        assert (drawn[0][1], drawn[-1][2]) == (-15.0, 10.0)
    finally:
        plt.close(figure)


def test_a_single_bar_distribution_is_stated_in_words_not_drawn(results) -> None:
    altered = copy.deepcopy(results)
    minimum = altered["plan"]["min_cell"]
    outcome = "du_count"
    for cell in altered["changes"]:
        if cell["outcome"] == outcome:
            cell.update(suppressed=False, n=minimum + 3, unit="ulcers", resolution=1.0)
    altered["distributions"]["changes"] = [
        d for d in altered["distributions"]["changes"] if d["outcome"] != outcome
    ] + [
        {"outcome": outcome, "months": m, "bins": [[-4.0, 2.0, minimum + 3]]}
        for m in altered["plan"]["months"]
    ]
    figure = change_distribution_figure(altered, outcome, None)
    assert figure.png is None and figure.bars == () and figure.drawn == ()
    assert figure.texts and all(
        f"all {minimum + 3} patients' changes lie between \u22124 and 2 ulcers" in text
        for text in figure.texts
    )
    numbered = [f.title for f in report_figures(altered) if f.png is not None]
    assert [title.split(".")[0] for title in numbered] == [
        f"Figure {i}" for i in range(1, len(numbered) + 1)
    ]


def test_a_figure_is_drawn_once_and_gives_the_pixels_of_a_laid_out_save(
    results, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving draws the figure once (no second layout pass), with the same bytes as a save
    that keeps the layout engine ``tight_layout`` left and draws twice."""
    from matplotlib.figure import Figure

    draws: list[int] = []
    real_draw = Figure.draw

    def counted_draw(self: Figure, renderer: object) -> None:
        draws.append(1)
        real_draw(self, renderer)

    monkeypatch.setattr(Figure, "draw", counted_draw)
    once = forest_plot(results).png
    assert len(draws) == 1
    real_set_layout_engine = Figure.set_layout_engine

    def keep_the_engine(self: Figure, layout: object = None, **options: object) -> None:
        if layout is not None:  # tight_layout sets its engine, then a placeholder
            real_set_layout_engine(self, layout, **options)

    monkeypatch.setattr(Figure, "set_layout_engine", keep_the_engine)
    draws.clear()
    twice = forest_plot(results).png
    assert len(draws) == 2  # what saving a figure with a layout engine does
    assert once == twice
