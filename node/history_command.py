"""``sscjak-node history --state DIR``: what this node approved, answered and refused.

For the data steward: the approved plans with their pinned roster, every analysis reply
(time, plan, attempt, participant set, digest of the summary) with any warning the node
raised, and the refusals — read from the approvals and the audit log. A participant set
one centre smaller than an earlier one for the same plan is shown with a warning: ask
that centre whether it really did not answer (docs/secure-aggregation.md §5).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sscjak.node.approvals import ApprovalStore
from sscjak.node.audit_log import AuditLog
from sscjak.node.node_context import AUDIT_LOG_FILE
from sscjak.node.round_ledger import RoundLedger
from sscjak.shared.cli_support import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history",
        help="list approved plans, answers given and refusals (from the audit log)",
        description=(
            "Show what this node approved, every summary it released (participant sets, "
            "digests, warnings) and every refusal."
        ),
    )
    parser.add_argument(
        "--state", type=Path, required=True, metavar="DIR", help="the node's state directory"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state: Path = args.state
    if not state.is_dir():
        raise UserError(f"not a node state directory: {state}")
    store = ApprovalStore(state)
    ledger = RoundLedger(state)
    plans = store.approved_plans()
    print(f"Approved plans: {len(plans)}")
    for plan_sha256 in plans:
        approval = store.find(plan_sha256)
        if approval is None:
            print(f"  {plan_sha256[:12]}  (approval file damaged: treated as not approved)")
            continue
        answers = ledger.answers_under_approval(plan_sha256, approval.approval_id)
        print(
            f"  {plan_sha256[:12]}  approved {approval.approved_at}  roster "
            f"{approval.roster_sha256[:12]} ({', '.join(approval.roster.names)})  "
            f"answered {answers} time(s) since"
        )
        if approval.acknowledged_overlaps:
            overlapped = ", ".join(h[:12] for h in approval.acknowledged_overlaps)
            print(f"    approved despite overlapping {overlapped}")
    entries = list(AuditLog(state / AUDIT_LOG_FILE).entries())
    replies = [e for e in entries if e.get("event") == "analysis-reply"]
    refusals = [e for e in entries if e.get("event") == "refusal"]
    reveals = [e for e in entries if e.get("event") == "self-mask-revealed"]
    print(f"\nSummaries released: {len(replies)}")
    for entry in replies:
        print(
            f"  {entry['time']}  plan {entry['plan_sha256'][:12]}  attempt {entry['attempt']}  "
            f"centres: {', '.join(entry['participants'])}  summary sha256 "
            f"{entry['summary_sha256'][:12]}"
        )
        for warning in entry.get("warnings", []):
            print(f"    WARNING: {warning}")
    if reveals:
        print(f"\nSelf-mask seeds revealed (confirmed unmasking): {len(reveals)}")
        for entry in reveals:
            print(
                f"  {entry['time']}  plan {entry['plan_sha256'][:12]}  centres: "
                f"{', '.join(entry['participants'])}  (plan closed until approved again)"
            )
    print(f"\nRefusals: {len(refusals)}")
    for entry in refusals:
        plan = (entry.get("plan_sha256") or "-")[:12]
        print(f"  {entry['time']}  plan {plan}  {entry['reason']}")
    return 0
