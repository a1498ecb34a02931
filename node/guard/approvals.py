"""The centre's approvals: which plans its node may answer, under which study roster.

A node answers an analysis request only for a plan its data steward approved with
``sscjak-node approve PLAN --roster ROSTER``. The approval pins, for that plan hash,
the plan text, the roster (names and X25519 public keys) and the roster hash; the
node then masks only with those keys and refuses any participant outside that
roster (the node's guard against a coordinator adding sock-puppet nodes).

Approvals live in ``STATE/approvals/<plan_sha256>.json`` (mode 0600). Approving the
same plan again replaces its approval and gets a new ``approval_id``.

**Overlapping plans (the differencing attack).** Plans carry no patient filter, but two
plans that analyse the same outcome with a different time point, window or minimum
cell can still differ by a handful of patients: widen the window by two weeks and one
more patient's 12-month visit falls into the cell. Whoever holds both pooled results
can subtract them and read that one patient's change. :func:`overlapping_approvals`
finds every approved plan a new plan overlaps in that way; ``sscjak-node approve``
shows the warning of :func:`describe_overlaps` and records which overlaps the steward
accepted (``acknowledged_overlaps`` in the approval file). See docs/privacy.md.

**Shared numbers and twins.** Every plan releases the cohort-wide counts, and two plans
with the same change cell (same outcome, time point *and* window) release the same
numbers for it; plans whose vectors hold the same numbers are *twins* (title, SMC choice,
minimum cell and exact p-value do not change the vector). That is harmless only because
the node releases results over one participant set per release epoch
(:mod:`sscjak.node.guard.release_epoch`): results of two plans over two sets differing by one
centre would give that centre's values for every shared number. :func:`related_approvals`
finds every approved plan sharing numbers with a new plan and :func:`describe_related`
writes the one warning ``sscjak-node approve`` shows (overlaps, twins, shared numbers).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sscjak.shared.data_contract import MEASURES
from sscjak.shared.private_files import write_text_atomically
from sscjak.shared.roster import Roster, RosterError, parse_roster
from sscjak.shared.summary_layout import SummaryLayout, cell_prefix, stratum_cell_prefix

if TYPE_CHECKING:
    from sscjak.shared.plan import Plan

APPROVAL_SCHEMA = "sscjak.approval/1"
APPROVALS_DIRECTORY = "approvals"


@dataclass(frozen=True)
class Approval:
    """One recorded approval of a plan under a pinned roster."""

    plan_sha256: str
    plan_toml: str
    roster: Roster
    approved_at: str
    approval_id: str
    acknowledged_overlaps: tuple[str, ...] = ()

    @property
    def roster_sha256(self) -> str:
        return self.roster.sha256


class ApprovalStore:
    """The approvals recorded in a node's state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / APPROVALS_DIRECTORY

    def _path(self, plan_sha256: str) -> Path:
        if len(plan_sha256) != 64 or any(c not in "0123456789abcdef" for c in plan_sha256):
            raise ValueError("a plan hash is 64 lower-case hex digits")
        return self.directory / f"{plan_sha256}.json"

    def record(
        self, plan: Plan, roster: Roster, acknowledged_overlaps: tuple[str, ...] = ()
    ) -> Approval:
        """Record the steward's approval of ``plan`` under ``roster`` (atomic write).

        ``acknowledged_overlaps``: hashes of approved plans this plan overlaps, whose
        warning the steward saw and accepted (kept in the approval file as evidence).
        """
        approval = Approval(
            plan_sha256=plan.sha256,
            plan_toml=plan.canonical_toml,
            roster=roster,
            approved_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            approval_id=secrets.token_hex(16),
            acknowledged_overlaps=tuple(acknowledged_overlaps),
        )
        document: dict[str, Any] = {
            "schema": APPROVAL_SCHEMA,
            "plan_sha256": approval.plan_sha256,
            "plan_toml": approval.plan_toml,
            "roster_sha256": roster.sha256,
            "roster_toml": roster.canonical_toml,
            "approved_at": approval.approved_at,
            "approval_id": approval.approval_id,
            "acknowledged_overlaps": list(approval.acknowledged_overlaps),
        }
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(approval.plan_sha256)
        write_text_atomically(path, json.dumps(document, indent=2, sort_keys=True))
        return approval

    def find(self, plan_sha256: str) -> Approval | None:
        """The approval of the plan with this hash, or ``None`` if it was never approved.

        A damaged approval file (hash or roster not matching) counts as no approval.
        """
        try:
            path = self._path(plan_sha256)
        except ValueError:
            return None
        if not path.exists():
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            roster = parse_roster(document["roster_toml"], str(path))
            if document["schema"] != APPROVAL_SCHEMA or document["plan_sha256"] != plan_sha256:
                return None
            if document["roster_sha256"] != roster.sha256:
                return None
            return Approval(
                plan_sha256=plan_sha256,
                plan_toml=document["plan_toml"],
                roster=roster,
                approved_at=document["approved_at"],
                approval_id=document["approval_id"],
                acknowledged_overlaps=tuple(document.get("acknowledged_overlaps", ())),
            )
        except (OSError, ValueError, KeyError, TypeError, RosterError):
            return None

    def approved_plans(self) -> list[str]:
        """Hashes of all approved plans."""
        if not self.directory.exists():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json"))


