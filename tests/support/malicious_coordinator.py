"""A coordinator that does whatever the protocol lets it: any set, any nonce, any order.

It talks to the nodes' request handlers directly (what a malicious coordinator can do
through the SuperLink it runs) and tries to obtain *unmasked* pooled sums: the attack
tests count how many distinct participant sets it gets one for.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

import numpy as np

from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.node_context import NodeContext
from sscjak.shared.plan import Plan
from sscjak.shared.protocol import (
    ANALYSIS_REPLY_KIND,
    UNMASK_REPLY_KIND,
    AnalysisRequest,
    UnmaskRequest,
    decode_reply,
    encode_request,
    encode_unmask_request,
)
from sscjak.shared.roster import Roster
from sscjak.shared.secure_aggregation import remove_self_masks, sum_masked


class MaliciousCoordinator:
    """Sends crafted requests to in-process nodes and keeps every reply."""

    def __init__(self, nodes: Mapping[str, NodeContext], roster: Roster) -> None:
        self.nodes = dict(nodes)
        self.roster = roster
        self.refusals: list[str] = []

    def summaries(
        self, plan: Plan, told: Mapping[str, tuple[str, ...]], nonce: str | None = None
    ) -> tuple[str, dict[str, dict]]:
        """First exchange: node name → reply, each node told its own participant set."""
        nonce = nonce or secrets.token_hex(32)
        replies = {}
        for name, participants in told.items():
            request = AnalysisRequest(
                plan_sha256=plan.sha256,
                plan_toml=plan.canonical_toml,
                roster_sha256=self.roster.sha256,
                participants=tuple(sorted(participants)),
                nonce=nonce,
                attempt=1,
            )
            replies[name] = handle_analysis_request(encode_request(request), self.nodes[name])
        return nonce, replies

    def seeds(self, plan: Plan, told: Mapping[str, tuple[str, ...]], nonce: str) -> dict[str, dict]:
        """Second exchange: node name → reply to the request for its seed of ``nonce``."""
        replies = {}
        for name, participants in told.items():
            request = UnmaskRequest(
                plan_sha256=plan.sha256,
                roster_sha256=self.roster.sha256,
                nonce=nonce,
                participants=tuple(sorted(participants)),
            )
            replies[name] = handle_analysis_request(
                encode_unmask_request(request), self.nodes[name]
            )
        return replies

    def unmask(self, summaries: Mapping[str, dict], seeds: Mapping[str, dict]) -> np.ndarray | None:
        """The unmasked sum of these replies, or ``None`` if any node refused."""
        for reply in [*summaries.values(), *seeds.values()]:
            if reply["kind"] not in (ANALYSIS_REPLY_KIND, UNMASK_REPLY_KIND):
                self.refusals.append(str(reply.get("reason")))
                return None
        masked = [decode_reply(r).masked_vector() for r in summaries.values()]
        revealed = [decode_reply(r).self_mask_seed for r in seeds.values()]
        return remove_self_masks(sum_masked(masked), revealed)

    def unmasked_sum(self, plan: Plan, participants: tuple[str, ...]) -> np.ndarray | None:
        """A whole analysis over ``participants``: the unmasked sum, or ``None`` if refused."""
        told = {name: tuple(participants) for name in participants}
        nonce, summaries = self.summaries(plan, told)
        if any(r["kind"] != ANALYSIS_REPLY_KIND for r in summaries.values()):
            return self.unmask(summaries, {})
        return self.unmask(summaries, self.seeds(plan, told, nonce))
