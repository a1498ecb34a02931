"""Internal consistency of the pooled summary vector, checked before any result is computed.

Secure aggregation gives the coordinator only the sum of the nodes' vectors, so it cannot
look at one centre's vector, and a node that sends garbage (negative counts, ``centres =
0``, a histogram that does not add up to its cell's n, a value chosen to wrap the int64
sum) cannot be singled out. What the coordinator can do is check that the *pooled*
vector could have come from honest nodes: every check below is an identity or inequality
that holds for each honest node's vector (``sscjak.node.summarise.summary_vector`` on
validated data) and is preserved by addition, so it holds for any sum of honest
vectors. A vector that fails one is refused with the failing checks named.

All arithmetic is on Python integers, so no check can itself overflow: a value that
wrapped modulo 2**64 shows up as a negative count or as sums that disagree.

A lie that is consistent (invented patients with internally consistent numbers) passes
every check; no sum protocol can catch it (docs/pooled-checks.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from sscjak.coordinator.results.heterogeneity import heterogeneity_problems
from sscjak.shared.data_contract import EVENT_TYPES, POSITIVE_BASELINE_ONLY, Measure
from sscjak.shared.errors import SscjakError
from sscjak.shared.summary_layout import (
    Segment,
    SummaryLayout,
    cell_prefix,
    stratum_cell_prefix,
    tte_segment,
)

__all__ = [
    "MAX_PROBLEMS_SHOWN",
    "MESSAGE_HEAD",
    "InconsistentPooledSummaryError",
    "check_pooled_summary",
    "consistency_problems",
    "format_problems",
]

#: At most this many problems are spelled out in the error message (all are kept on it).
MAX_PROBLEMS_SHOWN = 20
#: The change-cell sums that are sums of squares (never negative).
_SQUARE_SUMS = ("sum_baseline_sq", "sum_change_sq")
#: The heterogeneity terms that may be negative (Σwθ: an estimate may be negative).
_SIGNED_TERMS = ("sum_w_theta",)
#: The cell sums that count patients (never negative).
_COUNT_SUMS = ("n",)
#: The outcome whose cell counts only patients on glucocorticoids at baseline.
_GC_OUTCOME = "gc_dose_mg"

MESSAGE_HEAD = "the pooled summary is inconsistent, results not written:"
MESSAGE_TAIL = (
    "At least one centre sent a summary no honest node produces. Secure aggregation hides "
    "which centre sent it: each centre can compare `sscjak-node preview` for this plan "
    "with what its audit log (`sscjak-node history`) records as released."
)


class InconsistentPooledSummaryError(SscjakError, ValueError):
    """The pooled vector fails consistency checks; ``problems`` lists every failing check."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(format_problems(self.problems))


def format_problems(problems: tuple[str, ...] | list[str]) -> str:
    """The error text: a fixed first line, the first problems, how many more, what to do."""
    shown = [f"  - {problem}" for problem in problems[:MAX_PROBLEMS_SHOWN]]
    hidden = len(problems) - len(shown)
    if hidden > 0:
        shown.append(f"  … and {hidden} more")
    return "\n".join([MESSAGE_HEAD, *shown, MESSAGE_TAIL])


@dataclass(frozen=True)
class _Pooled:
    """The pooled vector as Python integers, read through the layout."""

    layout: SummaryLayout
    values: list[int]

    def segment(self, name: str) -> list[int]:
        segment = self.layout.segment(name)
        return self.values[segment.offset : segment.stop]

    def counts(self, name: str) -> dict[str, int]:
        labels = self.layout.segment(name).labels
        return dict(zip(labels, self.segment(name), strict=True))

    def count(self, name: str, label: str) -> int:
        return self.counts(name)[label]

    def value(self, qualified: str) -> int:
        """One count by ``segment.label`` (e.g. ``safety.patients.death``)."""
        name, label = qualified.rsplit(".", 1)
        return self.count(name, label)

    @property
    def patients(self) -> int:
        return self.count("cohort", "patients")


