"""report.html: one self-contained page (inline CSS, figures as data URIs), printable.

The page makes no request of its own: a Content-Security-Policy meta tag forbids every
source but inline styles and ``data:`` images, so even a stray reference could not be
fetched. ``@media print`` keeps rows, figures and short tables whole across pages and
repeats table headers on every page. Tables and figures of a section of their own (the
time-to-event results, the results by stratum, the heterogeneity between centres) follow
the figures under that section's heading, in that order.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from sscjak.coordinator.report.figures import ReportFigure, report_sections, section_items
from sscjak.coordinator.report.provenance import (
    methods_paragraph,
    provenance_items,
    report_title,
)
from sscjak.coordinator.report.tables import ReportTable, is_numeric_column

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; font-size: 14px;
       line-height: 1.45; color: #1b1b1b; background: #ffffff; margin: 0 auto;
       max-width: 1100px; padding: 24px 32px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #c8c8c8;
     padding-bottom: 4px; }
h3 { font-size: 15px; margin: 24px 0 6px; }
.summary { color: #444444; margin: 0 0 16px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 4px;
        border-top: 2px solid #1b1b1b; border-bottom: 2px solid #1b1b1b; }
th, td { padding: 4px 8px; text-align: left; vertical-align: top; }
table.narrow { width: auto; min-width: 60%; }
td:first-child { min-width: 9em; }
thead th { border-bottom: 1px solid #1b1b1b; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
span.nb { white-space: nowrap; }
tr.section td { font-weight: 600; padding-top: 8px; }
tr.suppressed td.rule { color: #6b4e00; font-style: italic; }
tbody tr:nth-child(even) td { background: #f6f7f9; }
.notes { font-size: 12px; color: #444444; margin: 4px 0 0; padding-left: 18px; }
figure { margin: 16px 0; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: #444444; margin-top: 4px; }
figcaption strong { color: #1b1b1b; }
.figure-text { font-size: 13px; margin: 16px 0; }
ul.figure-notes { font-size: 12px; color: #444444; margin: 4px 0 0; padding-left: 18px; }
dl.provenance { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px;
                margin: 8px 0; }
dl.provenance dt { font-weight: 600; }
dl.provenance dd { margin: 0; overflow-wrap: anywhere; }
pre.plan { background: #f6f7f9; border: 1px solid #dddddd; padding: 8px 12px;
           font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
@page { size: A4; margin: 15mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  h3 { break-after: avoid; page-break-after: avoid; }
  table { font-size: 8pt; }
  th, td { padding: 2px 4px; }
  td:first-child { min-width: 7em; }
  thead { display: table-header-group; }
  tr, figure, dl.provenance, .notes { break-inside: avoid; page-break-inside: avoid; }
  section.table-block { break-inside: avoid; page-break-inside: avoid; }
  tbody tr:nth-child(even) td { background: none; }
  pre.plan { border: none; background: none; }
}
"""


def _unbroken_parts(text: str) -> str:
    """``estimate (interval)`` that may wrap only before its parenthesis, never inside."""
    head, separator, tail = text.partition(" (")
    if not separator:
        return f'<span class="nb">{escape(text)}</span>'
    return f'<span class="nb">{escape(head)}</span> <span class="nb">({escape(tail)}</span>'


