"""The report's figures, drawn with matplotlib (Agg backend) from the pooled results alone.

* a forest plot of the standardized mean change (SMC) with its 95% CI by measure and
  time point, each measure marked with the direction that is a benefit
  (:attr:`sscjak.shared.data_contract.Measure.benefit`);
* for each measure, the distribution of changes: exactly the bins results.json releases
  (``results["distributions"]["changes"]``), one panel per time point;
* the distribution of follow-up time on treatment, exactly the released bins
  (``results["distributions"]["followup_months"]``), on an axis from 0;
* for each time-to-event endpoint (results of version 2 with ``time_to_event``), the
  Kaplan–Meier curves of the strata shown, exactly the released curve rows, with the
  numbers at risk in a table below the plot (:func:`kaplan_meier_figure`).

The released bins are already merged to the plan's minimum cell and their outer bounds
coarsened (:func:`sscjak.shared.disclosure.released_bins`); a figure draws
them as they are, so that a reader can match every bar with results.json. A panel whose
distribution is a single bar (or is suppressed) has no shape to show: it is stated in
words instead, and a figure of no panel at all is text only (``png`` is ``None``).

Disclosure control: no bar may show fewer patients than the plan's minimum cell. This
module only checks (:func:`sscjak.shared.disclosure.check_releasable_bins`: a results
file whose bins break the rule is refused, never merged again) and then re-checks the
heights of the bars actually drawn on the axes, refusing with
:class:`DisclosureError` rather than saving a figure that would break the rule. A
Kaplan–Meier figure draws no suppressed stratum and nothing beyond the released rows of a
curve (each with at least the minimum cell at risk, checked), and shows a number at risk
that is not released as ``<m``.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

# No display on a coordinator host: choose the file-only backend before pyplot loads.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from sscjak.coordinator.report.formatting import format_grid_value
from sscjak.coordinator.report.tables import (
    SMC_LABELS,
    TIME_TO_EVENT_SECTION,
    ReportTable,
    at_risk_grid_time,
    benefit_arrow,
    benefit_sentence,
    benefit_summary,
    by_words,
    format_at_risk,
    measure_label,
    measure_resolution,
    min_cell,
    stratum_label,
    suppression_rule,
    time_scale,
    time_to_event_entries,
)
from sscjak.shared.data_contract import DAYS_PER_MONTH
from sscjak.shared.disclosure import Bin, DisclosureError, check_releasable_bins

#: A histogram bin as the results carry it: [low, high, count] (see :func:`bar_extents`).
#: A bar as drawn: (panel, left edge, right edge, patients), read back from the axes.
DrawnBar = tuple[str, float, float, int]
#: A point of a Kaplan–Meier step curve as drawn: (stratum, x on the axis, survival).
DrawnStep = tuple[str, float, float]

#: Figure width in inches and resolution: a full text column of an A4 page at 150 dpi.
FIGURE_WIDTH_IN = 7.0
FIGURE_DPI = 150
BAR_COLOUR = "#4a7ab5"
POINT_COLOUR = "#1f3b60"
#: One colour per stratum of a Kaplan–Meier figure (Okabe–Ito, safe for colour blindness).
CURVE_COLOURS: tuple[str, ...] = (
    "#0072b2",
    "#d55e00",
    "#009e73",
    "#cc79a7",
    "#e69f00",
    "#56b4e9",
    "#000000",
    "#f0e442",
)


@dataclass(frozen=True)
class ReportFigure:
    """A rendered figure: its file stem, caption, PNG bytes and the bars it shows.

    ``bars`` holds, for every histogram bar drawn, ``(panel, low, high, count)``: the
    released bin it draws. ``drawn`` holds the same bars as read back from the axes
    after drawing: ``(panel, left edge, right edge, count)`` with the count recovered
    from the bar's area (height × width); ``x_limits`` holds ``(panel, x min, x max)``
    of each histogram panel's axis. These are what a reviewer (or a test) checks against
    results.json and the minimum cell; the HTML report carries them as data attributes
    of the figure. ``points`` holds, for every estimate of a forest plot, ``(label,
    estimate, ci_low, ci_high)``. ``texts`` states, in words, the panels that are not
    drawn (a single bar, suppressed). ``png`` is ``None`` when no panel is drawn.

    A Kaplan–Meier figure holds in ``steps`` every point of its step curves as read back
    from the drawn lines, ``(stratum, x, survival)`` (x in the figure's unit: months on a
    month grid, else days), beginning at (0, 1); in ``censor_marks`` the points marked as
    censored; and in ``at_risk`` the numbers at risk shown below the plot, ``(stratum,
    months, text)``. ``section`` and ``group`` place it in the report as those of
    :class:`~sscjak.coordinator.report.tables.ReportTable` do.
    """

    key: str
    title: str
    caption: str
    png: bytes | None
    bars: tuple[tuple[str, float, float, int], ...] = ()
    points: tuple[tuple[str, float, float | None, float | None], ...] = ()
    drawn: tuple[DrawnBar, ...] = ()
    x_limits: tuple[tuple[str, float, float], ...] = ()
    texts: tuple[str, ...] = ()
    steps: tuple[DrawnStep, ...] = ()
    censor_marks: tuple[DrawnStep, ...] = ()
    at_risk: tuple[tuple[str, int, str], ...] = ()
    section: str = ""
    group: str = ""


def _check_bar_counts(counts: Sequence[int], minimum: int) -> None:
    """Refuse when any bar about to be drawn is non-empty yet below the minimum cell."""
    for count in counts:
        if 0 < count < minimum:
            raise DisclosureError(f"a bar of {count} patients is below the minimum cell {minimum}")


def _png(figure: plt.Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed.

    ``tight_layout`` leaves a placeholder layout engine on the figure, and ``savefig``
    draws a figure with any engine once more before printing it. The layout is final by
    now, so the engine is removed and the figure is drawn once: the same pixels for less
    work.
    """
    figure.set_layout_engine(None)
    buffer = io.BytesIO()
    # No timestamp or version in the metadata: the same results give the same bytes.
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def bar_extents(bins: Sequence[Bin]) -> list[tuple[float, float]]:
    """The x-extent of each bar: the released bins, tiling the histogram's range.

    A bin ``[low, high, count]`` holds the grid values low … high (inclusive), as
    :func:`sscjak.shared.disclosure.released_bins` releases them; the first
    bin's ``low`` and the last bin's ``high`` are the released, coarsened outer bounds
    and are the outer edges of the figure as they stand. Neighbouring bars meet halfway
    between one bin's last value and the next bin's first, so every value of the range
    belongs to exactly one bar and a bin of one grid value still has a width.
    """
    if not bins:
        return []
    edges = [bins[0][0]]
    for (_, high, _), (low, _, _) in itertools.pairwise(bins):
        edges.append((high + low) / 2)
    edges.append(bins[-1][1])
    return list(itertools.pairwise(edges))


