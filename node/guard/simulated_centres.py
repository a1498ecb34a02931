"""Throw-away node states for local centre folders: ``simulate`` and tests.

:func:`prepare_simulated_nodes` gives each folder a node with a fresh identity and
X25519 key in its own state directory, builds the study roster from them and records
the plan's approval under that roster at every node. It approves automatically: in a
simulation the data steward of every folder is the person running it, on their own
machine, so the approval step has nobody else to protect. Real nodes never use this
module; they are approved with ``sscjak-node approve``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from sscjak.node.guard.node_context import NodeContext, Summariser
from sscjak.node.guard.node_keys import create_node_identity, roster_entry
from sscjak.shared.plan import Plan
from sscjak.shared.roster import Roster


def simulated_node_names(folders: Sequence[Path]) -> list[str]:
    """A distinct, valid node name per folder, from the folder's own name."""
    names: list[str] = []
    for folder in folders:
        base = re.sub(r"[^A-Za-z0-9._-]", "-", Path(folder).resolve().name)[:56] or "centre"
        if not base[0].isalnum():
            base = "c" + base[:55]
        name, suffix = base, 2
        while name in names:
            name, suffix = f"{base}-{suffix}", suffix + 1
        names.append(name)
    return names


def prepare_simulated_nodes(
    folders: Sequence[Path],
    plan: Plan,
    state_root: Path,
    *,
    summarise: Summariser | None = None,
    **settings: object,
) -> tuple[Roster, dict[str, NodeContext]]:
    """Create one approved node per folder under ``state_root``; return roster and nodes.

    ``summarise`` replaces the node's summary code (tests only); ``settings`` are passed
    to :class:`NodeContext` (e.g. ``fingerprint``).
    """
    names = simulated_node_names(folders)
    state_root = Path(state_root)
    members = []
    for name in names:
        create_node_identity(state_root / name, name)
        members.append(roster_entry(state_root / name))
    roster = Roster(tuple(members))
    extra = dict(settings)
    if summarise is not None:
        extra["summarise"] = summarise
    nodes: dict[str, NodeContext] = {}
    for name, folder in zip(names, folders, strict=True):
        node = NodeContext(name, Path(folder), state_root / name, **extra)  # type: ignore[arg-type]
        node.approvals.record(plan, roster)
        nodes[name] = node
    return roster, nodes