def describe_release(plan: Plan, roster: Roster) -> str:
    """What approving ``plan`` under ``roster`` lets this node release, in plain words.

    Lists the outcomes and time points, the minimum cell, the roster, what the
    coordinator sees (the pooled vector in full, small cells included; never this
    centre's own vector), the release-epoch rule, and every element of the summary
    vector (:class:`SummaryLayout`): nothing else can leave the node.
    """
    layout = SummaryLayout.for_plan(plan)
    outcomes = ", ".join(
        f"{plan.measure(o).label} ({o}, {plan.measure(o).unit})" for o in plan.outcomes
    )
    months = ", ".join(str(m) for m in plan.months)
    lines = [
        f"Plan: {plan.title}",
        f"  plan_sha256 {plan.sha256}",
        f"  outcomes: {outcomes}",
        f"  changes from baseline at {months} months (window +/- {plan.window_months:g} months)",
        f"  pooled change cells with fewer than {plan.min_cell} patients are suppressed in the",
        "  report (not from the coordinator, see below)",
        *_declared_measure_lines(plan),
        *_time_to_event_lines(plan),
        *_heterogeneity_lines(plan),
        "",
        f"Study roster (sha256 {roster.sha256[:16]}...): {len(roster)} centres",
        *(f"  {m.name}  key {m.x25519_public_key[:16]}..." for m in roster.members),
        "",
        "Per analysis this node sends ONE vector of "
        f"{layout.length} integers ({8 * layout.length} bytes, layout {layout.version}),",
        "hidden under pairwise masks that cancel only in the sum over at least 3 centres of",
        "this roster. The coordinator never sees this centre's own vector. It sees the POOLED",
        "vector in full, small cells included: a cell with fewer than "
        f"{plan.min_cell} patients is hidden",
        "only in the report, not from the coordinator, which can read for example the exact",
        "pooled histogram of changes. Results are released over one participant set per",
        "epoch, pinned by the first result (a new set needs this centre's steward:",
        "sscjak-node approve ... --participants). No patient id, date or row is ever sent.",
        "The vector holds exactly these counts and sums:",
    ]
    for segment in layout.segments:
        size = f"{segment.length} number" + ("s" if segment.length != 1 else "")
        kind = "histogram" if segment.is_histogram else ", ".join(segment.labels)
        lines.append(f"  - {segment.name} ({size}): {segment.meaning} [{kind}]")
    return "\n".join(lines)


def _declared_measure_lines(plan: Plan) -> list[str]:
    """The visits columns a plan declares beyond the data contract (nothing without one)."""
    if not plan.measures:
        return []
    lines = ["  the plan DECLARES these visits columns, read like the built-in measures:"]
    lines += [
        f"    {m.name}: {m.label} in {m.unit}, {m.low:g} to {m.high:g} by "
        f"{float(m.resolution):g} (a {m.benefit} is a benefit)"
        for m in plan.measures
    ]
    return lines


