"""The report's figures, drawn with matplotlib (Agg backend) from the pooled results alone.

* a forest plot of the standardized mean change (SMC) with its 95% CI by measure and
  time point;
* for each measure, the distribution of changes from the pooled histogram
  (``results["distributions"]["changes"]``);
* the distribution of follow-up time on treatment.

Disclosure control: no bar may show fewer patients than the plan's minimum cell.
The coordinator already merges the pooled histograms so; this module merges again
(:func:`merge_small_bins`, a no-op on compliant histograms) and then re-checks the
heights of the bars actually drawn on the axes (:func:`_check_drawn_bars`), refusing
with :class:`DisclosureError` rather than saving a figure that would break the rule.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

# No display on a coordinator host: choose the file-only backend before pyplot loads.
matplotlib.use("Agg")

import itertools

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from sscjak.coordinator.report.tables import (
    SMC_LABELS,
    measure_label,
    measure_resolution,
    min_cell,
    suppression_rule,
)
from sscjak.shared.data_contract import DAYS_PER_MONTH
from sscjak.shared.statistics.binning import outer_edge_step

#: A histogram bin as the results carry it: [low, high, count] (see :func:`bar_extents`).
Bin = tuple[float, float, int]

#: Figure width in inches and resolution: a full text column of an A4 page at 150 dpi.
FIGURE_WIDTH_IN = 7.0
FIGURE_DPI = 150
BAR_COLOUR = "#4a7ab5"
#: About how many bars the follow-up histogram has (each ≥ the minimum cell regardless).
FOLLOWUP_BARS = 10
#: About how many bars a change histogram has at most (each ≥ the minimum cell).
CHANGE_BARS = 8


def patients_per_bar(bins: Sequence[Sequence[float]], minimum: int, bars: int) -> int:
    """Patients each bar must hold: the minimum cell, or more for about ``bars`` bars.

    Bars of equal counts on a fine grid make a spiky density (five identical FVC changes
    make a tall thin bar); pooling to about ``bars`` bars keeps the shape readable.
    Merging further than the minimum cell never discloses more.
    """
    total = sum(int(count) for *_, count in bins)
    return max(minimum, math.ceil(total / bars))


POINT_COLOUR = "#1f3b60"


class DisclosureError(ValueError):
    """A figure would show a bar with fewer patients than the minimum cell."""


@dataclass(frozen=True)
class ReportFigure:
    """A rendered figure: its file stem, caption, PNG bytes and the bars it shows.

    ``bars`` holds, for every histogram bar drawn, ``(panel, low, high, count)``: the
    data a reviewer (or a test) checks against the minimum cell. ``points`` holds, for
    every estimate of a forest plot, ``(label, estimate, ci_low, ci_high)``.
    """

    key: str
    title: str
    caption: str
    png: bytes
    bars: tuple[tuple[str, float, float, int], ...] = ()
    points: tuple[tuple[str, float, float | None, float | None], ...] = ()


def merge_small_bins(bins: Sequence[Sequence[float]], minimum: int) -> list[Bin]:
    """Merge adjacent histogram bins until every non-empty bar holds ≥ ``minimum`` patients.

    Left to right, bins are pooled until their count reaches ``minimum``; an empty bin met
    while nothing is pooled stays as a gap; a short remainder at the right end joins the
    last bar. Compliant histograms come back unchanged. Raises :class:`DisclosureError`
    when the whole histogram holds fewer than ``minimum`` patients (nothing can be shown).
    """
    cleaned = [(float(low), float(high), int(count)) for low, high, count in bins]
    total = sum(count for _, _, count in cleaned)
    if 0 < total < minimum:
        raise DisclosureError(f"histogram of {total} patients is below the minimum cell {minimum}")
    merged: list[Bin] = []
    pending: Bin | None = None
    for low, high, count in cleaned:
        if pending is None:
            if count == 0 or count >= minimum:
                merged.append((low, high, count))
                continue
            pending = (low, high, count)
        else:
            pending = (pending[0], high, pending[2] + count)
        if pending[2] >= minimum:
            merged.append(pending)
            pending = None
    if pending is not None:
        while merged and merged[-1][2] == 0:
            pending = (merged.pop()[0], pending[1], pending[2])
        if merged:
            last = merged.pop()
            pending = (last[0], pending[1], last[2] + pending[2])
        merged.append(pending)
    return merged


def _check_bar_counts(counts: Sequence[int], minimum: int) -> None:
    """Refuse when any bar about to be drawn is non-empty yet below the minimum cell."""
    for count in counts:
        if 0 < count < minimum:
            raise DisclosureError(f"a bar of {count} patients is below the minimum cell {minimum}")


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    # No timestamp or version in the metadata: the same results give the same bytes.
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def bar_extents(bins: Sequence[Bin], grid_step: float) -> list[tuple[float, float]]:
    """The x-extent of each bar: bars tile the range of the histogram.

    A bin ``[low, high, count]`` holds the grid values low … high (inclusive; ``[-2, -2,
    7]`` is the single value −2), as :func:`sscjak.shared.statistics.binning.
    merge_small_bins` releases them. Neighbouring bars meet halfway between one bin's
    last value and the next bin's first; the outer bars reach half a grid step beyond the
    extreme values. So every value of the range belongs to exactly one bar.
    """
    half = grid_step / 2
    edges = [bins[0][0] - half] if bins else []
    for (_, high, _), (low, _, _) in itertools.pairwise(bins):
        edges.append((high + low) / 2)
    if bins:
        edges.append(bins[-1][1] + half)
    return list(itertools.pairwise(edges))


def round_outer_edges(extents: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Extents with the first bar's left and the last bar's right edge rounded outward.

    The outermost bins start and end at the smallest and largest observed values (see
    :func:`sscjak.shared.statistics.binning.merge_small_bins`): each is one patient's
    value. Rounding the outer edges outward to a round step (5 for a range of tens, 0.5
    for a range of units) keeps those single values off the figure.
    """
    if not extents:
        return []
    low, high = extents[0][0], extents[-1][1]
    step = outer_edge_step(low, high)
    rounded = [list(extent) for extent in extents]
    rounded[0][0] = math.floor(round(low / step, 9)) * step
    rounded[-1][1] = math.ceil(round(high / step, 9)) * step
    if rounded[0][0] == low:
        rounded[0][0] -= step
    if rounded[-1][1] == high:
        rounded[-1][1] += step
    return [(a, b) for a, b in rounded]


