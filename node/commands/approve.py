"""``sscjak-node approve PLAN --roster ROSTER --state DIR [--participants A,B,C] [--yes]``.

The steward's consent. Refuses a plan below this centre's disclosure policy
(:mod:`sscjak.node.guard.disclosure_policy`: every problem listed, nothing recorded). Otherwise
shows in plain words what the plan lets this node release (outcomes, time points, minimum
cell, the roster, what the coordinator sees, every element of the summary vector), asks
for confirmation, then records the plan hash, the plan text and the pinned roster in the
state directory. Until then the node refuses the plan.

When approved plans release some of the same numbers, one warning comes first
(:func:`sscjak.node.guard.approvals.describe_related`): plans that *overlap* (same outcomes, a
different time point, window or minimum cell: comparing the results could isolate
individual patients), *twins* (the same numbers altogether) and the *shared* numbers,
harmless only because results are released over one participant set per epoch. The
approval file records which overlapping plans were accepted.

``--participants A,B,C`` also starts a new release epoch pinned to that set
(:mod:`sscjak.node.guard.release_epoch`), after its warning. Confirmation is typing ``yes``
(at a terminal or as a line on standard input, ``echo yes | sscjak-node approve ...``)
or ``--yes``. See docs/privacy.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sscjak.node.guard.approvals import (
    ApprovalStore,
    PlanOverlap,
    describe_related,
    describe_release,
    related_approvals,
)
from sscjak.node.guard.disclosure_policy import (
    POLICY_FILE,
    DisclosurePolicy,
    load_policy,
    missing_centres_problem,
)
from sscjak.node.guard.node_keys import load_node_name, load_private_key, public_key_hex
from sscjak.node.guard.release_epoch import (
    EpochFileError,
    ReleaseEpoch,
    describe_new_epoch,
    new_epoch,
    read_epoch,
    write_epoch,
)
from sscjak.node.guard.round_ledger import LEDGER_DIRECTORY, RoundLedger
from sscjak.shared.cli_support import UserError
from sscjak.shared.plan import PlanError, default_plan, load_plan
from sscjak.shared.protocol import MIN_PARTICIPANTS
from sscjak.shared.roster import Roster, load_roster


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "approve",
        help="approve a plan under the study roster (shows what will be released)",
        description=(
            "Show what PLAN would release from this centre, ask for confirmation and record "
            "the approval with the pinned study roster. PLAN is a plan TOML file, or "
            "'default' for the reference study. A plan below this centre's disclosure "
            f"policy (STATE/{POLICY_FILE}, see 'sscjak-node policy') is refused."
        ),
    )
    parser.add_argument("plan", metavar="PLAN", help="plan TOML file, or 'default'")
    parser.add_argument(
        "--roster", type=Path, required=True, metavar="FILE", help="the study roster TOML"
    )
    parser.add_argument(
        "--state", type=Path, required=True, metavar="DIR", help="the node's state directory"
    )
    parser.add_argument(
        "--participants",
        metavar="A,B,C",
        help=(
            "also start a new release epoch: from now on this node releases results over "
            "exactly these roster members (this node among them)"
        ),
    )
    parser.add_argument("--yes", action="store_true", help="approve without asking (scripts)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        plan = default_plan() if args.plan == "default" else load_plan(args.plan)
    except PlanError as error:
        raise UserError(str(error)) from None
    roster = load_roster(args.roster)
    name = load_node_name(args.state)
    if name not in roster:
        raise UserError(f"this node ({name}) is not in the roster {args.roster}")
    own_key = public_key_hex(load_private_key(args.state))
    if roster.member(name).x25519_public_key != own_key:
        raise UserError(
            f"the roster lists another key for {name} than this node's own key: "
            "ask the coordinator to add the entry printed by 'sscjak-node keys'"
        )
    if len(roster) < MIN_PARTICIPANTS:
        raise UserError(
            f"the roster has {len(roster)} centres; secure aggregation needs {MIN_PARTICIPANTS}"
        )
    policy = load_policy(args.state)
    problems = policy.plan_problems(plan)
    if problems:
        raise UserError(
            f"not approved: plan {plan.sha256[:12]} falls below this centre's disclosure "
            f"policy ({_policy_source(args.state)}):\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )
    participants = (
        _parse_participants(args.participants, roster, name, policy)
        if args.participants is not None
        else None
    )
    ledger_dir = Path(args.state) / LEDGER_DIRECTORY

    store = ApprovalStore(args.state)
    relations = related_approvals(plan, store)
    overlaps = [r.overlap for r in relations if r.overlap is not None]
    print(describe_release(plan, roster))
    print()
    if relations:
        print(describe_related(plan, relations))
        print()
    if participants is not None:
        try:
            current = read_epoch(ledger_dir)
        except EpochFileError as error:
            # the steward is about to replace it; say what is being replaced
            print(f"{error}; it will be replaced by the new epoch.")
            current = None
        print(describe_new_epoch(current, participants))
        print()
    if args.yes:
        if overlaps:
            print("--yes given: approving despite the overlap.", file=sys.stderr)
        if participants is not None:
            print(
                f"--yes given: starting a new release epoch over {', '.join(participants)}.",
                file=sys.stderr,
            )
    elif not _confirmed(_question(plan.sha256, name, participants, bool(overlaps)), overlaps):
        print("Not approved.")
        return 1

    approval = store.record(
        plan, roster, acknowledged_overlaps=tuple(o.approved.plan_sha256 for o in overlaps)
    )
    print(
        f"Approved plan {approval.plan_sha256} under roster {approval.roster_sha256[:16]}... "
        f"at {approval.approved_at}."
        + (
            f" It overlaps {len(overlaps)} approved plan(s); that was accepted and recorded."
            if overlaps
            else ""
        )
    )
    if participants is not None:
        epoch = new_epoch("steward", participants)
        with RoundLedger(args.state).locked():
            if _epoch_or_none(ledger_dir) != current:
                raise UserError(
                    "the release epoch changed while you were reading the warning (a result "
                    "was released meanwhile): the plan is approved, but no new epoch was "
                    "started; run the command again to see the current warning"
                )
            write_epoch(ledger_dir, epoch)
        print(
            f"Started release epoch {epoch.epoch_id[:12]} over {', '.join(epoch.participants)}"
            " at " + epoch.started_at + "."
        )
    return 0


def _epoch_or_none(ledger_dir: Path) -> ReleaseEpoch | None:
    try:
        return read_epoch(ledger_dir)
    except EpochFileError:
        return None


def _policy_source(state: Path) -> str:
    path = Path(state) / POLICY_FILE
    return str(path) if path.exists() else f"the safe defaults: no {path}"


def _parse_participants(
    text: str, roster: Roster, name: str, policy: DisclosurePolicy
) -> tuple[str, ...]:
    """The participant set of ``--participants``: roster members, this node among them."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    problems = []
    outside = [n for n in names if n not in roster]
    if outside:
        problems.append(
            f"not in the roster: {', '.join(outside)} (roster: {', '.join(roster.names)})"
        )
    if len(set(names)) != len(names):
        problems.append("each centre may be named only once")
    if name not in names:
        problems.append(f"this node ({name}) must be one of them")
    if len(set(names)) < policy.min_participants:
        problems.append(
            f"{len(set(names))} centre(s) named; this centre's policy needs at least "
            f"{policy.min_participants}"
        )
    missing = missing_centres_problem(policy, len(set(names) & set(roster.names)), len(roster))
    if missing is not None:
        problems.append(missing)
    if problems:
        raise UserError(f"--participants {text!r}: " + "; ".join(problems))
    return tuple(sorted(names))


def _question(
    plan_sha256: str, name: str, participants: tuple[str, ...] | None, overlapping: bool
) -> str:
    question = f"Approve plan {plan_sha256[:12]} for node {name}"
    if participants is not None:
        question += f" and start a release epoch over {', '.join(participants)}"
    if overlapping:
        question += " DESPITE the overlap"
    return question + "? Type 'yes' (or run again with --yes): "


def _confirmed(question: str, overlaps: list[PlanOverlap]) -> bool:
    """Ask ``question``; read the answer from a terminal or a line of piped standard input.

    Raise :class:`UserError` when standard input is empty or closed (no answer at all).
    """
    interactive = sys.stdin is not None and sys.stdin.isatty()
    try:
        answer = input(question)
    except (EOFError, OSError, RuntimeError):
        # EOFError: empty or closed stdin; OSError: stdin cannot be read (e.g. captured);
        # RuntimeError: no stdin at all (a daemon)
        if not interactive:
            print()
        raise UserError(
            "not approved: type yes or pass --yes"
            + (" (this plan overlaps an approved plan: see the warning above)" if overlaps else "")
        ) from None
    if not interactive:
        print()  # the piped answer is not echoed: end the question's line
    return answer.strip().lower() == "yes"