Check = Callable[[_Pooled, int], Iterator[str]]


def consistency_problems(pooled: np.ndarray, layout: SummaryLayout, participants: int) -> list[str]:
    """Every failing consistency check of ``pooled`` (summed over ``participants`` nodes).

    Returns one plain sentence per failing check, naming the segment or label and the
    numbers; an empty list means the vector is consistent. Raises ValueError if the
    vector does not even have the layout's shape and dtype.
    """
    layout.check(pooled)
    vector = _Pooled(layout, [int(v) for v in pooled.tolist()])
    problems: list[str] = []
    for check in _CHECKS:
        problems.extend(check(vector, participants))
    return problems


def check_pooled_summary(pooled: np.ndarray, layout: SummaryLayout, participants: int) -> None:
    """Raise :class:`InconsistentPooledSummaryError` naming every failing check, if any."""
    problems = consistency_problems(pooled, layout, participants)
    if problems:
        raise InconsistentPooledSummaryError(problems)


# --- the checks -------------------------------------------------------------------------


def _non_negative(vector: _Pooled, _participants: int) -> Iterator[str]:
    """Counts, histogram bins, cell n and sums of squares are ≥ 0 for every honest node.

    Only Σx₀, Σd and Σx₀·d of a change cell may be negative; they are checked against the
    histogram and the ranges instead.
    """
    for segment in vector.layout.segments:
        values = vector.segment(segment.name)
        if segment.is_histogram:
            yield from _negative_bins(segment, values)
            continue
        checked = (
            _COUNT_SUMS + _SQUARE_SUMS
            if segment.name.endswith(".sums")
            else tuple(label for label in segment.labels if label not in _SIGNED_TERMS)
        )
        negative = [
            f"{label} = {value}"
            for label, value in zip(segment.labels, values, strict=True)
            if label in checked and value < 0
        ]
        if negative:
            yield f"{segment.name}: negative {', '.join(negative)} (these are never negative)"


def _negative_bins(segment: Segment, values: list[int]) -> Iterator[str]:
    """Histogram bins count patients, so none is negative."""
    negative = [(index, value) for index, value in enumerate(values) if value < 0]
    if negative:
        index, value = negative[0]
        yield (
            f"{segment.name}: {len(negative)} negative bin(s), the first at "
            f"{segment.origin + index} grid units holds {value} (a patient count is never "
            "negative)"
        )


def _centres(vector: _Pooled, participants: int) -> Iterator[str]:
    """Each node sets ``centres`` to 1, so the pooled value is the number of participants."""
    centres = vector.count("centres", "centres")
    if centres != participants:
        yield f"centres is {centres} but {participants} node(s) took part (each node adds 1)"


def _histogram_moments(segment: Segment, values: list[int]) -> tuple[int, int, int]:
    """(Σ count, Σ bin·count, Σ bin²·count) of a histogram, exactly."""
    total = first = second = 0
    for index, count in enumerate(values):
        if count:
            value = segment.origin + index
            total += count
            first += value * count
            second += value * value * count
    return total, first, second


def _followup(vector: _Pooled, _participants: int) -> Iterator[str]:
    """Every patient is in exactly one follow-up-day bin, and the total is Σ day·count."""
    segment = vector.layout.segment("followup_days_histogram")
    total, day_sum, _ = _histogram_moments(segment, vector.segment(segment.name))
    if total != vector.patients:
        yield (
            f"followup_days_histogram holds {total} patients but cohort.patients is "
            f"{vector.patients}"
        )
    followup_total = vector.count("cohort", "followup_days_total")
    if day_sum != followup_total:
        yield (
            f"cohort.followup_days_total is {followup_total} but the follow-up histogram's "
            f"Σ day·count is {day_sum}"
        )


