"""Everything a node needs to answer an analysis request: who it is and where its state is.

A :class:`NodeContext` is built once per node process (``sscjak-node serve``) or per
simulated centre (``sscjak-coordinator simulate``) and handed to
:func:`sscjak.node.analysis_handler.handle_analysis_request`.

State directory layout (created by ``sscjak-node keys``, ``approve`` and answering)::

    STATE/node_identity.toml     node name
    STATE/node_x25519_key.pem    long-term X25519 private key (0600)
    STATE/approvals/*.json       approved plans with their pinned roster
    STATE/ledger/                seen nonces, answered participant sets
    STATE/audit.jsonl            append-only audit log of every outgoing message
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sscjak.node.approvals import ApprovalStore
from sscjak.node.audit_log import AuditLog
from sscjak.node.node_keys import load_node_name
from sscjak.node.round_ledger import RoundLedger
from sscjak.shared.protocol import NODE_NAME_PATTERN

if TYPE_CHECKING:
    from sscjak.shared.plan import Plan

#: Default number of answers a node gives per approved plan (first run and reruns).
DEFAULT_MAX_ANSWERS_PER_PLAN = 3
#: Smallest participant set a node takes part in (docs/secure-aggregation.md).
MIN_PARTICIPANTS = 3
AUDIT_LOG_FILE = "audit.jsonl"

#: Computes a centre's summary vector from its data folder (default: node.summary).
Summariser = Callable[[Path, "Plan"], np.ndarray]


def _summarise_with_node_code(folder: Path, plan: Plan) -> np.ndarray:
    from sscjak.node.summary import summarise_centre

    return summarise_centre(folder, plan)


@dataclass(frozen=True)
class NodeContext:
    """One node: its name, its centre's data folder and its state directory.

    Parameters
    ----------
    name : the node's roster name (must match ``STATE/node_identity.toml`` when built
        with :meth:`from_state_dir`).
    data_folder : the centre's data folder (CONTRACT.md §1).
    state_dir : keys, approvals, ledger and audit log.
    max_answers_per_plan : default 3. How many analysis replies the node gives per
        approved plan, first run and reruns together; re-approving resets the count.
        Lower is safer against a coordinator lying about dropouts (each extra answer
        for a smaller set can expose the difference), higher tolerates more dropouts.
    min_participants : default 3, never lower. With 2 participants the other one
        learns this node's vector from the pooled sum.
    summarise : computes the summary vector; default the node's own
        ``summarise_centre``. Only tests inject anything else.
    require_confirmed_unmasking : default False. When True the node answers only
        requests in ``confirmed`` unmasking mode (two exchanges per analysis), which
        defeats the lying-about-dropout attack (docs/secure-aggregation.md §5) at the
        price of a second exchange and no rerun after a dropout during unmasking.
    """

    name: str
    data_folder: Path
    state_dir: Path
    max_answers_per_plan: int = DEFAULT_MAX_ANSWERS_PER_PLAN
    min_participants: int = MIN_PARTICIPANTS
    summarise: Summariser = _summarise_with_node_code
    require_confirmed_unmasking: bool = False

    def __post_init__(self) -> None:
        if NODE_NAME_PATTERN.fullmatch(self.name) is None:
            raise ValueError(f"{self.name!r} is not a valid node name")
        if self.max_answers_per_plan < 1:
            raise ValueError("max_answers_per_plan must be at least 1")
        if self.min_participants < MIN_PARTICIPANTS:
            raise ValueError(f"min_participants must be at least {MIN_PARTICIPANTS}")
        object.__setattr__(self, "data_folder", Path(self.data_folder))
        object.__setattr__(self, "state_dir", Path(self.state_dir))

    @classmethod
    def from_state_dir(cls, state_dir: Path, data_folder: Path, **settings: object) -> NodeContext:
        """The context of the node whose identity ``sscjak-node keys`` wrote in ``state_dir``."""
        return cls(load_node_name(state_dir), Path(data_folder), Path(state_dir), **settings)

    @property
    def approvals(self) -> ApprovalStore:
        return ApprovalStore(self.state_dir)

    @property
    def ledger(self) -> RoundLedger:
        return RoundLedger(self.state_dir)

    @property
    def audit_log(self) -> AuditLog:
        return AuditLog(self.state_dir / AUDIT_LOG_FILE)
