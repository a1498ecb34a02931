"""A centre's own disclosure policy: the least a plan must respect before this node answers it.

Like DataSHIELD's ``nfilter`` settings or NVFlare's site ``privacy.json``, the policy belongs
to the centre, not to the study: the coordinator cannot loosen it. It is read from
``STATE/policy.toml`` when that file exists; without it the safe defaults below apply.
``sscjak-node approve`` refuses a plan below the policy (every problem listed, nothing
recorded), and the node's request handler refuses such a plan and too small a participant
set with :func:`policy_refusal`.

Settings (defaults in brackets; each has a hard floor that no file can go below):

- ``min_cell`` [5, floor 5] — smallest ``min_cell`` a plan may use. A plan's ``min_cell``
  only decides what the *report* suppresses (the coordinator sees the pooled vector in
  full), so this is the centre's say in what the study may publish.
- ``min_window_months`` [1, floor 1] — narrowest follow-up window a plan may use. Very
  narrow windows make cells of a handful of patients, and two plans whose windows
  differ slightly then differ by single patients.
- ``min_participants`` [3, floor 3] — fewest centres in a participant set this node takes
  part in. With two, each would learn the other's vector from the pooled sum.
- ``allowed_outcomes`` [every built-in measure] — the built-in measures a plan may analyse.
- ``allow_declared_measures`` [true] — whether a plan may declare further visits columns
  (each is shown at approval, so the steward approves or refuses it there).
- ``allow_heterogeneity`` [true] — whether a plan may ask for the heterogeneity between
  centres: each centre then adds fixed-point terms of its own cell estimates to the
  secure sum, and answers one random-effects exchange per cell and release epoch.
- ``max_months`` [60] — the longest follow-up time point a plan may ask for. Five years
  covers the study questions of JAK inhibitor cohorts; cells further out hold few,
  long-treated patients who are easy to single out. At most 240 (what a plan can hold).

The policy file is strict: an unknown key, a wrong type or a value below its floor is
refused with the file, the key and what was expected — a typo must never silently fall
back to a looser setting.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sscjak.shared.data_contract import MEASURES
from sscjak.shared.disclosure import DEFAULT_MIN_CELL, MAX_MIN_CELL
from sscjak.shared.errors import SscjakError
from sscjak.shared.plan import (
    MAX_MONTHS,
    MAX_TIME_GRID_DAYS,
    MAX_WINDOW_MONTHS,
    STRATA_BY,
    TIME_TO_EVENT_ENDPOINTS,
    is_time_grid_days,
)
from sscjak.shared.private_files import write_private_file
from sscjak.shared.protocol import MAX_PARTICIPANTS, MIN_PARTICIPANTS

if TYPE_CHECKING:
    from sscjak.shared.plan import Plan

POLICY_FILE = "policy.toml"
#: Hard floors: no policy file can set a value below these.
MIN_CELL_FLOOR = DEFAULT_MIN_CELL
MIN_WINDOW_MONTHS_FLOOR = 1.0
#: Default number of roster centres a participant set may leave out (one centre may be
#: down); 0 demands the whole roster.
DEFAULT_MAX_MISSING_CENTRES = 1
#: Default longest follow-up time point a plan may ask for (months).
DEFAULT_MAX_MONTHS = 60

_KEYS: tuple[str, ...] = (
    "min_cell",
    "min_window_months",
    "min_participants",
    "allowed_outcomes",
    "max_months",
    "max_missing_centres",
    "allowed_time_to_event",
    "allowed_by",
    "min_time_grid_days",
    "allow_declared_measures",
    "allow_heterogeneity",
)


class PolicyError(SscjakError, ValueError):
    """A policy that cannot be used; the message names the file (if any), key and floor."""


@dataclass(frozen=True)
class DisclosurePolicy:
    """What this centre requires of every plan it approves and every request it answers.

    Built with values below a floor, of the wrong type or unknown outcomes, the
    constructor raises :class:`PolicyError`: a policy object is always a valid one.
    """

    min_cell: int = MIN_CELL_FLOOR
    min_window_months: float = MIN_WINDOW_MONTHS_FLOOR
    min_participants: int = MIN_PARTICIPANTS
    allowed_outcomes: tuple[str, ...] = tuple(MEASURES)
    max_months: int = DEFAULT_MAX_MONTHS
    max_missing_centres: int = DEFAULT_MAX_MISSING_CENTRES
    allowed_time_to_event: tuple[str, ...] = TIME_TO_EVENT_ENDPOINTS
    allowed_by: tuple[str, ...] = tuple(STRATA_BY)
    min_time_grid_days: float = 1.0
    allow_declared_measures: bool = True
    allow_heterogeneity: bool = True

    def __post_init__(self) -> None:
        problems = setting_problems(
            {
                "min_cell": self.min_cell,
                "min_window_months": self.min_window_months,
                "min_participants": self.min_participants,
                "allowed_outcomes": list(self.allowed_outcomes),
                "max_months": self.max_months,
                "max_missing_centres": self.max_missing_centres,
                "allowed_time_to_event": list(self.allowed_time_to_event),
                "allowed_by": list(self.allowed_by),
                "min_time_grid_days": self.min_time_grid_days,
                "allow_declared_measures": self.allow_declared_measures,
                "allow_heterogeneity": self.allow_heterogeneity,
            }
        )
        if problems:
            raise PolicyError("disclosure policy: " + "; ".join(problems))
        object.__setattr__(self, "min_window_months", float(self.min_window_months))
        object.__setattr__(self, "allowed_outcomes", tuple(self.allowed_outcomes))
        object.__setattr__(self, "allowed_time_to_event", tuple(self.allowed_time_to_event))
        object.__setattr__(self, "allowed_by", tuple(self.allowed_by))
        object.__setattr__(self, "min_time_grid_days", float(self.min_time_grid_days))

    def plan_problems(self, plan: Plan) -> list[str]:
        """Every way ``plan`` falls below this policy, one plain sentence each (empty: none)."""
        problems: list[str] = []
        if plan.min_cell < self.min_cell:
            problems.append(
                f"min_cell {plan.min_cell} is below this centre's minimum of {self.min_cell}"
            )
        if plan.window_months < self.min_window_months:
            problems.append(
                f"window_months {plan.window_months:g} is below this centre's minimum of "
                f"{_months(self.min_window_months)}"
            )
        declared = {m.name for m in plan.measures}
        refused = [o for o in plan.outcomes if o not in {*self.allowed_outcomes, *declared}]
        if refused:
            problems.append(
                f"outcome{'s' if len(refused) > 1 else ''} {', '.join(refused)} "
                f"{'are' if len(refused) > 1 else 'is'} not among the outcomes this centre "
                f"allows ({', '.join(self.allowed_outcomes)})"
            )
        beyond = [m for m in plan.months if m > self.max_months]
        if beyond:
            problems.append(
                f"time point{'s' if len(beyond) > 1 else ''} "
                f"{', '.join(str(m) for m in beyond)} months "
                f"{'are' if len(beyond) > 1 else 'is'} beyond this centre's maximum of "
                f"{self.max_months} months"
            )
        if plan.by and plan.by not in self.allowed_by:
            allowed = ", ".join(self.allowed_by) or "none"
            problems.append(
                f"strata by {plan.by} are not allowed by this centre (allowed: {allowed})"
            )
        if declared and not self.allow_declared_measures:
            problems.append(
                f"the plan declares visits columns ({', '.join(sorted(declared))}); this "
                "centre allows no declared measures (allow_declared_measures)"
            )
        if plan.heterogeneity and not self.allow_heterogeneity:
            problems.append(
                "the plan asks for the heterogeneity between centres, which this centre does "
                "not allow (allow_heterogeneity)"
            )
        return problems + self._time_to_event_problems(plan)

    def _time_to_event_problems(self, plan: Plan) -> list[str]:
        if not plan.time_to_event:
            return []
        problems = []
        refused = [e for e in plan.time_to_event if e not in self.allowed_time_to_event]
        if refused:
            allowed = ", ".join(self.allowed_time_to_event) or "none"
            problems.append(
                f"time to event {', '.join(refused)} is not among the endpoints this centre "
                f"allows ({allowed})"
            )
        if plan.time_grid_days < self.min_time_grid_days:
            problems.append(
                f"time_grid_days {plan.time_grid_days:g} is finer than this centre's minimum "
                f"of {self.min_time_grid_days:g} days"
            )
        return problems

    def describe(self) -> str:
        """The policy in plain words, for the approval screen and ``sscjak-node policy``."""
        allowed = ", ".join(f"{MEASURES[o].label} ({o})" for o in self.allowed_outcomes)
        return "\n".join(
            [
                "This centre's disclosure policy: it approves and answers only plans that",
                f"  - report no change cell of fewer than {self.min_cell} patients "
                f"(plan min_cell at least {self.min_cell}),",
                f"  - use follow-up windows of at least +/- {_months(self.min_window_months)} "
                "(plan window_months),",
                f"  - ask for time points of at most {self.max_months} months,",
                f"  - analyse only these outcomes: {allowed}"
                + (
                    ", and measures a plan declares (shown at approval);"
                    if self.allow_declared_measures
                    else " (no declared measures);"
                ),
                "  - ask for time to event only of: "
                f"{', '.join(self.allowed_time_to_event) or 'none'}, stratified only by: "
                f"{', '.join(self.allowed_by) or 'none'}, on a time grid of at least "
                f"{self.min_time_grid_days:g} days;",
                "  - "
                + ("may" if self.allow_heterogeneity else "may not")
                + " ask for the heterogeneity between centres;",
                f"and it takes part only in participant sets of at least {self.min_participants} "
                f"centres that leave out at most {self.max_missing_centres} of the study "
                "roster's centres.",
            ]
        )


def setting_problems(values: Mapping[str, object]) -> list[str]:
    """Type and floor problems of the given policy settings, each starting with its key."""
    problems: list[str] = []
    if "min_cell" in values:
        value = values["min_cell"]
        if not _is_whole(value):
            problems.append(f"min_cell: expected a whole number, got {value!r}")
        elif value < MIN_CELL_FLOOR:  # type: ignore[operator]
            problems.append(
                f"min_cell: {value} is below the floor of {MIN_CELL_FLOOR} (no centre may go lower)"
            )
        elif value > MAX_MIN_CELL:  # type: ignore[operator]
            problems.append(f"min_cell: {value} is above {MAX_MIN_CELL}, the most a plan can use")
    if "min_window_months" in values:
        value = values["min_window_months"]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            problems.append(f"min_window_months: expected a number of months, got {value!r}")
        elif value < MIN_WINDOW_MONTHS_FLOOR:
            problems.append(
                f"min_window_months: {value!r} is below the floor of "
                f"{_months(MIN_WINDOW_MONTHS_FLOOR)} (no centre may go lower)"
            )
        elif value > MAX_WINDOW_MONTHS:
            problems.append(
                f"min_window_months: {value!r} is above {MAX_WINDOW_MONTHS}, the widest window "
                "a plan can use"
            )
    if "min_participants" in values:
        value = values["min_participants"]
        if not _is_whole(value):
            problems.append(f"min_participants: expected a whole number, got {value!r}")
        elif value < MIN_PARTICIPANTS:  # type: ignore[operator]
            problems.append(
                f"min_participants: {value} is below the floor of {MIN_PARTICIPANTS} "
                "centres (no centre may go lower: with two, each learns the other's summary)"
            )
    if "allowed_outcomes" in values:
        value = values["allowed_outcomes"]
        known = ", ".join(MEASURES)
        if not isinstance(value, list | tuple) or not value:
            problems.append(
                f"allowed_outcomes: expected a non-empty list of measures from: {known}"
            )
        else:
            unknown = [v for v in value if not isinstance(v, str) or v not in MEASURES]
            if unknown:
                problems.append(
                    f"allowed_outcomes: unknown measure(s) {unknown}; expected names from: {known}"
                )
            elif len(set(value)) != len(value):
                problems.append("allowed_outcomes: each measure may appear only once")
    if "max_months" in values:
        value = values["max_months"]
        if not _is_whole(value):
            problems.append(f"max_months: expected a whole number of months, got {value!r}")
        elif not 1 <= value <= MAX_MONTHS:  # type: ignore[operator]
            problems.append(f"max_months: {value} is outside 1 to {MAX_MONTHS} months")
    if "max_missing_centres" in values:
        value = values["max_missing_centres"]
        if not _is_whole(value) or not 0 <= value <= MAX_PARTICIPANTS:  # type: ignore[operator]
            problems.append(
                "max_missing_centres: expected a whole number from 0 to "
                f"{MAX_PARTICIPANTS}, got {value!r}"
            )
    problems += _list_problems(values, "allowed_time_to_event", TIME_TO_EVENT_ENDPOINTS)
    problems += _list_problems(values, "allowed_by", tuple(STRATA_BY))
    for key in ("allow_declared_measures", "allow_heterogeneity"):
        if key in values and not isinstance(values[key], bool):
            problems.append(f"{key}: expected true or false, got {values[key]!r}")
    if "min_time_grid_days" in values:
        value = values["min_time_grid_days"]
        if not is_time_grid_days(value):
            problems.append(
                f"min_time_grid_days: expected a number of days from 1 to "
                f"{MAX_TIME_GRID_DAYS}, got {value!r}"
            )
    return problems


def _list_problems(values: Mapping[str, object], key: str, known: tuple[str, ...]) -> list[str]:
    """Problems of a list setting whose entries must be distinct names from ``known``
    (an empty list allows none)."""
    if key not in values:
        return []
    value = values[key]
    if not isinstance(value, list | tuple) or any(v not in known for v in value):
        return [f"{key}: expected a list of names from: {', '.join(known)}, got {value!r}"]
    if len(set(value)) != len(value):
        return [f"{key}: each name may appear only once"]
    return []


def load_policy(state_dir: Path) -> DisclosurePolicy:
    """The policy in ``STATE/policy.toml``, or the safe defaults when there is no such file.

    Raise :class:`PolicyError` naming the file and every problem: unreadable or invalid
    TOML, unknown keys, wrong types, values below the floors.
    """
    path = Path(state_dir) / POLICY_FILE
    if not path.exists():
        return DisclosurePolicy()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"{path}: cannot read the disclosure policy ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{path}: not valid TOML ({error})") from None
    problems: list[str] = []
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_KEYS)}")
    problems += setting_problems(raw)
    if problems:
        raise PolicyError(f"{path}: " + "; ".join(problems))
    settings = dict(raw)
    for key in ("allowed_outcomes", "allowed_time_to_event", "allowed_by"):
        if key in settings:
            settings[key] = tuple(settings[key])
    return DisclosurePolicy(**settings)


def policy_refusal(
    policy: DisclosurePolicy, plan: Plan, participants: int, roster_size: int | None = None
) -> str | None:
    """Why this node's policy refuses ``plan`` for a set of ``participants`` centres, or None.

    ``roster_size`` is the size of the pinned study roster: a set that leaves out more
    than ``max_missing_centres`` of it is refused. One sentence listing every problem, for
    the node's refusal reply and audit log.
    """
    problems = policy.plan_problems(plan)
    if participants < policy.min_participants:
        problems.append(
            f"a participant set of {participants} is below the minimum of "
            f"{policy.min_participants} centres in this centre's policy"
        )
    problem = missing_centres_problem(policy, participants, roster_size)
    if problem is not None:
        problems.append(problem)
    if not problems:
        return None
    return "this centre's disclosure policy refuses this request: " + "; ".join(problems)


def missing_centres_problem(
    policy: DisclosurePolicy, participants: int, roster_size: int | None
) -> str | None:
    """Why a set of ``participants`` out of a roster of ``roster_size`` is too small, or None.

    Secure aggregation hides a centre only among the *honest* members of the set: a set
    of this centre and two centres that collude with the coordinator gives this centre's
    whole summary. The coordinator chooses the set, so the node bounds how many roster
    centres it may leave out; centres colluding with the coordinator then learn only the
    sum of at least two honest centres as long as they are at most
    ``roster_size − max_missing_centres − 2``.
    """
    if roster_size is None:
        return None
    missing = roster_size - participants
    if missing <= policy.max_missing_centres:
        return None
    return (
        f"the set leaves out {missing} of the roster's {roster_size} centres, more than the "
        f"{policy.max_missing_centres} this centre's policy allows (max_missing_centres): in "
        "a small set, centres colluding with the coordinator could isolate this centre's "
        "summary"
    )


def default_policy_toml() -> str:
    """The default policy as commented TOML a steward can edit (parses to the defaults)."""
    policy = DisclosurePolicy()
    outcomes = ", ".join(json.dumps(o) for o in policy.allowed_outcomes)
    return "\n".join(
        [
            "# This centre's disclosure policy, read by `sscjak-node approve` and by the node",
            "# before it answers. Make values stricter as the centre sees fit; a value below",
            "# its floor, an unknown key or a wrong type is refused (nothing falls back to a",
            "# looser default). Show the policy in force: sscjak-node policy --state DIR",
            "",
            "# Smallest min_cell a plan may use: pooled change cells with fewer patients are",
            "# suppressed in the report (the coordinator still sees them in the pooled sum).",
            f"# Whole number, floor {MIN_CELL_FLOOR}.",
            f"min_cell = {policy.min_cell}",
            "",
            "# Narrowest follow-up window a plan may use (window_months: +/- months around",
            f"# each time point). Floor {MIN_WINDOW_MONTHS_FLOOR:g}, at most {MAX_WINDOW_MONTHS}.",
            f"min_window_months = {policy.min_window_months:g}",
            "",
            "# Fewest centres in a participant set this node takes part in. Floor "
            f"{MIN_PARTICIPANTS}.",
            f"min_participants = {policy.min_participants}",
            "",
            "# Measures a plan may analyse; remove any this centre will not share.",
            f"allowed_outcomes = [{outcomes}]",
            "",
            f"# Longest follow-up time point (months) a plan may ask for; at most {MAX_MONTHS}.",
            f"max_months = {policy.max_months}",
            "",
            "# Most centres of the study roster a participant set may leave out. The",
            "# coordinator chooses the set: in a set of this centre and two centres colluding",
            "# with it, their sum gives this centre's summary. 0 = the whole roster only.",
            f"max_missing_centres = {policy.max_missing_centres}",
            "",
            "# Time-to-event endpoints a plan may ask for; [] allows none.",
            "allowed_time_to_event = ["
            + ", ".join(json.dumps(e) for e in policy.allowed_time_to_event)
            + "]",
            "",
            "# Patient columns a plan may stratify by; [] allows no strata.",
            "allowed_by = [" + ", ".join(json.dumps(b) for b in policy.allowed_by) + "]",
            "",
            "# Finest time grid (days) of a time-to-event plan: 1 = exact days allowed,",
            "# 30.4375 = months only.",
            f"min_time_grid_days = {policy.min_time_grid_days:g}",
            "",
            "# Whether a plan may declare further visits columns as measures (each is shown",
            "# when the plan is approved).",
            f"allow_declared_measures = {'true' if policy.allow_declared_measures else 'false'}",
            "",
            "# Whether a plan may ask for the heterogeneity between centres (Cochran's Q, I2,",
            "# tau2 and the random-effects estimate): this centre then adds fixed-point terms of",
            "# its own estimate per cell to the secure sum and answers one random-effects",
            "# exchange per cell and release epoch.",
            f"allow_heterogeneity = {'true' if policy.allow_heterogeneity else 'false'}",
            "",
        ]
    )


def write_default_policy(state_dir: Path) -> Path:
    """Write the commented default ``STATE/policy.toml`` (mode 0600); never overwrite one.

    Raise :class:`PolicyError` when the file already exists (the steward's edits are kept).
    """
    path = Path(state_dir) / POLICY_FILE
    try:
        write_private_file(path, default_policy_toml().encode("utf-8"))
    except FileExistsError:
        raise PolicyError(
            f"{path} already exists: edit it, or remove it to write the defaults again"
        ) from None
    except OSError as error:
        raise PolicyError(f"{path}: cannot write the disclosure policy ({error})") from None
    return path


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _months(value: float) -> str:
    return f"{value:g} month" + ("" if value == 1 else "s")