def _age(vector: _Pooled, _participants: int) -> Iterator[str]:
    """Every patient is in exactly one age bin or counted without an age (birth year
    missing, or an age outside the histogram): histogram total + those == patients."""
    segment = vector.layout.segment("age_at_start_histogram")
    total, _, _ = _histogram_moments(segment, vector.segment(segment.name))
    unavailable = vector.counts("age_at_start")
    without = sum(unavailable.values())
    if total + without != vector.patients:
        details = ", ".join(f"{label} {count}" for label, count in unavailable.items())
        yield (
            f"age_at_start_histogram holds {total} patients and age_at_start {without} "
            f"({details}), together {total + without}, but cohort.patients is {vector.patients}"
        )


def _categories(vector: _Pooled, _participants: int) -> Iterator[str]:
    """Every patient has one drug (required) and one sex / SSc subset or ``missing``."""
    for name in ("drugs", "sex", "ssc_subset"):
        counts = vector.counts(name)
        total = sum(counts.values())
        if total != vector.patients:
            yield (
                f"{name} counts add up to {total} but cohort.patients is {vector.patients} "
                "(every patient is counted in exactly one category)"
            )


def _cells_within_cohort(vector: _Pooled, _participants: int) -> Iterator[str]:
    """A change cell counts patients of the cohort (with a baseline), so n ≤ patients."""
    larger = [
        f"{outcome}.{months} (n = {n})"
        for outcome, months in vector.layout.plan.cells
        if (n := vector.count(f"{cell_prefix(outcome, months)}.sums", "n")) > vector.patients
    ]
    if larger:
        yield (
            f"change cells with n above cohort.patients = {vector.patients}: {', '.join(larger)}"
        )


def _change_cells(vector: _Pooled, _participants: int) -> Iterator[str]:
    """The consistency of each change cell's sums with its histogram and the ranges."""
    for outcome, months in vector.layout.plan.cells:
        yield from _change_cell(vector, outcome, months)


def _change_cell(vector: _Pooled, outcome: str, months: int) -> Iterator[str]:
    yield from _cell_with_prefix(vector, outcome, months, cell_prefix(outcome, months))


def _cell_with_prefix(vector: _Pooled, outcome: str, months: int, prefix: str) -> Iterator[str]:
    """Histogram total = n, Σ change·count = Σd and Σ change²·count = Σd² (each patient's
    change d is in exactly one bin), then the ranges and Cauchy–Schwarz."""
    sums = vector.counts(f"{prefix}.sums")
    n = sums["n"]
    segment = vector.layout.segment(f"{prefix}.histogram")
    total, first, second = _histogram_moments(segment, vector.segment(segment.name))
    if total != n:
        yield f"{prefix}.histogram holds {total} patients but {prefix}.sums n = {n}"
    if first != sums["sum_change"]:
        yield (
            f"{prefix}.sums: sum_change = {sums['sum_change']} but the histogram's "
            f"Σ change·count = {first}"
        )
    if second != sums["sum_change_sq"]:
        yield (
            f"{prefix}.sums: sum_change_sq = {sums['sum_change_sq']} but the histogram's "
            f"Σ change²·count = {second}"
        )
    yield from _cell_ranges(prefix, vector.layout.plan.measure(outcome), sums)
    yield from _cell_cauchy_schwarz(prefix, sums)


def _cell_ranges(prefix: str, measure: Measure, sums: dict[str, int]) -> Iterator[str]:
    """Baseline x₀ and follow-up value x₀ + d lie in the measure's range (validated input).

    For a measure counted only with a positive baseline, x₀ ≥ 1 grid unit. Summed over n
    patients: n·low ≤ Σx₀ ≤ n·high, Σx₀² ≤ n·max(low², high²), n·low ≤ Σx₀ + Σd ≤ n·high.
    """
    n, low, high = sums["n"], measure.low_units, measure.high_units
    baseline_low = max(low, 1) if measure.name in POSITIVE_BASELINE_ONLY else low
    s_x0, s_d = sums["sum_baseline"], sums["sum_change"]
    if not n * baseline_low <= s_x0 <= n * high:
        yield (
            f"{prefix}.sums: sum_baseline = {s_x0} is outside n·{baseline_low} … n·{high} "
            f"= {n * baseline_low} … {n * high} grid units for n = {n}"
        )
    largest_square = n * max(low * low, high * high)
    if sums["sum_baseline_sq"] > largest_square:
        yield (
            f"{prefix}.sums: sum_baseline_sq = {sums['sum_baseline_sq']} exceeds "
            f"n·max(low², high²) = {largest_square}"
        )
    if not n * low <= s_x0 + s_d <= n * high:
        yield (
            f"{prefix}.sums: sum_baseline + sum_change = {s_x0 + s_d} (the follow-up values) "
            f"is outside n·{low} … n·{high} = {n * low} … {n * high} grid units"
        )


