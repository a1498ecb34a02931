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
from hypothesis import given
from hypothesis import strategies as st

import sscjak.coordinator
from sscjak.coordinator.cli import main as coordinator_main
from sscjak.coordinator.report.figures import (
    DisclosureError,
    _draw_histogram,
    bar_extents,
    change_distribution_figure,
    followup_figure,
    forest_plot,
    merge_small_bins,
    report_figures,
    round_outer_edges,
)

DEMO_CENTRES = sorted((Path(sscjak.coordinator.__file__).parent / "demo_centres").glob("centre_*"))
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


def test_no_bar_of_any_figure_holds_fewer_patients_than_the_minimum_cell(results) -> None:
    minimum = results["plan"]["min_cell"]
    figures = report_figures(results)
    bars = [bar for figure in figures for bar in figure.bars]
    assert bars, "the demo results must give histograms"
    assert all(count >= minimum for _, _, _, count in bars), bars


def test_change_histograms_show_the_pooled_distribution_of_each_cell(results) -> None:
    minimum = results["plan"]["min_cell"]
    distributions = {
        (d["outcome"], d["months"]): d["bins"] for d in results["distributions"]["changes"]
    }
    outcomes = list(dict.fromkeys(c["outcome"] for c in results["changes"]))
    for number, outcome in enumerate(outcomes, start=2):
        figure = change_distribution_figure(results, outcome, number)
        assert figure.key == f"changes_{outcome}"
        assert_real_png(figure.png)
        for cell in (c for c in results["changes"] if c["outcome"] == outcome):
            panel = [bar for bar in figure.bars if bar[0] == f"{cell['months']} months"]
            if cell["suppressed"]:
                assert panel == [], "a suppressed cell must not be drawn"
                assert (outcome, cell["months"]) not in distributions
                continue
            # Every patient of the cell is in exactly one bar, each bar ≥ minimum cell.
            assert sum(count for *_, count in panel) == cell["n"]
            assert all(count >= minimum for *_, count in panel)
            # Each bar pools consecutive bins the coordinator released, none split.
            released = [b for b in distributions[(outcome, cell["months"])] if b[2] > 0]
            assert_bars_pool_consecutive_bins([bar[1:] for bar in panel], released)


def test_followup_histogram_holds_every_patient(results) -> None:
    figure = followup_figure(results, 9)
    assert figure is not None
    assert_real_png(figure.png)
    assert sum(count for *_, count in figure.bars) == results["cohort"]["patients"]
    assert min(count for *_, count in figure.bars) >= results["plan"]["min_cell"]


def test_forest_plot_shows_each_estimable_cell_with_its_ci(results) -> None:
    figure = forest_plot(results)
    assert_real_png(figure.png)
    estimable = [c for c in results["changes"] if not c["suppressed"] and c["smc"] is not None]
    assert [(p[1], p[2], p[3]) for p in figure.points] == [
        (c["smc"], *c["smc_ci"]) for c in estimable
    ]
    assert all(p[2] <= p[1] <= p[3] for p in figure.points)


def test_a_figure_is_refused_when_the_whole_histogram_is_below_the_minimum_cell(results) -> None:
    altered = copy.deepcopy(results)
    minimum = altered["plan"]["min_cell"]
    entry = altered["distributions"]["changes"][0]
    entry["bins"] = [[0.0, 0.0, minimum - 1]]
    with pytest.raises(DisclosureError, match="below the minimum cell"):
        report_figures(altered)


def test_small_bins_reaching_the_figure_are_merged_not_drawn(results) -> None:
    altered = copy.deepcopy(results)
    minimum = altered["plan"]["min_cell"]
    entry = altered["distributions"]["changes"][0]
    total = sum(count for *_, count in entry["bins"])
    # A histogram of single patients (as an unmerged centre histogram would be).
    entry["bins"] = [[float(i), float(i), 1] for i in range(total)]
    outcome = entry["outcome"]
    figure = change_distribution_figure(altered, outcome, 2)
    panel = [bar for bar in figure.bars if bar[0] == f"{entry['months']} months"]
    assert sum(count for *_, count in panel) == total
    assert all(count >= minimum for *_, count in panel)