def _draw_histogram(
    ax: Axes, bins: Sequence[Bin], minimum: int, grid_step: float, per: str
) -> list[Bin]:
    """Draw a histogram of unequal-width bars as a density (patients per ``per``).

    Heights are count / width, so that a wide bar of merged bins does not look like a
    peak (the area of each bar is its count); each bar is labelled with its count. The
    outer edges are rounded outward (:func:`round_outer_edges`).
    """
    shown = [(low, high, count) for low, high, count in bins if count > 0]
    counts = [count for _, _, count in shown]
    _check_bar_counts(counts, minimum)
    extents = round_outer_edges(bar_extents(shown, grid_step))
    widths = [high - low for low, high in extents]
    bars = ax.bar(
        [low for low, _ in extents],
        [count / width for count, width in zip(counts, widths, strict=True)],
        width=widths,
        align="edge",
        color=BAR_COLOUR,
        edgecolor="white",
        linewidth=0.8,
    )
    if len(bars.patches) != len(counts):
        raise DisclosureError("the bars drawn differ from the bins checked")
    ax.bar_label(bars, labels=[str(count) for count in counts], fontsize=7, padding=1)
    ax.set_ylabel(f"Patients per {per}", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return shown


def forest_plot(results: Mapping[str, Any]) -> ReportFigure:
    """SMC with 95% CI for every change cell; suppressed or undefined cells are named."""
    cells = list(results.get("changes") or [])
    minimum = min_cell(results)
    smc_kind = str((results.get("plan") or {}).get("smc", "baseline"))
    height = max(2.5, 0.32 * len(cells) + 1.2)
    figure, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, height))
    labels = []
    points: list[tuple[str, float, float | None, float | None]] = []
    lows, highs = [0.0], [0.0]
    for row, cell in enumerate(cells):
        y = len(cells) - 1 - row
        name = f"{measure_label(cell, with_unit=False)}, {cell.get('months')} months"
        if cell.get("suppressed"):
            labels.append(name)
            ax.text(
                0,
                y,
                f"suppressed ({suppression_rule(cell, minimum)})",
                va="center",
                ha="center",
                fontsize=8,
                color="#666666",
            )
            continue
        labels.append(f"{name} (n = {cell.get('n')})")
        smc, ci = cell.get("smc"), cell.get("smc_ci")
        if smc is None:
            ax.text(0, y, "not estimable", va="center", ha="center", fontsize=8, color="#666666")
            continue
        low, high = (ci[0], ci[1]) if ci else (None, None)
        if low is not None and high is not None:
            ax.plot([low, high], [y, y], color=POINT_COLOUR, linewidth=1.4)
            lows.append(low)
            highs.append(high)
        points.append((name, smc, low, high))
        ax.plot([smc], [y], "s", color=POINT_COLOUR, markersize=5)
        lows.append(smc)
        highs.append(smc)
    ax.axvline(0, color="#888888", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(cells) - 1, -1, -1), labels, fontsize=8)
    span = max(abs(min(lows)), abs(max(highs)), 0.5) * 1.15
    ax.set_xlim(-span, span)
    ax.set_ylim(-0.7, len(cells) - 0.3)
    ax.set_xlabel("Standardized mean change (95% CI)")
    ax.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return ReportFigure(
        key="forest_smc",
        title="Figure 1. Standardized mean change from baseline (95% CI)",
        caption=f"SMC = {SMC_LABELS.get(smc_kind, smc_kind)}. Squares: estimate; lines: "
        "95% CI. Negative values are decreases from baseline.",
        png=_png(figure),
        points=tuple(points),
    )