def _draw_histogram(
    ax: Axes, bins: Sequence[Bin], minimum: int, per: str, panel: str = ""
) -> list[DrawnBar]:
    """Draw a histogram of unequal-width bars as a density (patients per ``per``).

    Heights are count / width, so that a wide bar of merged bins does not look like a
    peak (the area of each bar is its count); each bar is labelled with its count. The
    x-axis spans exactly the bars (no margin beyond the released outer bounds). Returns
    the bars as read back from the axes' rectangles (:data:`DrawnBar`).
    """
    shown = [(low, high, count) for low, high, count in bins if count > 0]
    counts = [count for _, _, count in shown]
    _check_bar_counts(counts, minimum)
    extents = bar_extents(shown)
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
    ax.set_xlim(extents[0][0], extents[-1][1])
    ax.set_ylabel(f"Patients per {per}", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    drawn = [
        (
            panel,
            float(patch.get_x()),
            float(patch.get_x() + patch.get_width()),
            round(patch.get_width() * patch.get_height()),
        )
        for patch in bars.patches
    ]
    _check_bar_counts([count for *_, count in drawn], minimum)
    return drawn


def forest_plot(results: Mapping[str, Any]) -> ReportFigure:
    """SMC with 95% CI for every change cell; suppressed or undefined cells are named.

    Each row's label ends with the direction of benefit of its measure (↑ better: an
    increase is an improvement, ↓ better: a decrease is), which the caption spells out.
    """
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
        arrow = benefit_arrow(cell)
        direction = f", {arrow} better" if arrow else ""
        if cell.get("suppressed"):
            labels.append(f"{name}{direction}")
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
        labels.append(f"{name} (n = {cell.get('n')}){direction}")
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
    directions = benefit_summary(cells)
    return ReportFigure(
        key="forest_smc",
        title="Figure 1. Standardized mean change from baseline (95% CI)",
        caption=f"SMC = {SMC_LABELS.get(smc_kind, smc_kind)}. Squares: estimate; lines: "
        "95% CI. Negative values are decreases from baseline; which direction is a benefit "
        f"depends on the measure: {directions}",
        png=_png(figure),
        points=tuple(points),
    )


def _change_bins(results: Mapping[str, Any], outcome: str, months: Any) -> list | None:
    for entry in (results.get("distributions") or {}).get("changes") or []:
        if entry.get("outcome") == outcome and entry.get("months") == months:
            return entry.get("bins")
    return None


def _single_bar_text(panel: str, bar: Bin, cell: Mapping[str, Any]) -> str:
    """A distribution of one bar in words: its count and range (all it can tell)."""
    resolution = measure_resolution(cell)
    unit = cell.get("unit") or ""
    low, high, count = bar
    return (
        f"{panel}: all {count} patients' changes lie between "
        f"{format_grid_value(low, resolution)} and {format_grid_value(high, resolution)}"
        f"{' ' + unit if unit else ''} (bins merged to the minimum cell leave a single bar, "
        "so no histogram is drawn)."
    )


def change_distribution_figure(
    results: Mapping[str, Any], outcome: str, number: int | None
) -> ReportFigure:
    """Histograms of one measure's changes, one panel per time point with ≥ 2 bars.

    Time points that are suppressed, have no released distribution or whose released
    distribution is a single bar are stated in ``texts`` instead of drawn; when no time
    point has a panel, the figure is text only (``png`` is ``None``, no number).
    """
    minimum = min_cell(results)
    cells = [c for c in results.get("changes") or [] if c.get("outcome") == outcome]
    label = measure_label(cells[0]) if cells else outcome
    texts: list[str] = []
    panels: list[tuple[str, Mapping[str, Any], list[Bin]]] = []
    for cell in cells:
        panel = f"{cell.get('months')} months"
        if cell.get("suppressed"):
            texts.append(f"{panel}: suppressed ({suppression_rule(cell, minimum)}).")
            continue
        bins = _change_bins(results, outcome, cell.get("months"))
        if not bins:
            texts.append(f"{panel}: no distribution released.")
            continue
        merged = check_releasable_bins(bins, minimum)
        if len(merged) == 1:
            texts.append(_single_bar_text(panel, merged[0], cells[0]))
            continue
        panels.append((panel, cell, merged))
    benefit = benefit_sentence(cells[0]) if cells else ""
    if not panels:
        return ReportFigure(
            key=f"changes_{outcome}",
            title=f"Distribution of change from baseline: {label} (no figure)",
            caption=benefit,
            png=None,
            texts=tuple(texts),
        )
    figure, axes = plt.subplots(1, len(panels), figsize=(FIGURE_WIDTH_IN, 2.6), squeeze=False)
    bars: list[tuple[str, float, float, int]] = []
    drawn: list[DrawnBar] = []
    for ax, (panel, cell, merged) in zip(axes[0], panels, strict=True):
        ax.set_title(panel, fontsize=9)
        drawn.extend(_draw_histogram(ax, merged, minimum, "unit", panel))
        bars.extend((panel, low, high, count) for low, high, count in merged)
        low, high = ax.get_xlim()
        ax.set_xlim(min(low, 0.0), max(high, 0.0))
        ax.axvline(0, color="#888888", linewidth=0.8, linestyle="--")
        arrow = benefit_arrow(cell)
        direction = f"; {arrow} better" if arrow else ""
        ax.set_xlabel(f"Change ({cell.get('unit') or measure_label(cell)}){direction}", fontsize=8)
    figure.tight_layout()
    x_limits = tuple(
        (panel, *(float(v) for v in ax.get_xlim()))
        for ax, (panel, _, _) in zip(axes[0], panels, strict=True)
    )
    return ReportFigure(
        key=f"changes_{outcome}",
        title=f"Figure {number}. Distribution of change from baseline: {label}",
        caption=f"Pooled histogram of the changes (area = patients, count on each bar): the "
        f"bins of results.json, merged so that every bar holds at least {minimum} patients, "
        "outer bounds rounded outward so that no single patient's extreme value is shown. "
        f"Negative changes are decreases. {benefit}",
        png=_png(figure),
        bars=tuple(bars),
        drawn=tuple(drawn),
        x_limits=x_limits,
        texts=tuple(texts),
    )


def followup_figure(results: Mapping[str, Any], number: int) -> ReportFigure | None:
    """Histogram of follow-up time on treatment in months, exactly the released bins, on
    an axis from 0 (the released lowest bound is never below 0); None when not released."""
    bins = (results.get("distributions") or {}).get("followup_months")
    if not bins:
        return None
    minimum = min_cell(results)
    merged = check_releasable_bins(bins, minimum)
    # Follow-up is never negative; results files that coarsened the lowest bound below 0
    # still get an axis from 0.
    merged[0] = (max(merged[0][0], 0.0), merged[0][1], merged[0][2])
    figure, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, 2.6))
    drawn = _draw_histogram(ax, merged, minimum, "month", "follow-up")
    ax.set_xlabel("Follow-up on treatment (months)")
    figure.tight_layout()
    return ReportFigure(
        key="followup_months",
        title=f"Figure {number}. Follow-up time on treatment",
        caption="Pooled histogram (area = patients, count on each bar): the bins of "
        f"results.json, merged so that every bar holds at least {minimum} patients (the "
        "minimum cell); outer bounds rounded outward so that no single patient's extreme "
        "value is shown.",
        png=_png(figure),
        bars=tuple(("follow-up", low, high, count) for low, high, count in merged),
        drawn=tuple(drawn),
        x_limits=(("follow-up", *(float(v) for v in ax.get_xlim())),),
    )


