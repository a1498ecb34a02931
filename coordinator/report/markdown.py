"""report.md: the same tables, figures (as files beside it) and provenance in Markdown.

Pipe tables (GitHub / pandoc flavour) so that a manuscript can take them as they
stand; a suppressed cell shows the rule in its n column and nothing else, a note row (a
test between strata) its sentence in italics in the first column. Sections of their own
(the time-to-event results, the results by stratum, the heterogeneity between centres)
follow the figures, in that order, as in report.html.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sscjak.coordinator.report.figures import ReportFigure, report_sections, section_items
from sscjak.coordinator.report.provenance import (
    methods_paragraph,
    provenance_items,
    report_title,
)
from sscjak.coordinator.report.tables import ReportTable, is_numeric_column

#: Folder of the figure files, relative to report.md.
FIGURES_FOLDER = "figures"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table_markdown(table: ReportTable) -> str:
    """One table as a Markdown pipe table, its title above and notes below."""
    width = len(table.header)
    lines = [
        f"### {table.title}",
        "",
        "| " + " | ".join(map(_cell, table.header)) + " |",
        "|" + "|".join("--:" if is_numeric_column(h) else "---" for h in table.header) + "|",
    ]
    for row in table.rows:
        if row.kind == "section":
            cells = [f"**{row.cells[0]}**"] + [""] * (width - 1)
        elif row.kind == "note":
            cells = [f"*{row.cells[0]}*"] + [""] * (width - 1)
        elif row.kind == "suppressed":
            cells = list(row.cells) + [""] * (width - len(row.cells))
        else:
            cells = list(row.cells)
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines.append("")
    lines.extend(f"- {note}" for note in table.notes)
    return "\n".join(lines)


def figure_markdown(figure: ReportFigure) -> list[str]:
    """A figure's lines: its image link (when drawn), title and caption, statements."""
    parts = []
    if figure.png is not None:
        parts += [f"![{figure.title}]({FIGURES_FOLDER}/{figure.key}.png)", ""]
    parts += [f"**{figure.title}.** {figure.caption}", ""]
    if figure.texts:
        parts += [*(f"- {text}" for text in figure.texts), ""]
    return parts


def report_markdown(
    results: Mapping[str, Any],
    tables: Sequence[ReportTable],
    figures: Sequence[ReportFigure],
) -> str:
    """The whole report in Markdown; figures are linked from the ``figures/`` folder."""
    cohort = results.get("cohort") or {}
    plan = results.get("plan") or {}
    parts = [
        f"# {report_title(results)}",
        "",
        f"{results.get('nodes')} centres · {cohort.get('patients')} patients · results of "
        f"{results.get('created', 'an unrecorded date')} · plan SHA-256 "
        f"`{results.get('plan_sha256')}`",
        "",
        "## Tables",
        "",
    ]
    for table in tables:
        if not table.section:
            parts += [table_markdown(table), ""]
    parts += ["## Figures", ""]
    for figure in figures:
        if not figure.section:
            parts += figure_markdown(figure)
    for section in report_sections(tables, figures):
        parts += [f"## {section}", ""]
        for item in section_items(tables, figures, section):
            if isinstance(item, ReportTable):
                parts += [table_markdown(item), ""]
            else:
                parts += figure_markdown(item)
    parts += ["## Statistical methods", "", methods_paragraph(results), "", "## Provenance", ""]
    parts += [f"- **{label}:** {value}" for label, value in provenance_items(results)]
    plan_text = str(plan.get("toml", "(plan text not recorded)")).rstrip("\n")
    parts += ["", "### Analysis plan", "", "```toml", plan_text, "```", ""]
    return "\n".join(parts)
