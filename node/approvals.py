"""The centre's approvals: which plans its node may answer, under which study roster.

A node answers an analysis request only for a plan its data steward approved with
``sscjak-node approve PLAN --roster ROSTER``. The approval pins, for that plan hash,
the plan text, the roster (names and X25519 public keys) and the roster hash; the
node then masks only with those keys and refuses any participant outside that
roster (the node's guard against a coordinator adding sock-puppet nodes).

Approvals live in ``STATE/approvals/<plan_sha256>.json`` (mode 0600). Approving the
same plan again replaces its approval and gets a new ``approval_id``, which restarts
the per-plan answer count (see :mod:`sscjak.node.round_ledger`).
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sscjak.shared.data_contract import MEASURES
from sscjak.shared.roster import Roster, RosterError, parse_roster
from sscjak.shared.summary_layout import SummaryLayout

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

    def record(self, plan: Plan, roster: Roster) -> Approval:
        """Record the steward's approval of ``plan`` under ``roster`` (atomic write)."""
        approval = Approval(
            plan_sha256=plan.sha256,
            plan_toml=plan.canonical_toml,
            roster=roster,
            approved_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            approval_id=secrets.token_hex(16),
        )
        document: dict[str, Any] = {
            "schema": APPROVAL_SCHEMA,
            "plan_sha256": approval.plan_sha256,
            "plan_toml": approval.plan_toml,
            "roster_sha256": roster.sha256,
            "roster_toml": roster.canonical_toml,
            "approved_at": approval.approved_at,
            "approval_id": approval.approval_id,
        }
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(approval.plan_sha256)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream, indent=2, sort_keys=True)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
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
            )
        except (OSError, ValueError, KeyError, TypeError, RosterError):
            return None

    def approved_plans(self) -> list[str]:
        """Hashes of all approved plans."""
        if not self.directory.exists():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json"))


def describe_release(plan: Plan, roster: Roster, *, max_answers_per_plan: int = 3) -> str:
    """What approving ``plan`` under ``roster`` lets this node release, in plain words.

    Lists the outcomes and time points, the minimum cell, the roster, and every element
    of the summary vector (:class:`SummaryLayout`): nothing else can leave the node.
    """
    layout = SummaryLayout.for_plan(plan)
    outcomes = ", ".join(f"{MEASURES[o].label} ({o}, {MEASURES[o].unit})" for o in plan.outcomes)
    months = ", ".join(str(m) for m in plan.months)
    lines = [
        f"Plan: {plan.title}",
        f"  plan_sha256 {plan.sha256}",
        f"  outcomes: {outcomes}",
        f"  changes from baseline at {months} months (window +/- {plan.window_months:g} months)",
        f"  pooled change cells with fewer than {plan.min_cell} patients are suppressed",
        "",
        f"Study roster (sha256 {roster.sha256[:16]}...): {len(roster)} centres",
        *(f"  {m.name}  key {m.x25519_public_key[:16]}..." for m in roster.members),
        "",
        "Per analysis this node sends ONE vector of "
        f"{layout.length} integers ({8 * layout.length} bytes, layout {layout.version}),",
        "hidden under pairwise masks that cancel only in the sum over at least 3 centres of",
        "this roster. The coordinator learns the pooled sum, never this centre's vector.",
        f"The node answers this plan at most {max_answers_per_plan} times (first run and",
        "reruns after a dropout); approve again to allow more. No patient id, date or row is",
        "ever sent. The vector holds exactly these counts and sums:",
    ]
    for segment in layout.segments:
        size = f"{segment.length} number" + ("s" if segment.length != 1 else "")
        kind = "histogram" if segment.is_histogram else ", ".join(segment.labels)
        lines.append(f"  - {segment.name} ({size}): {segment.meaning} [{kind}]")
    return "\n".join(lines)
