"""Everything a node needs to answer an analysis request: who it is and where its state is.

A :class:`NodeContext` is built once per node process (``sscjak-node serve``) or per
simulated centre (``sscjak-coordinator simulate``) and handed to
:func:`sscjak.node.guard.analysis_handler.handle_analysis_request`.

State directory layout (created by ``sscjak-node keys``, ``approve`` and answering)::

    STATE/node_identity.toml     node name
    STATE/node_x25519_key.pem    long-term X25519 private key (0600)
    STATE/approvals/*.json       approved plans with their pinned roster
    STATE/ledger/                seen nonces, answers and their self-mask seeds, reveals,
                                 the release epoch
    STATE/policy.toml            the centre's disclosure policy (optional)
    STATE/audit.jsonl            append-only audit log of every outgoing message
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sscjak.node.guard.approvals import ApprovalStore
from sscjak.node.guard.audit_log import AuditLog
from sscjak.node.guard.node_keys import load_node_name
from sscjak.node.guard.release_epoch import data_fingerprint
from sscjak.node.guard.round_ledger import RoundLedger
from sscjak.shared.protocol import MIN_PARTICIPANTS, NODE_NAME_PATTERN

if TYPE_CHECKING:
    from sscjak.shared.plan import Plan

AUDIT_LOG_FILE = "audit.jsonl"

#: Computes a centre's summary vector from its data folder (default:
#: :func:`sscjak.node.summarise.summary_vector.summarise_centre`).
Summariser = Callable[[Path, "Plan"], np.ndarray]
#: Fingerprints the centre's data folder (default: release_epoch.data_fingerprint).
Fingerprinter = Callable[[Path], str]
#: Computes a centre's random-effects vector for one τ² per change cell (default:
#: :func:`sscjak.node.summarise.centre_estimates.summarise_random_effects`).
RandomEffectsSummariser = Callable[[Path, "Plan", tuple[Fraction, ...]], np.ndarray]


def _summarise_with_node_code(folder: Path, plan: Plan) -> np.ndarray:
    from sscjak.node.summarise.summary_vector import summarise_centre

    return summarise_centre(folder, plan)


def _random_effects_with_node_code(
    folder: Path, plan: Plan, tau2: tuple[Fraction, ...]
) -> np.ndarray:
    from sscjak.node.summarise.centre_estimates import summarise_random_effects

    return summarise_random_effects(folder, plan, tau2)


@dataclass(frozen=True)
class NodeContext:
    """One node: its name, its centre's data folder and its state directory.

    Parameters
    ----------
    name : the node's roster name (must match ``STATE/node_identity.toml`` when built
        with :meth:`from_state_dir`).
    data_folder : the centre's data folder (docs/input-files.md).
    state_dir : keys, approvals, ledger and audit log.
    min_participants : default 3, never lower. With 2 participants the other one
        learns this node's vector from the pooled sum.
    summarise : computes the summary vector; default the node's own
        ``summarise_centre``. Only tests inject anything else.
    fingerprint : fingerprints the data folder for the release epoch (a data change
        within an epoch is refused); default the hash of the centre's table files.
    summarise_random_effects : computes the random-effects vector of a heterogeneity
        plan; default the node's own code. Only tests inject anything else.
    """

    name: str
    data_folder: Path
    state_dir: Path
    min_participants: int = MIN_PARTICIPANTS
    summarise: Summariser = _summarise_with_node_code
    fingerprint: Fingerprinter = data_fingerprint
    summarise_random_effects: RandomEffectsSummariser = _random_effects_with_node_code

    def __post_init__(self) -> None:
        if NODE_NAME_PATTERN.fullmatch(self.name) is None:
            raise ValueError(f"{self.name!r} is not a valid node name")
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
