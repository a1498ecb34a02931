"""``sscjak-node approve PLAN --roster ROSTER --state DIR [--yes]``: the steward's consent.

Shows in plain words what the plan lets this node release (outcomes, time points,
minimum cell, the roster, every element of the summary vector), asks for
confirmation, then records the plan hash, the plan text and the pinned roster in the
state directory. Until then the node refuses the plan.

When the plan overlaps a plan this centre already approved (same outcomes, a different
time point, window or minimum cell), it first warns in plain words that comparing the
two results could isolate individual patients (the differencing attack), and the
approval needs an explicit confirmation (``--yes`` or typing ``yes``); the approval
file records which overlapping plans were accepted. See docs/privacy.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sscjak.node.approvals import (
    ApprovalStore,
    describe_overlaps,
    describe_release,
    overlapping_approvals,
)
from sscjak.node.node_context import DEFAULT_MAX_ANSWERS_PER_PLAN
from sscjak.node.node_keys import load_node_name, load_private_key, public_key_hex
from sscjak.shared.cli_support import UserError
from sscjak.shared.plan import PlanError, default_plan, load_plan
from sscjak.shared.roster import load_roster


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "approve",
        help="approve a plan under the study roster (shows what will be released)",
        description=(
            "Show what PLAN would release from this centre, ask for confirmation and record "
            "the approval with the pinned study roster. PLAN is a plan TOML file, or "
            "'default' for the reference study."
        ),
    )
    parser.add_argument("plan", metavar="PLAN", help="plan TOML file, or 'default'")
    parser.add_argument("--roster", type=Path, required=True, help="study roster TOML")
    parser.add_argument(
        "--state", type=Path, required=True, metavar="DIR", help="the node's state directory"
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
    if len(roster) < 3:
        raise UserError(f"the roster has {len(roster)} centres; secure aggregation needs 3")
    store = ApprovalStore(args.state)
    overlaps = overlapping_approvals(plan, store)
    print(describe_release(plan, roster, max_answers_per_plan=DEFAULT_MAX_ANSWERS_PER_PLAN))
    print()
    if overlaps:
        warning = describe_overlaps(overlaps)
        print(warning)
        print()
        if args.yes:
            print("--yes given: approving despite the overlap.", file=sys.stderr)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError(
                "not approved: confirm interactively or pass --yes"
                + (
                    " (this plan overlaps an approved plan: see the warning above)"
                    if overlaps
                    else ""
                )
            )
        question = (
            f"Approve plan {plan.sha256[:12]} for node {name} DESPITE the overlap? Type 'yes': "
            if overlaps
            else f"Approve plan {plan.sha256[:12]} for node {name}? Type 'yes': "
        )
        answer = input(question)
        if answer.strip().lower() != "yes":
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
    return 0