def _cell_cauchy_schwarz(prefix: str, sums: dict[str, int]) -> Iterator[str]:
    """Cauchy–Schwarz, exact on integers: (Σx₀)² ≤ n·Σx₀², (Σx₀·d)² ≤ Σx₀²·Σd²."""
    n, s_x0, s_x0sq = sums["n"], sums["sum_baseline"], sums["sum_baseline_sq"]
    if s_x0 * s_x0 > n * s_x0sq:
        yield (
            f"{prefix}.sums: sum_baseline² = {s_x0 * s_x0} exceeds n·sum_baseline_sq = "
            f"{n * s_x0sq} (Cauchy–Schwarz)"
        )
    s_x0d, s_dsq = sums["sum_baseline_change"], sums["sum_change_sq"]
    if s_x0d * s_x0d > s_x0sq * s_dsq:
        yield (
            f"{prefix}.sums: sum_baseline_change² = {s_x0d * s_x0d} exceeds "
            f"sum_baseline_sq·sum_change_sq = {s_x0sq * s_dsq} (Cauchy–Schwarz)"
        )


#: (part, whole): each honest node counts the part's patients among the whole's.
_SUBSETS: tuple[tuple[str, str], ...] = (
    # improved = calcinosis at baseline and last course on treatment "improved"
    ("calcinosis.improved", "calcinosis.baseline_present"),
    ("calcinosis.baseline_present", "cohort.patients"),
    ("digital_ulcers.developed", "cohort.patients"),
    # a digital_ulcer event on treatment is one way of developing digital ulcers
    ("safety.patients.digital_ulcer", "digital_ulcers.developed"),
    ("glucocorticoids.baseline_on_gc", "cohort.patients"),
)


def _subsets(vector: _Pooled, _participants: int) -> Iterator[str]:
    """A count of patients that is a subset of another counted set is not larger.

    The glucocorticoid change cells count only patients with a baseline dose > 0, the
    same patients as ``baseline_on_gc``, so each such cell's n ≤ baseline_on_gc.
    """
    pairs = list(_SUBSETS)
    for outcome, months in vector.layout.plan.cells:
        if outcome == _GC_OUTCOME:
            pairs.append(
                (f"{cell_prefix(outcome, months)}.sums.n", "glucocorticoids.baseline_on_gc")
            )
    for part, whole in pairs:
        if vector.value(part) > vector.value(whole):
            yield (
                f"{part} = {vector.value(part)} exceeds {whole} = {vector.value(whole)} "
                "(a subset of it)"
            )


def _safety(vector: _Pooled, _participants: int) -> Iterator[str]:
    """Per event type: patients with an event ≤ events, ≤ cohort patients; events ⇒ a patient."""
    events = vector.counts("safety.events")
    with_event = vector.counts("safety.patients")
    for event_type in EVENT_TYPES:
        count, people = events[event_type], with_event[event_type]
        if people > count:
            yield (
                f"safety.patients.{event_type} = {people} exceeds safety.events.{event_type} "
                f"= {count} (each such patient has at least one event)"
            )
        elif count > 0 and people == 0:
            yield f"safety.events.{event_type} = {count} but no patient has such an event"
        if people > vector.patients:
            yield (
                f"safety.patients.{event_type} = {people} exceeds cohort.patients = "
                f"{vector.patients}"
            )