def _released_curve(row: Mapping[str, Any], minimum: int) -> list[tuple[float, ...]]:
    """The released rows of a stratum's curve as (time, surv, lower, upper, n_censor),
    refused when a row has fewer than the minimum cell at risk (never cut again here)."""
    curve = row.get("curve") or {}
    times = list(curve.get("time") or [])
    n_risk = list(curve.get("n_risk") or [])
    if len(n_risk) != len(times):
        raise DisclosureError("a curve's rows do not all state their numbers at risk")
    for count in n_risk:
        if count < minimum:
            raise DisclosureError(
                f"a curve row with {count} patients at risk is below the minimum cell {minimum}"
            )

    def column(key: str) -> list[Any]:
        values = list(curve.get(key) or [None] * len(times))
        if len(values) != len(times):
            raise DisclosureError(f"a curve's {key} does not match its rows")
        return values

    return list(
        zip(
            times,
            column("surv"),
            column("lower"),
            column("upper"),
            column("n_censor"),
            strict=True,
        )
    )


def _check_at_risk(count: int | None, minimum: int) -> None:
    if count is not None and 0 < count < minimum:
        raise DisclosureError(
            f"a number at risk of {count} patients is below the minimum cell {minimum}"
        )


def _not_drawn_sentence(
    entry: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], minimum: int
) -> str:
    """Which strata are not drawn, and why, as a sentence of the caption."""
    parts = [
        f"{stratum_label(entry, row.get('stratum'))} (suppressed: {suppression_rule(row, minimum)})"
        for row in rows
        if row.get("suppressed")
    ] + [
        f"{stratum_label(entry, row.get('stratum'))} (no curve released)"
        for row in rows
        if not row.get("suppressed") and not (row.get("curve") or {}).get("time")
    ]
    return f" Not drawn: {'; '.join(parts)}." if parts else ""


