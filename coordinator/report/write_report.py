"""Write the study report (report.html, report.md, tables/*.csv, figures/*.png) to a folder.

The entry point :func:`write_report` takes the pooled results dict alone (docs/results-file.md:
it never sees rows or node vectors) and a folder. Everything is first written to
a staging folder beside the target; only when every file is complete does it move into
place, so a failure (a figure refused for disclosure, a full disk) leaves the previous
report, or none, never a half-written one. Files of the target folder that are not
part of a report (``results.json`` beside it, say) are left alone.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sscjak.coordinator.report.figures import DisclosureError, report_figures
from sscjak.coordinator.report.html import report_html
from sscjak.coordinator.report.markdown import FIGURES_FOLDER, report_markdown
from sscjak.coordinator.report.tables import ReportTable, report_tables
from sscjak.coordinator.results.schema import ResultsSchemaError, check_results
from sscjak.shared.errors import SscjakError

HTML_NAME = "report.html"
MARKDOWN_NAME = "report.md"
TABLES_FOLDER = "tables"
#: Everything a report consists of, in the order it is moved into place (HTML last:
#: a report.html present means the report beside it is complete).
REPORT_ENTRIES: tuple[str, ...] = (TABLES_FOLDER, FIGURES_FOLDER, MARKDOWN_NAME, HTML_NAME)
#: Permissions of a report folder created by :func:`write_report` (rwxr-xr-x).
REPORT_FOLDER_MODE = 0o755


class ReportError(SscjakError, ValueError):
    """The report cannot be written from these results; nothing was written."""


@dataclass(frozen=True)
class ReportFiles:
    """Paths of a written report."""

    html: Path
    markdown: Path
    tables: tuple[Path, ...]
    figures: tuple[Path, ...]


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def write_table_csv(table: ReportTable, path: Path) -> Path:
    """The table's unrounded rows (values as in results.json; empty = null) as CSV."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(table.csv_header)
        writer.writerows([_csv_value(value) for value in row] for row in table.csv_rows)
    return path


def _check_results(results: Any) -> None:
    try:
        check_results(results)
    except ResultsSchemaError as error:
        raise ReportError(str(error)) from None


def _write_into(results: Mapping[str, Any], folder: Path) -> None:
    tables = report_tables(results)
    try:
        figures = report_figures(results)
    except DisclosureError as error:
        raise ReportError(
            f"report refused, a figure would disclose a small cell: {error}"
        ) from error
    (folder / TABLES_FOLDER).mkdir()
    for table in tables:
        write_table_csv(table, folder / TABLES_FOLDER / f"{table.key}.csv")
    (folder / FIGURES_FOLDER).mkdir()
    for figure in figures:
        if figure.png is not None:
            (folder / FIGURES_FOLDER / f"{figure.key}.png").write_bytes(figure.png)
    (folder / MARKDOWN_NAME).write_text(report_markdown(results, tables, figures), encoding="utf-8")
    (folder / HTML_NAME).write_text(report_html(results, tables, figures), encoding="utf-8")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Replace the report entries of ``out_dir`` by those of ``staging``, all or none."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.previous-report-", dir=out_dir.parent))
    moved_aside: list[str] = []
    placed: list[str] = []
    try:
        for name in REPORT_ENTRIES:
            if (out_dir / name).exists() or (out_dir / name).is_symlink():
                os.rename(out_dir / name, backup / name)
                moved_aside.append(name)
        for name in REPORT_ENTRIES:
            os.rename(staging / name, out_dir / name)
            placed.append(name)
    except BaseException:
        for name in placed:
            _remove(out_dir / name)
        for name in moved_aside:
            os.rename(backup / name, out_dir / name)
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def write_report(results: Mapping[str, Any], out_dir: Path) -> ReportFiles:
    """Write the study report for ``results`` into ``out_dir``; return the files written.

    ``out_dir`` is created when missing (its parents too). Raises :class:`ReportError`
    (a :class:`~sscjak.shared.errors.SscjakError`) when the results are not a results
    object of a readable version, a figure would break the minimum-cell rule, or the
    folder cannot be written (permissions, full disk); then nothing in ``out_dir`` has
    changed.
    """
    _check_results(results)
    out_dir = Path(out_dir)
    # Stage beside the real folder (a symlinked out_dir included): same file system, so
    # every move into place is a rename.
    target = out_dir.resolve()
    if target.exists() and not target.is_dir():
        raise ReportError(f"{out_dir} exists and is not a folder")
    staging: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.report-", dir=target.parent))
        # mkdtemp makes the folder private (0700); a report folder is an ordinary folder.
        staging.chmod(REPORT_FOLDER_MODE)
        _write_into(results, staging)
        _move_into_place(staging, target)
    except OSError as error:
        raise ReportError(f"cannot write the report in {out_dir}: {error}") from error
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return ReportFiles(
        html=out_dir / HTML_NAME,
        markdown=out_dir / MARKDOWN_NAME,
        tables=tuple(sorted((out_dir / TABLES_FOLDER).glob("*.csv"))),
        figures=tuple(sorted((out_dir / FIGURES_FOLDER).glob("*.png"))),
    )