def _strata(vector: _Pooled, participants: int) -> Iterator[str]:
    """The strata partition the cohort: their patients plus ``missing`` are the cohort's;
    a stratum's cell n, events and follow-up are at most the whole cohort's, and its
    centres at most the participants; each stratum cell is a consistent cell itself."""
    plan = vector.layout.plan
    if not plan.by:
        return
    for stratum in plan.strata:
        if vector.count("strata", stratum) > participants:
            yield (
                f"strata.{stratum} = {vector.count('strata', stratum)} centres, more than the "
                f"{participants} participants"
            )
    missing = vector.count("strata", "missing")
    patients = sum(vector.count(f"by.{s}.cohort", "patients") for s in plan.strata)
    if patients + missing != vector.patients:
        yield (
            f"patients of the strata of {plan.by} ({patients}) plus strata.missing ({missing}) "
            f"are not cohort.patients = {vector.patients}"
        )
    days = sum(vector.count(f"by.{s}.cohort", "followup_days_total") for s in plan.strata)
    if days > vector.count("cohort", "followup_days_total"):
        yield "follow-up days of the strata exceed the cohort's"
    for outcome, months in plan.cells:
        whole = vector.count(f"{cell_prefix(outcome, months)}.sums", "n")
        within = 0
        for stratum in plan.strata:
            prefix = stratum_cell_prefix(outcome, months, stratum)
            sums = vector.counts(f"{prefix}.sums")
            within += sums["n"]
            if sums["centres"] > participants:
                yield f"{prefix}.sums: {sums['centres']} centres, more than the participants"
            yield from _cell_with_prefix(vector, outcome, months, prefix)
        if within > whole:
            yield (
                f"{outcome}.{months}: the strata's n add up to {within}, more than the "
                f"cell's n = {whole}"
            )
    for kind in ("events", "patients"):
        whole_counts = vector.counts(f"safety.{kind}")
        for event_type in EVENT_TYPES:
            within = sum(
                vector.count(f"by.{s}.safety.{kind}", event_type) for s in plan.strata
            )
            if within > whole_counts[event_type]:
                yield (
                    f"by.*.safety.{kind}.{event_type} add up to {within}, more than "
                    f"safety.{kind}.{event_type} = {whole_counts[event_type]}"
                )


def _time_to_event(vector: _Pooled, participants: int) -> Iterator[str]:
    """Every patient is an event or a censoring of each endpoint, in one stratum or
    ``missing``; the centres behind a stratum are at most the participants; drug
    retention's events are the patients who stopped, so they equal no other count but
    are at most the patients."""
    plan = vector.layout.plan
    if not plan.time_to_event:
        return
    strata = vector.counts("strata")
    for stratum in plan.strata if not plan.by else ():  # with by, _strata checks them
        if strata[stratum] > participants:
            yield (
                f"strata.{stratum} = {strata[stratum]} centres, more than the "
                f"{participants} participants"
            )
    for endpoint in plan.time_to_event:
        total = strata["missing"] + sum(
            sum(vector.segment(tte_segment(endpoint, stratum, kind)))
            for stratum in plan.strata
            for kind in ("events", "censored")
        )
        if total != vector.patients:
            yield (
                f"tte.{endpoint}: events and censorings of every stratum plus "
                f"strata.missing add up to {total}, but cohort.patients is {vector.patients}"
            )


def _heterogeneity(vector: _Pooled, participants: int) -> Iterator[str]:
    """A heterogeneity plan's terms per cell (:func:`heterogeneity_problems`)."""
    pooled = np.asarray(vector.values, dtype=object)
    yield from heterogeneity_problems(vector.layout, pooled, participants)


_CHECKS: tuple[Check, ...] = (
    _non_negative,
    _centres,
    _followup,
    _age,
    _categories,
    _cells_within_cohort,
    _change_cells,
    _subsets,
    _safety,
    _strata,
    _time_to_event,
    _heterogeneity,
)