def _draw_curve(
    ax: Axes, stratum: str, released: Sequence[tuple[float, ...]], factor: float, **style: Any
) -> tuple[list[DrawnStep], list[DrawnStep]]:
    """One stratum's step curve from (0, 1) through its released rows, its 95% CI as a
    light band and its censored times as ticks; nothing beyond the last released row.
    Returns the steps and censor marks as read back from the drawn lines."""
    xs = [0.0, *(float(time) * factor for time, *_ in released)]
    ys = [1.0, *(float(surv) for _, surv, *_ in released)]

    def limit(value: Any) -> float:
        return math.nan if value is None else float(value)

    lower = [1.0, *(limit(low) for _, _, low, _, _ in released)]
    upper = [1.0, *(limit(high) for _, _, _, high, _ in released)]
    colour = style["color"]
    ax.fill_between(xs, lower, upper, step="post", color=colour, alpha=0.15, linewidth=0)
    (line,) = ax.step(xs, ys, where="post", linewidth=1.5, **style)
    line.set_clip_on(False)  # a curve at 1 is drawn whole on the top edge
    marks = [
        (x, y) for x, y, (*_, censored) in zip(xs[1:], ys[1:], released, strict=True) if censored
    ]
    steps = [(stratum, float(x), float(y)) for x, y in zip(*line.get_data(), strict=True)]
    if [(x, y) for _, x, y in steps] != list(zip(xs, ys, strict=True)):
        raise DisclosureError("the curve drawn differs from the released rows")
    drawn_marks: list[DrawnStep] = []
    if marks:
        (ticks,) = ax.plot(
            [x for x, _ in marks],
            [y for _, y in marks],
            linestyle="none",
            marker="|",
            markersize=5,
            markeredgewidth=1.0,
            color=colour,
        )
        ticks.set_clip_on(False)
        drawn_marks = [
            (stratum, float(x), float(y)) for x, y in zip(*ticks.get_data(), strict=True)
        ]
    return steps, drawn_marks


