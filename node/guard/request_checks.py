"""The checks of an analysis request, in order, before anything is computed from the data.

:func:`accept_analysis_request` runs guards 2–7 of :mod:`sscjak.node.guard.analysis_handler`
and returns what the later steps need, or raises :class:`RequestRefusedError` with the
reason in plain words. It must run under the ledger's lock: it records the nonce first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sscjak.node.guard.approvals import Approval
from sscjak.node.guard.disclosure_policy import load_policy, policy_refusal
from sscjak.node.guard.node_context import NodeContext
from sscjak.node.guard.node_keys import load_private_key, public_key_hex
from sscjak.node.guard.release_epoch import ReleaseEpoch
from sscjak.node.summarise.centre_estimates import estimate_identity
from sscjak.shared.disclosure import MIN_HETEROGENEITY_CENTRES
from sscjak.shared.plan import Plan, parse_plan
from sscjak.shared.protocol import AnalysisRequest, UnmaskRequest


class RequestRefusedError(Exception):
    """The request is refused for ``reason`` (plain words), sent back as a refusal."""

    def __init__(self, reason: str, request: AnalysisRequest | UnmaskRequest | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request = request


@dataclass(frozen=True)
class AcceptedRequest:
    """An analysis request that passed every check, with what answering it needs."""

    request: AnalysisRequest
    approval: Approval
    plan: Plan
    private_key: X25519PrivateKey
    epoch: ReleaseEpoch
    data_fingerprint: str

    @property
    def participants(self) -> list[str]:
        return list(self.request.participants)


def accept_analysis_request(request: AnalysisRequest, node: NodeContext) -> AcceptedRequest:
    """Check the request (participant set, nonce, approval, policy, roster and key, epoch);
    the accepted request, or :class:`RequestRefusedError`. Call under ``node.ledger.locked()``."""
    participants = list(request.participants)
    if node.name not in participants:
        raise RequestRefusedError(
            f"this node ({node.name}) is not in the participant set", request
        )
    if len(participants) < node.min_participants:
        raise RequestRefusedError(
            f"participant set of {len(participants)} is below the minimum of "
            f"{node.min_participants}: the others could learn this centre's summary",
            request,
        )
    ledger = node.ledger
    if ledger.nonce_seen(request.nonce) or ledger.answers_for_nonce(request.nonce):
        raise RequestRefusedError(
            "this nonce was already used: a replayed request is never answered", request
        )
    ledger.record_nonce(request.nonce)
    approval = _approved(request, node)
    plan = parse_plan(approval.plan_toml, "approved plan")
    problem = policy_refusal(
        load_policy(node.state_dir), plan, len(participants), len(approval.roster)
    )
    if problem is not None:
        raise RequestRefusedError(problem, request)
    private_key = _pinned_own_key(request, approval, node)
    epoch = ledger.epoch()
    fingerprint = node.fingerprint(node.data_folder)
    refusal = epoch.refusal(request.participants, request.roster_sha256, fingerprint)
    if refusal is not None:
        raise RequestRefusedError(refusal, request)
    return AcceptedRequest(request, approval, plan, private_key, epoch, fingerprint)


def _approved(request: AnalysisRequest, node: NodeContext) -> Approval:
    """The centre's approval of the requested plan, under the same roster; else refuse."""
    text_hash = hashlib.sha256(request.plan_toml.encode("utf-8")).hexdigest()
    if text_hash != request.plan_sha256:
        raise RequestRefusedError("the plan text does not match the plan hash", request)
    approval = node.approvals.find(request.plan_sha256)
    if approval is None:
        raise RequestRefusedError(
            f"plan {request.plan_sha256[:12]} is not approved by this centre "
            "(sscjak-node approve)",
            request,
        )
    if approval.plan_toml != request.plan_toml:
        raise RequestRefusedError("the plan text differs from the approved plan text", request)
    if request.roster_sha256 != approval.roster_sha256:
        raise RequestRefusedError(
            f"the study roster changed: request under roster {request.roster_sha256[:12]},"
            f" this centre approved roster {approval.roster_sha256[:12]}",
            request,
        )
    outsiders = [name for name in request.participants if name not in approval.roster]
    if outsiders:
        raise RequestRefusedError(
            "participants outside the approved roster: " + ", ".join(outsiders), request
        )
    return approval