def _heterogeneity_lines(plan: Plan) -> list[str]:
    """What a heterogeneity plan releases beyond the pooled cells (nothing without one)."""
    if not plan.heterogeneity:
        return []
    return [
        "  heterogeneity between centres: per change cell this node adds fixed-point terms of",
        "  ITS OWN SMC and weight (w, w*SMC, w*SMC^2, w^2, w = 1/variance) to the secure sum,",
        f"  or only a 1 in 'left out' when it has fewer than {plan.min_centre_n} patients in",
        "  the cell; then ONE more secure sum (the random-effects terms for the tau2 the",
        "  coordinator sends). Per estimate and release epoch the node answers under one",
        "  min_centre_n and one tau2 only; another is refused.",
        "  The coordinator sees only the sums over the centres. With only 3 centres",
        "  contributing to a cell, those sums determine each of the 3 estimates (the report",
        "  then suppresses the cell, but the coordinator holds the sums); the node answers",
        "  the random-effects sum only for sets of at least 4 centres (docs/privacy.md).",
    ]


def _time_to_event_lines(plan: Plan) -> list[str]:
    """What a plan's time-to-event part releases, in plain words (nothing without one)."""
    if not plan.time_to_event:
        return []
    by = f"per {plan.by} ({', '.join(plan.strata)})" if plan.by else "for the whole cohort"
    return [
        f"  time to event: {', '.join(plan.time_to_event)}, {by}: how many patients have",
        f"  their event or are censored at each time on a grid of {plan.time_grid_days:g} days",
        f"  up to {plan.horizon_months} months (later times counted at {plan.horizon_months}"
        " months);",
        "  the coordinator can read each patient's time on that grid from the pooled",
        "  histograms, not which centre or patient it belongs to",
    ]


@dataclass(frozen=True)
class PlanOverlap:
    """An approved plan that a new plan overlaps: comparing their results may isolate
    patients.

    ``shared_outcomes``: outcomes both plans analyse; ``differences``: what differs
    between them in the settings that decide which patients enter a cell or which
    cells are shown (time points, window, minimum cell), in plain words.
    """

    approved: Approval
    approved_title: str
    shared_outcomes: tuple[str, ...]
    differences: tuple[str, ...]


def find_overlap(plan: Plan, approved: Approval) -> PlanOverlap | None:
    """How ``plan`` overlaps the approved plan, or ``None`` when it does not.

    Two plans overlap when they analyse at least one outcome in common and differ in
    ``months``, ``window_months`` or ``min_cell``. Then a cell of one plan can hold
    a few patients more or fewer than the matching cell of the other (a wider window, a
    shifted time point), or show a cell the other suppressed, and the difference of the
    two results describes those few patients. Plans differing only in their title, SMC
    choice or exact p-value release the same summaries and do not overlap; the same plan
    approved again (same hash) does not overlap itself.
    """
    from sscjak.shared.plan import PlanError, parse_plan

    if approved.plan_sha256 == plan.sha256:
        return None
    try:
        other = parse_plan(approved.plan_toml, f"approval {approved.plan_sha256[:12]}")
    except PlanError:
        return None
    shared = tuple(o for o in plan.outcomes if o in other.outcomes)
    if not shared:
        return None
    differences: list[str] = []
    if tuple(plan.months) != tuple(other.months):
        differences.append(
            f"time points {_listed(other.months)} months in the approved plan, "
            f"{_listed(plan.months)} months in this one"
        )
    if float(plan.window_months) != float(other.window_months):
        differences.append(
            f"window +/- {other.window_months:g} months in the approved plan, "
            f"+/- {plan.window_months:g} months in this one"
        )
    if plan.min_cell != other.min_cell:
        differences.append(
            f"minimum cell {other.min_cell} in the approved plan, {plan.min_cell} in this one"
        )
    if not differences:
        return None
    return PlanOverlap(approved, other.title, shared, tuple(differences))


def overlapping_approvals(plan: Plan, store: ApprovalStore) -> list[PlanOverlap]:
    """Every plan approved in ``store`` that ``plan`` overlaps (see :func:`find_overlap`)."""
    overlaps = []
    for plan_sha256 in store.approved_plans():
        approved = store.find(plan_sha256)
        if approved is None:
            continue
        overlap = find_overlap(plan, approved)
        if overlap is not None:
            overlaps.append(overlap)
    return overlaps