def _draw_kaplan_meier(
    ax: Axes,
    risk: Axes,
    entry: Mapping[str, Any],
    drawn_rows: Sequence[tuple[Mapping[str, Any], list[tuple[float, ...]]]],
    shown: Sequence[Mapping[str, Any]],
    colours: Mapping[Any, str],
    positions: Sequence[float],
    minimum: int,
) -> tuple[list[DrawnStep], list[DrawnStep], list[tuple[str, int, str]]]:
    """Draw the curves on ``ax`` and the numbers at risk on ``risk`` (below it); return
    the steps, censor marks and numbers at risk as drawn."""
    _, factor = time_scale(entry)
    steps: list[DrawnStep] = []
    marks: list[DrawnStep] = []
    for row, released in drawn_rows:
        stratum = str(row.get("stratum"))
        curve_steps, curve_marks = _draw_curve(
            ax,
            stratum,
            released,
            factor,
            color=colours[row.get("stratum")],
            label=f"{stratum_label(entry, stratum)} (n = {row.get('n')})",
        )
        steps.extend(curve_steps)
        marks.extend(curve_marks)
    x_max = max([x for _, x, _ in steps] + list(positions))
    ax.set_xlim(0.0, x_max if x_max > 0 else 1.0)
    ax.set_ylim(0.0, 1.0)
    if positions:
        ax.set_xticks(positions, [format_grid_value(x) for x in positions])
    ax.tick_params(labelsize=8, labelbottom=True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    at_risk: list[tuple[str, int, str]] = []
    for index, row in enumerate(shown):
        stratum = str(row.get("stratum"))
        for point, x in zip(row.get("at_risk") or [], positions, strict=False):
            text = risk.text(
                x,
                index,
                format_at_risk(point.get("n_risk"), minimum),
                ha="center",
                va="center",
                fontsize=7,
                color=colours[row.get("stratum")],
            )
            at_risk.append((stratum, int(point.get("months")), text.get_text()))
    risk.set_ylim(len(shown) - 0.5, -0.5)
    risk.set_yticks(range(len(shown)), [stratum_label(entry, r.get("stratum")) for r in shown])
    for tick, row in zip(risk.get_yticklabels(), shown, strict=True):
        tick.set_color(colours[row.get("stratum")])
    risk.tick_params(axis="y", length=0, labelsize=7, pad=16)
    risk.tick_params(axis="x", bottom=False, labelbottom=False)
    risk.spines[:].set_visible(False)
    return steps, marks, at_risk


def kaplan_meier_figure(
    results: Mapping[str, Any], entry: Mapping[str, Any], number: int | None
) -> ReportFigure:
    """The Kaplan–Meier curves of one time-to-event endpoint, numbers at risk below.

    One step curve per stratum shown, from (0, 1) through exactly the released rows of
    its curve (``step(where="post")``), its 95% CI as a light band and censored times as
    ticks; x in months on a month grid, else days; y from 0 to 1. Below the plot, the
    numbers at risk (a row per stratum shown, a column per at-risk month; one not
    released shows as ``<m``). Suppressed strata are not drawn; the caption names them
    and their rule. When no stratum has a curve the figure is text only (``png`` None).
    """
    minimum = min_cell(results)
    endpoint = str(entry.get("endpoint"))
    label = str(entry.get("label") or endpoint)
    by = entry.get("by")
    unit, factor = time_scale(entry)
    rows = list(entry.get("strata") or [])
    shown = [row for row in rows if not row.get("suppressed")]
    drawn_rows = [
        (row, _released_curve(row, minimum))
        for row in shown
        if (row.get("curve") or {}).get("time")
    ]
    not_drawn = _not_drawn_sentence(entry, rows, minimum)
    strata_words = f" by {by_words(entry)}" if by else ""
    key = f"km_{endpoint}"
    if not drawn_rows:
        return ReportFigure(
            key=key,
            title=f"Kaplan–Meier estimate: {label}{strata_words} (no figure)",
            caption=f"No stratum has a curve to draw.{not_drawn}",
            png=None,
            texts=(f"{label}: no curve released.",),
            section=TIME_TO_EVENT_SECTION,
            group=endpoint,
        )
    months = [point.get("months") for point in (shown[0].get("at_risk") or [])]
    positions = [at_risk_grid_time(entry, m) * factor for m in months]
    for row in shown:  # checked before anything is drawn
        for point in row.get("at_risk") or []:
            _check_at_risk(point.get("n_risk"), minimum)
    height = 3.4 + 0.2 * len(shown) + 0.4
    figure, (ax, risk) = plt.subplots(
        2,
        1,
        figsize=(FIGURE_WIDTH_IN, height),
        height_ratios=[3.2, 0.3 + 0.2 * len(shown)],
        sharex=True,
    )
    colours = {
        row.get("stratum"): CURVE_COLOURS[index % len(CURVE_COLOURS)]
        for index, row in enumerate(shown)
    }
    try:
        steps, marks, at_risk = _draw_kaplan_meier(
            ax, risk, entry, drawn_rows, shown, colours, positions, minimum
        )
    except BaseException:
        plt.close(figure)
        raise
    ax.set_xlabel(f"{unit.capitalize()} since JAK inhibitor initiation", fontsize=9)
    ax.set_ylabel(
        "Probability still on the drug"
        if endpoint == "drug_retention"
        else "Probability event-free",
        fontsize=9,
    )
    if months:
        risk.set_title(
            f"Number at risk (at {', '.join(map(str, months))} months)", loc="left", fontsize=8
        )
    else:
        risk.axis("off")
    figure.tight_layout()
    x_limits = (("curves", *(float(v) for v in ax.get_xlim())),)
    grid_days = f"{float(entry.get('time_grid_days', DAYS_PER_MONTH)):g}"
    return ReportFigure(
        key=key,
        title=f"Figure {number}. {label}{strata_words}: Kaplan–Meier estimate",
        caption=f"Kaplan–Meier estimate{strata_words.replace(' by', ' per')} (steps), its "
        f"95% CI (shaded) and censored times (ticks); time from JAK inhibitor initiation in "
        f"{unit} on the plan's grid of {grid_days} days, censored at "
        f"{entry.get('horizon_months')} months. Each curve ends where fewer than {minimum} "
        f"patients remain at risk; below the plot, the numbers at risk (<{minimum}: fewer "
        f"than {minimum}, not shown).{not_drawn}",
        png=_png(figure),
        x_limits=x_limits,
        steps=tuple(steps),
        censor_marks=tuple(marks),
        at_risk=tuple(at_risk),
        section=TIME_TO_EVENT_SECTION,
        group=endpoint,
    )


def section_items(
    tables: Sequence[ReportTable], figures: Sequence[ReportFigure], section: str
) -> list[ReportTable | ReportFigure]:
    """The tables and figures of a report section in reading order: each table followed by
    the figures of its group (its endpoint), then the section's other figures."""
    own_figures = [figure for figure in figures if figure.section == section]
    items: list[ReportTable | ReportFigure] = []
    for table in (table for table in tables if table.section == section):
        items.append(table)
        items.extend(f for f in own_figures if table.group and f.group == table.group)
    items.extend(f for f in own_figures if f not in items)
    return items


def report_sections(tables: Sequence[ReportTable], figures: Sequence[ReportFigure]) -> list[str]:
    """The extra sections of a report (after "Tables" and "Figures"), in order of first
    appearance; none for a results file without time-to-event results."""
    names: list[str] = []
    for item in (*tables, *figures):
        if item.section and item.section not in names:
            names.append(item.section)
    return names


def report_figures(results: Mapping[str, Any]) -> tuple[ReportFigure, ...]:
    """Every figure of the report in the order the report shows them; figures that are
    drawn are numbered, text-only ones (no panel to draw) are not. The Kaplan–Meier
    figures of the time-to-event endpoints come last."""
    figures = [forest_plot(results)]
    outcomes: list[str] = []
    for cell in results.get("changes") or []:
        if cell.get("outcome") not in outcomes:
            outcomes.append(str(cell.get("outcome")))

    def next_number() -> int:
        return sum(1 for figure in figures if figure.png is not None) + 1

    for outcome in outcomes:
        figures.append(change_distribution_figure(results, outcome, next_number()))
    followup = followup_figure(results, next_number())
    if followup is not None:
        figures.append(followup)
    for entry in time_to_event_entries(results):
        figures.append(kaplan_meier_figure(results, entry, next_number()))
    return tuple(figures)
