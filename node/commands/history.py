"""``sscjak-node history --state DIR``: what this node approved, answered and refused.

For the data steward: the approved plans with their pinned roster, the release epoch
(which participant set, roster and data this node's results are pinned to), every
analysis reply (time, plan, attempt, participant set, digest of the summary), every
revealed self-mask seed, and the refusals — read from the approvals, the ledger and the
audit log (docs/secure-aggregation.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sscjak.node.guard.approvals import ApprovalStore
from sscjak.node.guard.audit_log import AuditLog
from sscjak.node.guard.node_context import AUDIT_LOG_FILE
from sscjak.node.guard.release_epoch import read_epoch
from sscjak.node.guard.round_ledger import RoundLedger
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
        answers = len(ledger.answers(plan_sha256))
        revealed = len(ledger.reveals(plan_sha256))
        print(
            f"  {plan_sha256[:12]}  approved {approval.approved_at}  roster "
            f"{approval.roster_sha256[:12]} ({', '.join(approval.roster.names)})  "
            f"answered {answers} time(s), unmasked {revealed} time(s)"
        )
        if approval.acknowledged_overlaps:
            overlapped = ", ".join(h[:12] for h in approval.acknowledged_overlaps)
            print(f"    approved despite overlapping {overlapped}")
    print(describe_epoch(ledger))
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
        print(f"\nSelf-mask seeds revealed (results unmasked): {len(reveals)}")
        for entry in reveals:
            print(
                f"  {entry['time']}  plan {entry['plan_sha256'][:12]}  centres: "
                f"{', '.join(entry['participants'])}"
            )
    print(f"\nRefusals: {len(refusals)}")
    for entry in refusals:
        plan = (entry.get("plan_sha256") or "-")[:12]
        print(f"  {entry['time']}  plan {plan}  {entry['reason']}")
    return 0


def describe_epoch(ledger: RoundLedger) -> str:
    """The release epoch in one or two lines: what this node's results are pinned to."""
    epoch = read_epoch(ledger.directory)
    if epoch is None:
        return "\nRelease epoch: none yet (pinned by the first result released)"
    started = f"started {epoch.started_at} ({epoch.started_by})"
    if epoch.participants is None:
        return f"\nRelease epoch {epoch.epoch_id[:8]}: {started}; not pinned yet"
    data = "pinned" if epoch.data_fingerprint else "not pinned yet"
    return (
        f"\nRelease epoch {epoch.epoch_id[:8]}: {started}; results only over "
        f"{', '.join(epoch.participants)}; data {data}"
    )
