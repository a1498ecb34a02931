"""The study report: the paper's tables and figures written from the pooled results alone.

Entry point: :func:`sscjak.coordinator.report.write_report.write_report` (results dict,
folder) → report.html (self-contained), report.md, tables/*.csv, figures/*.png.
Modules: ``formatting`` (how a number is printed), ``tables`` (what each table holds),
``figures`` (forest plot and histograms, minimum-cell checked), ``provenance`` (plan,
versions, methods paragraph), ``html`` and ``markdown`` (layout only) and
``write_report`` (atomic writing); the command is :mod:`sscjak.coordinator.commands.report`.
"""