def describe_overlaps(overlaps: list[PlanOverlap]) -> str:
    """The warning shown before approving a plan that overlaps approved ones, in plain words."""
    lines = _overlap_explanation(len(overlaps))
    for overlap in overlaps:
        lines += ["", _approved_plan_line(overlap.approved, overlap.approved_title)]
        lines += _overlap_details(overlap)
    return "\n".join(lines)


def _overlap_explanation(count: int) -> list[str]:
    return [
        "WARNING: this plan overlaps "
        + (
            "a plan this centre already approved."
            if count == 1
            else f"{count} plans this centre already approved."
        ),
        "Both analyse the same outcomes with a different time point, window or minimum",
        "cell, so a cell of one plan can contain a few patients more or fewer than in the",
        "other. Comparing the two results (subtracting one from the other) could then",
        "isolate individual patients: with one patient more, the difference IS that",
        "patient's change, even when both results come from the same centres (one",
        "participant set per epoch does not prevent this). Approve one plan per question;",
        "approve this one only if the study really needs both results.",
    ]


def _approved_plan_line(approved: Approval, title: str) -> str:
    return f"  approved plan {approved.plan_sha256[:12]} ({title}), approved {approved.approved_at}"


def _overlap_details(overlap: PlanOverlap) -> list[str]:
    return [
        f"    same outcomes: {', '.join(overlap.shared_outcomes)}",
        *(f"    differs: {difference}" for difference in overlap.differences),
    ]


#: How the segments every plan releases are named in a warning (one phrase, not 12 names).
COMMON_SEGMENTS_PHRASE = (
    "the cohort-wide numbers every plan releases (centres, patients, follow-up and its "
    "histogram, drugs, sex, SSc subset, calcinosis, digital ulcers, glucocorticoids, "
    "adverse events)"
)


def segment_contents(plan: Plan) -> dict[str, tuple[str, float | None]]:
    """Each segment of ``plan``'s vector with what decides its numbers.

    A change cell's numbers depend on its outcome and time point (in its name) and on
    the plan's window; a time-to-event histogram on its endpoint and stratum (in its
    name) and on the plan's grid and horizon; the strata counts on ``by``; every other
    segment holds the same numbers in every plan. Two
    plans release the same numbers for a segment exactly when its name and content
    definition are equal. (``min_cell``, title, SMC choice and exact p-value change
    only what the coordinator reports, not the vector.)
    """
    change = _change_segment_names(plan)

    def content(name: str) -> object:
        if name in change:  # change.<outcome>.…: the window, and a declared measure's grid
            return (float(plan.window_months), _declared_grid(plan, name.split(".")[1]))
        if name.startswith("tte."):  # event times on the plan's grid, up to its horizon
            return (float(plan.time_grid_days), plan.horizon_months)
        if name == "strata":  # centres per stratum of the plan's ``by``
            return plan.by
        if name.startswith("het."):  # het.<outcome>.…: this centre's own estimate's terms
            outcome = name.split(".")[1]
            return (
                float(plan.window_months),
                plan.smc,
                plan.min_centre_n,
                _declared_grid(plan, outcome),
            )
        return None

    return {
        segment.name: (segment.name, content(segment.name))
        for segment in SummaryLayout.for_plan(plan).segments
    }


def _declared_grid(plan: Plan, outcome: str) -> tuple[float, float, float] | None:
    """A declared measure's range and resolution (two plans may declare one name
    differently); ``None`` for a built-in measure."""
    if outcome in MEASURES:
        return None
    measure = plan.measure(outcome)
    return (measure.low, measure.high, float(measure.resolution))


def shared_segments(plan: Plan, other: Plan) -> tuple[str, ...]:
    """Names of the segments both plans release with the same numbers (``plan``'s order)."""
    mine, theirs = segment_contents(plan), segment_contents(other)
    return tuple(name for name, content in mine.items() if theirs.get(name) == content)


def are_twins(plan: Plan, other: Plan) -> bool:
    """Whether the two plans release the same numbers (their vectors hold the same segments
    with the same content, whatever their title, SMC choice, minimum cell or exact p-value)."""
    return set(segment_contents(plan).values()) == set(segment_contents(other).values())


