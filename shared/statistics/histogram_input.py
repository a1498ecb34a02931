"""The one check of a histogram given to a statistic: its shape, its types, its values.

Every statistic of this package that takes a pooled histogram (the change histogram of
a cell, per-stratum change histograms, any histogram for quantiles) checks it here, so
that one rule answers for all: values one-dimensional and distinct (or strictly
ascending where the caller asks), counts non-negative integers of the same length (or
one row per stratum), and the values integer grid units where the statistic needs them.
"""

from __future__ import annotations

import numpy as np


def checked_histogram(
    values: np.ndarray,
    counts: np.ndarray,
    *,
    values_name: str = "values",
    integer_values: bool = False,
    ascending: bool = False,
    per_stratum: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``(values, counts)`` as arrays after the checks; counts as int64.

    ``ascending`` demands strictly ascending values; otherwise values must only be
    distinct, and with ``per_stratum`` (counts of shape strata × values) both are put in
    ascending order of the values. ``integer_values`` demands integer grid units (int64
    returned). Raises ``ValueError`` naming what is wrong.
    """
    values = np.asarray(values)
    counts = np.asarray(counts)
    if per_stratum:
        if values.ndim != 1:
            raise ValueError(f"{values_name} must be a one-dimensional array")
        if counts.ndim != 2:
            raise ValueError("counts must be a two-dimensional array: one row per stratum")
        if counts.shape[1] != values.size:
            raise ValueError(
                f"each row of counts must have one entry per value: got {counts.shape[1]} "
                f"entries for {values.size} values"
            )
    else:
        if values.ndim != 1 or counts.ndim != 1:
            raise ValueError(f"{values_name} and counts must be one-dimensional arrays")
        if values.shape != counts.shape:
            raise ValueError(
                f"{values_name} and counts must have the same length, "
                f"got {values.size} and {counts.size}"
            )
    if integer_values and not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{values_name} must be integer grid units, got dtype {values.dtype}")
    if not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(f"counts must be integers, got dtype {counts.dtype}")
    if np.any(counts < 0):
        raise ValueError("counts must be >= 0")
    if ascending:
        if values.size > 1 and not np.all(np.diff(values) > 0):
            raise ValueError(f"{values_name} must be strictly ascending")
    elif np.unique(values).size != values.size:
        raise ValueError(f"{values_name} must not repeat a value")
    if integer_values:
        values = values.astype(np.int64)
    counts = counts.astype(np.int64)
    if per_stratum:
        order = np.argsort(values, kind="stable")
        values, counts = values[order], counts[:, order]
    return values, counts