def test_drawing_refuses_a_bar_below_the_minimum_cell() -> None:
    figure, ax = plt.subplots()
    try:
        with pytest.raises(DisclosureError, match="bar of 3 patients"):
            _draw_histogram(ax, [(0.0, 1.0, 7), (2.0, 3.0, 3)], 5, 1.0, "point")
        assert len(ax.patches) == 0, "nothing may be drawn before the check"
    finally:
        plt.close(figure)


def test_compliant_bins_are_left_as_they_are() -> None:
    bins = [(-3.0, -1.0, 6), (0.0, 0.0, 26), (1.0, 2.0, 7)]
    assert merge_small_bins(bins, 5) == bins


def test_bars_tile_the_range_of_grid_value_bins() -> None:
    # [-2, -2] is the single grid value −2: on a grid of 1 its bar spans −2.5 to −1.5;
    # the next bin [-1, 1] then spans −1.5 to 1.5.
    assert bar_extents([(-2.0, -2.0, 7), (-1.0, 1.0, 9)], 1.0) == [(-2.5, -1.5), (-1.5, 1.5)]
    # Bins with empty grid values between them meet halfway across the gap.
    assert bar_extents([(-9.0, -9.0, 5), (-7.0, -5.0, 8)], 1.0) == [(-9.5, -8.0), (-8.0, -4.5)]


def test_histogram_bars_are_densities_whose_areas_are_the_counts() -> None:
    figure, ax = plt.subplots()
    try:
        bins = [(-14.0, -9.0, 5), (-7.0, -5.0, 8), (-2.0, -2.0, 7)]
        _draw_histogram(ax, bins, 5, 1.0, "point")
        areas = [patch.get_width() * patch.get_height() for patch in ax.patches]
        assert areas == pytest.approx([5, 8, 7])
    finally:
        plt.close(figure)


def test_outer_bar_edges_do_not_show_the_extreme_values() -> None:
    # The outer bins start and end at single patients' values (−14 and +6 points).
    figure, ax = plt.subplots()
    try:
        bins = [(-14.0, -9.0, 5), (-7.0, -5.0, 8), (-2.0, 6.0, 7)]
        _draw_histogram(ax, bins, 5, 1.0, "point")
        left = ax.patches[0].get_x()
        right = ax.patches[-1].get_x() + ax.patches[-1].get_width()
        assert (left, right) == (-15.0, 10.0)  # rounded outward to the step of 5
        areas = [patch.get_width() * patch.get_height() for patch in ax.patches]
        assert areas == pytest.approx([5, 8, 7])
    finally:
        plt.close(figure)


def test_outer_edges_move_a_step_when_already_round() -> None:
    # −3.5 is the half-step edge of the value −3: a multiple of 0.5, so it moves on.
    assert round_outer_edges([(-3.5, -0.5), (-0.5, 2.5)]) == [(-4.0, -0.5), (-0.5, 3.0)]


@given(
    counts=st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=40),
    minimum=st.integers(min_value=1, max_value=15),
)
def test_merged_bins_hold_the_minimum_cell_and_every_patient(
    counts: list[int], minimum: int
) -> None:
    bins = [(float(i), float(i), count) for i, count in enumerate(counts)]
    total = sum(counts)
    if 0 < total < minimum:
        with pytest.raises(DisclosureError):
            merge_small_bins(bins, minimum)
        return
    merged = merge_small_bins(bins, minimum)
    assert sum(count for *_, count in merged) == total
    assert all(count == 0 or count >= minimum for *_, count in merged)
    # Intervals in order, not overlapping, covering the same grid range.
    assert merged[0][0] == 0.0 and merged[-1][1] == float(len(counts) - 1)
    for (_, high, _), (low, _, _) in itertools.pairwise(merged):
        assert low == high + 1.0