@dataclass(frozen=True)
class PlanRelation:
    """An approved plan that releases some of the numbers a new plan releases.

    ``shared_segments``: the segments both release with the same numbers; ``twin``: the
    two release the same numbers altogether; ``overlap``: the few-patients-differ
    relation of :func:`find_overlap`, if any.
    """

    approved: Approval
    approved_title: str
    shared_segments: tuple[str, ...]
    twin: bool
    overlap: PlanOverlap | None


def related_approvals(plan: Plan, store: ApprovalStore) -> list[PlanRelation]:
    """Every plan approved in ``store`` (other than ``plan`` itself) that shares a released
    segment with ``plan``, with whether it is a twin and how it overlaps."""
    from sscjak.shared.plan import PlanError, parse_plan

    relations = []
    for plan_sha256 in store.approved_plans():
        approved = store.find(plan_sha256)
        if approved is None or approved.plan_sha256 == plan.sha256:
            continue
        try:
            other = parse_plan(approved.plan_toml, f"approval {approved.plan_sha256[:12]}")
        except PlanError:
            continue
        shared = shared_segments(plan, other)
        if shared:
            relations.append(
                PlanRelation(
                    approved=approved,
                    approved_title=other.title,
                    shared_segments=shared,
                    twin=are_twins(plan, other),
                    overlap=find_overlap(plan, approved),
                )
            )
    return relations


def describe_related(plan: Plan, relations: list[PlanRelation]) -> str:
    """The one warning shown before approving ``plan`` when approved plans release some of
    the same numbers: overlaps first (the risk an epoch does not remove), then twins and
    shared numbers, and why these are harmless only under the release-epoch rule."""
    overlaps = [r.overlap for r in relations if r.overlap is not None]
    twins = [r for r in relations if r.twin]
    lines = [*_overlap_explanation(len(overlaps)), ""] if overlaps else []
    if len(relations) == 1:
        heading = (
            "a plan this centre already approved releases some of the same numbers as this plan"
        )
        heading += "; it is a TWIN: exactly the same numbers." if twins else "."
    else:
        heading = (
            f"{len(relations)} plans this centre already approved release some of the same "
            "numbers as this plan"
        )
        heading += (
            f"; {len(twins)} of them (marked TWIN) release exactly the same numbers."
            if twins
            else "."
        )
    lines.append(("Besides, " if overlaps else "WARNING: ") + heading)
    lines += [
        "That is harmless only because this node releases results over one participant set",
        "per epoch (pinned by the first result; only this centre's steward starts a new",
        "epoch): over the same centres, the shared numbers are the same in both results.",
        "Results of two plans over two sets of centres that differ by one centre would give",
        "that centre's own values for every shared number.",
    ]
    for relation in relations:
        lines += ["", _approved_plan_line(relation.approved, relation.approved_title)]
        if relation.twin:
            lines.append(
                "    TWIN: releases exactly the numbers this plan releases (they differ only in "
                "title, SMC choice, minimum cell or exact p-value)"
            )
        else:
            lines.append(f"    shares: {_shared_phrase(plan, relation.shared_segments)}")
        if relation.overlap is not None:
            lines += _overlap_details(relation.overlap)
    return "\n".join(lines)


def _shared_phrase(plan: Plan, shared: tuple[str, ...]) -> str:
    """The shared segments in a few words: the common ones as one phrase, then the cells."""
    cells = [
        f"{plan.measure(outcome).label} at {months} months"
        for outcome, months in plan.cells
        if f"{cell_prefix(outcome, months)}.sums" in shared
    ]
    change = _change_segment_names(plan)
    parts = [COMMON_SEGMENTS_PHRASE] if any(name not in change for name in shared) else []
    if cells:
        parts.append(
            f"the change cell{'s' if len(cells) > 1 else ''} {', '.join(cells)} "
            f"(window +/- {plan.window_months:g} months: n, sums and histogram of changes)"
        )
    return " and ".join(parts)


def _change_segment_names(plan: Plan) -> set[str]:
    """The segments of the change cells, overall and per stratum (they depend on the window)."""
    prefixes = [cell_prefix(outcome, months) for outcome, months in plan.cells]
    if plan.by:
        prefixes += [
            stratum_cell_prefix(outcome, months, stratum)
            for outcome, months in plan.cells
            for stratum in plan.strata
        ]
    return {f"{prefix}.{part}" for prefix in prefixes for part in ("sums", "histogram")}


def _listed(values: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in values)