def _change_bins(results: Mapping[str, Any], outcome: str, months: Any) -> list | None:
    for entry in (results.get("distributions") or {}).get("changes") or []:
        if entry.get("outcome") == outcome and entry.get("months") == months:
            return entry.get("bins")
    return None


def change_distribution_figure(
    results: Mapping[str, Any], outcome: str, number: int
) -> ReportFigure:
    """Histograms of one measure's changes, one panel per time point."""
    minimum = min_cell(results)
    cells = [c for c in results.get("changes") or [] if c.get("outcome") == outcome]
    figure, axes = plt.subplots(1, len(cells), figsize=(FIGURE_WIDTH_IN, 2.6), squeeze=False)
    bars: list[tuple[str, float, float, int]] = []
    for ax, cell in zip(axes[0], cells, strict=True):
        panel = f"{cell.get('months')} months"
        ax.set_title(panel, fontsize=9)
        bins = (
            None if cell.get("suppressed") else _change_bins(results, outcome, cell.get("months"))
        )
        if cell.get("suppressed") or not bins:
            reason = (
                f"suppressed ({suppression_rule(cell, minimum)})"
                if cell.get("suppressed")
                else "no distribution released"
            )
            ax.text(
                0.5,
                0.5,
                reason,
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=8,
                color="#666666",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        step = measure_resolution(cell) or 1.0
        per_bar = patients_per_bar(bins, minimum, CHANGE_BARS)
        shown = _draw_histogram(ax, merge_small_bins(bins, per_bar), minimum, step, "unit")
        bars.extend((panel, low, high, count) for low, high, count in shown)
        ax.axvline(0, color="#888888", linewidth=0.8, linestyle="--")
        ax.set_xlabel(f"Change ({cell.get('unit') or measure_label(cell)})", fontsize=8)
    label = measure_label(cells[0]) if cells else outcome
    figure.tight_layout()
    return ReportFigure(
        key=f"changes_{outcome}",
        title=f"Figure {number}. Distribution of change from baseline: {label}",
        caption=f"Pooled histogram of the changes (area = patients, count on each bar); "
        f"adjacent bins merged so that every bar holds at least {minimum} patients (about "
        f"{CHANGE_BARS} bars at most); outer "
        "edges rounded outward so that no single patient's extreme value is shown.",
        png=_png(figure),
        bars=tuple(bars),
    )


def followup_figure(results: Mapping[str, Any], number: int) -> ReportFigure | None:
    """Histogram of follow-up time on treatment, in months; None when not released."""
    bins = (results.get("distributions") or {}).get("followup_months")
    if not bins:
        return None
    minimum = min_cell(results)
    figure, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, 2.6))
    # Follow-up is pooled as a histogram of whole days: one grid step is one day. Bins of
    # about a tenth of the cohort (never below the minimum cell) keep the shape readable.
    per_bar = patients_per_bar(bins, minimum, FOLLOWUP_BARS)
    merged = merge_small_bins(bins, per_bar)
    shown = _draw_histogram(ax, merged, minimum, 1 / DAYS_PER_MONTH, "month")
    ax.set_xlabel("Follow-up on treatment (months)")
    figure.tight_layout()
    return ReportFigure(
        key="followup_months",
        title=f"Figure {number}. Follow-up time on treatment",
        caption=f"Pooled histogram (area = patients, count on each bar); adjacent bins merged "
        f"so that every bar holds at least {per_bar} patients (minimum cell {minimum}); "
        "outer edges rounded outward so that no single patient's extreme value is shown.",
        png=_png(figure),
        bars=tuple(("follow-up", low, high, count) for low, high, count in shown),
    )


def report_figures(results: Mapping[str, Any]) -> tuple[ReportFigure, ...]:
    """Every figure of the report, numbered in the order the report shows them."""
    figures = [forest_plot(results)]
    outcomes: list[str] = []
    for cell in results.get("changes") or []:
        if cell.get("outcome") not in outcomes:
            outcomes.append(str(cell.get("outcome")))
    for outcome in outcomes:
        figures.append(change_distribution_figure(results, outcome, len(figures) + 1))
    followup = followup_figure(results, len(figures) + 1)
    if followup is not None:
        figures.append(followup)
    return tuple(figures)