def table_html(table: ReportTable) -> str:
    """One table with its title, header, rows and notes."""
    narrow = ' class="narrow"' if len(table.header) <= 2 else ""
    parts = [
        f'<section class="table-block" id="{escape(table.key)}">',
        f"<h3>{escape(table.title)}</h3>",
        f"<table{narrow}>",
        "<thead><tr>",
    ]
    for header in table.header:
        css = ' class="num"' if is_numeric_column(header) and header != table.header[0] else ""
        parts.append(f'<th scope="col"{css}>{escape(header)}</th>')
    parts.append("</tr></thead><tbody>")
    width = len(table.header)
    for row in table.rows:
        if row.kind == "section":
            parts.append(
                f'<tr class="section"><td colspan="{width}">{escape(row.cells[0])}</td></tr>'
            )
            continue
        if row.kind == "note":
            parts.append(
                f'<tr class="note"><td colspan="{width}"><em>{escape(row.cells[0])}</em></td></tr>'
            )
            continue
        cells = []
        for index, cell in enumerate(row.cells):
            if row.kind == "suppressed" and index == row.span_from:
                cells.append(f'<td class="rule" colspan="{width - index}">{escape(cell)}</td>')
                break
            if index > 0 and is_numeric_column(table.header[index]):
                cells.append(f'<td class="num">{_unbroken_parts(cell)}</td>')
            else:
                cells.append(f"<td>{escape(cell)}</td>")
        kind = ' class="suppressed"' if row.kind == "suppressed" else ""
        parts.append(f"<tr{kind}>{''.join(cells)}</tr>")
    parts.append("</tbody></table>")
    if table.notes:
        parts.append('<ul class="notes">')
        parts.extend(f"<li>{escape(note)}</li>" for note in table.notes)
        parts.append("</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def _figure_data(figure: ReportFigure) -> str:
    """The bars as drawn and each panel's x-axis range, as JSON data attributes.

    ``data-bars`` lists ``[panel, left, right, patients]`` read back from the drawn axes,
    ``data-released-bins`` the ``[panel, low, high, patients]`` bins of results.json they
    draw, and ``data-x-limits`` ``[panel, x min, x max]``: what the figure shows, in
    a form a reader's tools (and the browser test) can check against results.json. A
    Kaplan–Meier figure adds ``data-steps`` (``[stratum, x, survival]`` of its drawn step
    curves), ``data-censor-marks`` and ``data-at-risk`` (``[stratum, months, text]``).
    """
    attributes = {
        "data-bars": [list(bar) for bar in figure.drawn],
        "data-released-bins": [list(bar) for bar in figure.bars],
        "data-x-limits": [list(limits) for limits in figure.x_limits],
        "data-steps": [list(step) for step in figure.steps],
        "data-censor-marks": [list(mark) for mark in figure.censor_marks],
        "data-at-risk": [list(cell) for cell in figure.at_risk],
    }
    return "".join(
        f' {name}="{escape(json.dumps(value, allow_nan=False), quote=True)}"'
        for name, value in attributes.items()
        if value
    )


def _texts_html(figure: ReportFigure) -> str:
    if not figure.texts:
        return ""
    items = "".join(f"<li>{escape(text)}</li>" for text in figure.texts)
    return f'<ul class="figure-notes">{items}</ul>'


def figure_html(figure: ReportFigure) -> str:
    """A figure embedded as a base64 PNG data URI, with its title, caption and drawn data;
    a figure without an image (no panel to draw) as its title and statements in words."""
    if figure.png is None:
        return (
            f'<div class="figure-text" id="{escape(figure.key)}">'
            f"<p><strong>{escape(figure.title)}.</strong> {escape(figure.caption)}</p>"
            f"{_texts_html(figure)}</div>"
        )
    data = base64.b64encode(figure.png).decode("ascii")
    return (
        f'<figure id="{escape(figure.key)}"{_figure_data(figure)}>'
        f'<img src="data:image/png;base64,{data}" alt="{escape(figure.title)}">'
        f"<figcaption><strong>{escape(figure.title)}.</strong> "
        f"{escape(figure.caption)}{_texts_html(figure)}</figcaption></figure>"
    )


def report_html(
    results: Mapping[str, Any],
    tables: Sequence[ReportTable],
    figures: Sequence[ReportFigure],
) -> str:
    """The whole report page."""
    title = report_title(results)
    cohort = results.get("cohort") or {}
    plan = results.get("plan") or {}
    summary = (
        f"{results.get('nodes')} centres · {cohort.get('patients')} patients · "
        f"results of {results.get('created', 'an unrecorded date')} · "
        f"plan SHA-256 {str(results.get('plan_sha256'))[:12]}…"
    )
    provenance = "\n".join(
        f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>"
        for label, value in provenance_items(results)
    )
    body = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="summary">{escape(summary)}</p>',
        "<h2>Tables</h2>",
        *(table_html(table) for table in tables if not table.section),
        "<h2>Figures</h2>",
        *(figure_html(figure) for figure in figures if not figure.section),
    ]
    for section in report_sections(tables, figures):
        body.append(f"<h2>{escape(section)}</h2>")
        body.extend(
            table_html(item) if isinstance(item, ReportTable) else figure_html(item)
            for item in section_items(tables, figures, section)
        )
    body += [
        "<h2>Statistical methods</h2>",
        f'<p class="methods">{escape(methods_paragraph(results))}</p>',
        "<h2>Provenance</h2>",
        f'<dl class="provenance">{provenance}</dl>',
        "<h3>Analysis plan</h3>",
        f'<pre class="plan">{escape(str(plan.get("toml", "(plan text not recorded)")))}</pre>',
        "</body>",
        "</html>",
    ]
    return "\n".join(body) + "\n"