def _pinned_own_key(
    request: AnalysisRequest, approval: Approval, node: NodeContext
) -> X25519PrivateKey:
    """This node's private key, if the approved roster pins its public key; else refuse."""
    private_key = load_private_key(node.state_dir)
    if approval.roster.member(node.name).x25519_public_key != public_key_hex(private_key):
        raise RequestRefusedError(
            "this node's key is not the one pinned in the approved roster", request
        )
    return private_key


@dataclass(frozen=True)
class EstimateSettings:
    """The per-estimate setting of an accepted heterogeneity request (``min_centre_n`` for
    the plan's own sum, ``tau2`` for the random-effects sum), and the entries this epoch
    has not answered before, to record with the answer."""

    setting: str
    new: dict[str, str]


def accept_estimate_settings(
    accepted: AcceptedRequest, node: NodeContext, setting: str, values: list[str]
) -> EstimateSettings:
    """Per release epoch, one value of ``setting`` per estimate (:func:`estimate_identity`).

    Two pooled sums over one set that differ only in ``min_centre_n`` differ by the terms
    of the centres included under one and left out under the other: one centre's own
    θ and v. The pooled Σ1/(v + τ²), Σθ/(v + τ²) at several τ² are rational functions of
    τ² whose poles are the centres' −vᵢ: enough of them give every centre's θᵢ and vᵢ.
    So a node answers each estimate under one value only; the same value again (a retry,
    a twin plan) is answered. Call under ``node.ledger.locked()``.
    """
    request, plan = accepted.request, accepted.plan
    answered = node.ledger.estimate_settings(accepted.epoch.epoch_id, setting)
    new: dict[str, str] = {}
    for (outcome, months), value in zip(plan.cells, values, strict=True):
        key = estimate_identity(plan, outcome, months)
        earlier = answered.get(key, new.get(key))
        if earlier is not None and earlier != value:
            raise RequestRefusedError(
                f"this centre already released its estimate of {outcome} at {months} months "
                f"with {setting} = {_shown(setting, earlier)} in this release epoch; another "
                f"{setting} ({_shown(setting, value)}) would let the coordinator isolate this "
                "centre's own estimate",
                request,
            )
        if key not in answered:
            new[key] = value
    return EstimateSettings(setting, new)


def _shown(setting: str, value: str) -> str:
    return f"{float.fromhex(value):.6g}" if setting == "tau2" else value


def accept_heterogeneity(accepted: AcceptedRequest, node: NodeContext) -> EstimateSettings:
    """The plan's own sum of a heterogeneity plan: one ``min_centre_n`` per estimate."""
    plan = accepted.plan
    return accept_estimate_settings(
        accepted, node, "min_centre_n", [str(plan.min_centre_n)] * len(plan.cells)
    )


def accept_random_effects(
    accepted: AcceptedRequest, node: NodeContext
) -> tuple[tuple[Fraction, ...], EstimateSettings]:
    """Check a random-effects request beyond :func:`accept_analysis_request`: the plan
    asks for heterogeneity, the set has at least 4 centres, one τ² per change cell, and
    one τ² per estimate and epoch (:func:`accept_estimate_settings`); return τ² exactly.
    Call under ``node.ledger.locked()``."""
    request, plan = accepted.request, accepted.plan
    tau2 = request.tau2 or ()
    if not plan.heterogeneity:
        raise RequestRefusedError(
            "the plan does not ask for heterogeneity: there is no random-effects exchange",
            request,
        )
    if len(accepted.participants) < MIN_HETEROGENEITY_CENTRES:
        raise RequestRefusedError(
            f"a random-effects exchange needs at least {MIN_HETEROGENEITY_CENTRES} "
            f"participants, this request has {len(accepted.participants)}: with fewer, the "
            "pooled sums determine each centre's own estimate",
            request,
        )
    if len(tau2) != len(plan.cells):
        raise RequestRefusedError(
            f"expected one tau2 per change cell ({len(plan.cells)}), got {len(tau2)}", request
        )
    settings = accept_estimate_settings(
        accepted, node, "tau2", [float(value).hex() for value in tau2]
    )
    return tuple(Fraction(value) for value in tau2), settings
