"""The study report: the paper's tables and figures written from the pooled results alone.

Entry point: :func:`sscjak.coordinator.report.write_report.write_report` (results dict,
folder) → report.html (self-contained), report.md, tables/*.csv, figures/*.png.
Modules: ``formatting`` (how a number is printed), ``tables`` (what each table holds),
``figures`` (forest plot, histograms and Kaplan–Meier curves, minimum-cell checked),
``provenance`` (plan, versions, methods paragraph), ``html`` and ``markdown`` (layout
only) and ``write_report`` (atomic writing); the command is
:mod:`sscjak.coordinator.commands.report`. Results with ``time_to_event`` add a section
"Time to event" (a table and a Kaplan–Meier figure per endpoint) after the figures.
"""
