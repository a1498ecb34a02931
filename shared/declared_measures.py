"""Visit measures a plan declares beyond the built-in ones (docs/input-files.md).

A study that follows patients on a measure the data contract does not name — HAQ-DI 0–3 by
0.125, the 6-minute walk distance 0–1000 m by 1, NT-proBNP — declares it in the plan::

    [[measures]]
    name = "haq_di"          # the visits column
    label = "HAQ-DI"
    unit = "points"
    low = 0
    high = 3
    resolution = 0.125       # 1/k for a whole k from 1 to 1000
    benefit = "decrease"     # which direction of change is a benefit

A declared measure is then read, validated and analysed like a built-in one: values outside
[low, high] are errors, values off the grid are rounded to it and counted, the change is on
the grid. Its range must be on its grid, and the width of the range is bounded so the change
histogram of one cell stays small (:data:`MAX_RANGE_UNITS`).

Parsing lists every problem in plain words; nothing here reads patient data.
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction
from typing import Final

from sscjak.shared.data_contract import (
    BENEFIT_DIRECTIONS,
    CONTRACT_COLUMN_NAMES,
    IDENTIFYING_COLUMN_PATTERNS,
    Measure,
)

#: A declared measure's name: the visits column, lower case, a letter first.
NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: At most this many declared measures in one plan.
MAX_DECLARED_MEASURES: Final = 20
#: The finest grid: a thousandth of the unit.
MAX_UNITS_PER_VALUE: Final = 1000
#: The widest range in grid units: a change histogram has 2 × this + 1 bins per cell.
MAX_RANGE_UNITS: Final = 100_000
#: Longest label and unit text.
MAX_LABEL_CHARS: Final = 80
#: The keys of one ``[[measures]]`` table, in canonical order.
DECLARED_MEASURE_KEYS: Final = ("name", "label", "unit", "low", "high", "resolution", "benefit")


def parse_declared_measures(value: object, problems: list[str]) -> tuple[Measure, ...]:
    """The ``[[measures]]`` tables of a plan as :class:`Measure` objects; problems appended."""
    if not isinstance(value, list) or any(not isinstance(item, dict) for item in value):
        problems.append("measures: expected [[measures]] tables")
        return ()
    if len(value) > MAX_DECLARED_MEASURES:
        problems.append(f"measures: at most {MAX_DECLARED_MEASURES} may be declared")
        return ()
    measures: list[Measure] = []
    for position, item in enumerate(value, start=1):
        measure = _parse_one(item, f"measures[{position}]", problems)
        if measure is not None:
            measures.append(measure)
    names = [m.name for m in measures]
    if len(set(names)) != len(names):
        problems.append("measures: each name may be declared only once")
    return tuple(measures)


def _parse_one(item: dict[str, object], where: str, problems: list[str]) -> Measure | None:
    found: list[str] = []
    unknown = sorted(set(item) - set(DECLARED_MEASURE_KEYS))
    if unknown:
        found.append(
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(DECLARED_MEASURE_KEYS)}"
        )
    missing = [key for key in DECLARED_MEASURE_KEYS if key not in item]
    if missing:
        found.append(f"missing key(s) {', '.join(missing)}")
        problems.extend(f"{where}: {problem}" for problem in found)
        return None
    name = _check_name(item["name"], found)
    label = _check_text("label", item["label"], found)
    unit = _check_text("unit", item["unit"], found)
    resolution = _check_resolution(item["resolution"], found)
    low = _check_bound("low", item["low"], resolution, found)
    high = _check_bound("high", item["high"], resolution, found)
    benefit = item["benefit"]
    if benefit not in BENEFIT_DIRECTIONS:
        found.append(f"benefit: expected one of {', '.join(BENEFIT_DIRECTIONS)}, got {benefit!r}")
    if low is not None and high is not None and resolution is not None:
        if low >= high:
            found.append(f"low ({low:g}) must be below high ({high:g})")
        elif (Fraction(repr(high)) - Fraction(repr(low))) / resolution > MAX_RANGE_UNITS:
            found.append(
                f"the range {low:g} to {high:g} by {_number_text(resolution)} has more than "
                f"{MAX_RANGE_UNITS:,} steps; choose a coarser resolution or a narrower range"
            )
    if found or name is None or resolution is None or low is None or high is None:
        problems.extend(f"{where}: {problem}" for problem in found)
        return None
    return Measure(
        name, low, high, resolution, resolution == 1, label, unit, str(benefit)
    )


def _check_name(value: object, found: list[str]) -> str | None:
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        found.append(
            f"name: expected a visits column name (lower-case letters, digits and _, a "
            f"letter first, at most 40 characters), got {value!r}"
        )
        return None
    if value in CONTRACT_COLUMN_NAMES:
        found.append(f"name: {value!r} is already a column of the data contract")
        return None
    for looks_like, pattern in IDENTIFYING_COLUMN_PATTERNS:
        if re.fullmatch(pattern, value):
            found.append(f"name: {value!r} looks like {looks_like}, which never leaves a node")
            return None
    return value


def _check_text(key: str, value: object, found: list[str]) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LABEL_CHARS:
        found.append(f"{key}: expected a non-empty text of at most {MAX_LABEL_CHARS} characters")
        return ""
    return value.strip()


def _is_number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
    )


def _check_resolution(value: object, found: list[str]) -> Fraction | None:
    if _is_number(value) and value > 0:
        exact = Fraction(repr(float(value)))
        inverse = 1 / exact
        if inverse.denominator == 1 and inverse <= MAX_UNITS_PER_VALUE:
            return exact
    found.append(
        f"resolution: expected 1/k for a whole k from 1 to {MAX_UNITS_PER_VALUE} "
        f"(1, 0.5, 0.25, 0.125, 0.1, 0.01 …), got {value!r}"
    )
    return None


def _check_bound(
    key: str, value: object, resolution: Fraction | None, found: list[str]
) -> float | None:
    if not _is_number(value) or abs(value) > 1e9:  # type: ignore[arg-type]
        found.append(f"{key}: expected a finite number, got {value!r}")
        return None
    bound = float(value)  # type: ignore[arg-type]
    if resolution is not None and (Fraction(repr(bound)) / resolution).denominator != 1:
        found.append(f"{key}: {bound:g} is not on the grid of {_number_text(resolution)}")
        return None
    return bound


def _number_text(value: Fraction | float) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def declared_measures_toml(measures: tuple[Measure, ...]) -> list[str]:
    """The canonical TOML lines of declared measures: one ``[[measures]]`` table each."""
    lines: list[str] = []
    for measure in measures:
        lines += [
            "",
            "[[measures]]",
            f"name = {json.dumps(measure.name)}",
            f"label = {json.dumps(measure.label, ensure_ascii=False)}",
            f"unit = {json.dumps(measure.unit, ensure_ascii=False)}",
            f"low = {_number_text(measure.low)}",
            f"high = {_number_text(measure.high)}",
            f"resolution = {_number_text(measure.resolution)}",
            f"benefit = {json.dumps(measure.benefit)}",
        ]
    return lines
