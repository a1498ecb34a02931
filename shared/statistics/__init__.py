"""Pooled statistics of docs/statistics.md as pure functions of the pooled summary.

Every function takes exact integers (counts, sums in grid units, histograms of grid
values) and returns what R 4.x gives on the stacked rows:

* :mod:`.quantiles` — ``quantile(x, type = 7)`` of a histogram (Hyndman & Fan 1996).
* :mod:`.moments` — mean, SD, Pearson r from exact integer sums.
* :mod:`.signed_rank` — ``wilcox.test(d)`` with R's defaults; the opt-in exact
  conditional p-value of ``exactRankTests::wilcox.exact``.
* :mod:`.smc` — standardized mean changes and their large-sample CI (Becker 1988).
* :mod:`.poisson` — exact Poisson rate CI (Garwood 1936), as ``poisson.test``.
* :mod:`.histogram_input` — the one check of a histogram given to any statistic.
* :mod:`.normal_approximation` — R's continuity-corrected normal p of a rank statistic.
* :mod:`.change_cell` — all of the above for one change cell, as the results file's keys.
* :mod:`.survival` — Kaplan–Meier curves, medians and numbers at risk as R
  ``survfit``, the log-rank test as ``survdiff``, from event and censoring histograms.
* :mod:`.between_strata` — ``kruskal.test(d ~ stratum)`` and two-sample
  ``wilcox.test(d ~ stratum)`` from per-stratum change histograms.
* :mod:`.heterogeneity` — DerSimonian–Laird (metafor ``rma(method = "DL")``) from
  fixed-point sums of per-centre terms.

No I/O, no pandas, no randomness.
"""
