"""The node's side of a secure analysis: check each request, then answer or refuse.

:func:`handle_analysis_request` is the only code path by which anything derived from
the centre's data leaves the node (``sscjak-node serve`` and ``simulate`` both call it).
It never raises: a malformed or unacceptable request gets a refusal payload, and every
outgoing message — reply, revealed seed or refusal — is first written to the audit log.

An analysis is two exchanges (docs/secure-aggregation.md). **Analysis request**, guards
in order:

1. the payload is a well-formed request (:mod:`sscjak.shared.protocol`);
2. this node is in the participant set S and |S| is at least the centre's minimum;
3. the nonce was never seen before (recorded for good before anything else happens);
4. the plan text hashes to the claimed plan hash, and the centre approved that plan
   (``sscjak-node approve``) with the exact same text;
5. the plan is within the centre's disclosure policy;
6. the request's roster hash equals the pinned roster's, every participant is in the
   pinned roster, and this node's pinned key is its own key;
7. the release epoch (:mod:`sscjak.node.guard.release_epoch`) allows this set, roster and data;

then the summary is computed and doubly masked (pairwise masks bound to plan, roster
and S, plus a fresh self-mask), the answer and its seed are recorded, audit-logged and
returned with a commitment to the seed.

**Unmask request**: the node reveals the seed of an answer only for exactly the set it
answered, under the current epoch, and only if the epoch allows that set, roster and
data — pinning the epoch at the first reveal. So the coordinator can unmask sums over
one participant set per epoch, across all plans, whatever it claims about dropouts.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sscjak.node.guard.approvals import Approval
from sscjak.node.guard.audit_log import refusal_entry, reply_entry, reveal_entry
from sscjak.node.guard.disclosure_policy import PolicyError, load_policy, policy_refusal
from sscjak.node.guard.node_context import NodeContext
from sscjak.node.guard.node_keys import load_private_key, public_key_hex
from sscjak.node.guard.release_epoch import EpochFileError
from sscjak.shared.plan import Plan, parse_plan
from sscjak.shared.protocol import (
    MAX_REASON_CHARS,
    AnalysisReply,
    AnalysisRequest,
    Payload,
    ProtocolError,
    Refusal,
    UnmaskReply,
    UnmaskRequest,
    decode_node_message,
    encode_refusal,
    encode_reply,
    encode_unmask_reply,
)
from sscjak.shared.secure_aggregation import (
    mask_summary,
    masked_to_bytes,
    new_self_mask_seed,
    self_mask_commitment,
)
from sscjak.shared.summary_layout import SummaryLayout

__all__ = ["NodeContext", "handle_analysis_request"]

_log = logging.getLogger(__name__)
#: Longest error text quoted back in a refusal reason.
_MAX_QUOTED_ERROR = 300


class _RequestRefusedError(Exception):
    """Internal: the request is refused for ``reason`` (plain words)."""

    def __init__(self, reason: str, request: AnalysisRequest | UnmaskRequest | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request = request


def handle_analysis_request(payload: Mapping[str, Any], node: NodeContext) -> Payload:
    """Answer one request: a masked summary, a revealed seed, or a refusal; never raises.

    ``payload`` is the request as received (a flat mapping, see
    :mod:`sscjak.shared.protocol`); the result is the payload to send. Every outgoing
    message is audit-logged (fsync'd) before this returns.
    """
    try:
        try:
            message = decode_node_message(payload)
        except ProtocolError as error:
            raise _RequestRefusedError(
                f"malformed request: {str(error)[:_MAX_QUOTED_ERROR]}"
            ) from error
        if isinstance(message, UnmaskRequest):
            return _reveal_self_mask(message, node)
        return _answer(message, node)
    except _RequestRefusedError as refusal:
        return _refuse(node, refusal.reason, refusal.request)
    except EpochFileError as error:
        return _refuse(node, f"the node's release epoch cannot be read: {error}", None)
    except PolicyError as error:
        return _refuse(node, f"this centre's disclosure policy cannot be read: {error}", None)
    except Exception as error:  # the node must answer something sane whatever happens
        _log.exception("unexpected error while answering an analysis request")
        reason = f"the node failed while answering ({type(error).__name__}); see its log"
        return _refuse(node, reason, None)


def _answer(request: AnalysisRequest, node: NodeContext) -> Payload:
    """First exchange: check the request, then send the doubly masked summary."""
    participants = list(request.participants)
    if node.name not in participants:
        raise _RequestRefusedError(
            f"this node ({node.name}) is not in the participant set", request
        )
    if len(participants) < node.min_participants:
        raise _RequestRefusedError(
            f"participant set of {len(participants)} is below the minimum of "
            f"{node.min_participants}: the others could learn this centre's summary",
            request,
        )
    ledger = node.ledger
    with ledger.locked():
        if ledger.nonce_seen(request.nonce) or ledger.answers_for_nonce(request.nonce):
            raise _RequestRefusedError(
                "this nonce was already used: a replayed request is never answered", request
            )
        ledger.record_nonce(request.nonce)
        approval = _approved(request, node)
        plan = parse_plan(approval.plan_toml, "approved plan")
        problem = policy_refusal(
            load_policy(node.state_dir), plan, len(participants), len(approval.roster)
        )
        if problem is not None:
            raise _RequestRefusedError(problem, request)
        private_key = _pinned_own_key(request, approval, node)
        epoch = ledger.epoch()
        fingerprint = node.fingerprint(node.data_folder)
        refusal = epoch.refusal(request.participants, request.roster_sha256, fingerprint)
        if refusal is not None:
            raise _RequestRefusedError(refusal, request)

        layout = SummaryLayout.for_plan(plan)
        summary = _summarise(request, node, plan)
        layout.check(summary)
        if node.fingerprint(node.data_folder) != fingerprint:
            raise _RequestRefusedError(
                "the centre's data changed while they were being read; ask again", request
            )
        seed = new_self_mask_seed()
        masked = mask_summary(
            summary,
            own_name=node.name,
            own_private_key=private_key,
            participant_keys=approval.roster.public_keys(participants),
            plan_sha256=request.plan_sha256,
            roster_sha256=request.roster_sha256,
            nonce=bytes.fromhex(request.nonce),
            self_mask_seed=seed,
        )
        reply = AnalysisReply(
            node=node.name,
            plan_sha256=request.plan_sha256,
            nonce=request.nonce,
            masked=masked_to_bytes(masked),
            self_mask_commitment=self_mask_commitment(seed),
        )
        node.audit_log.append(
            reply_entry(
                node=node.name,
                plan_sha256=request.plan_sha256,
                participants=participants,
                nonce=request.nonce,
                attempt=request.attempt,
                summary_sha256=summary_digest(summary),
                released_summary=layout.describe(summary),
                reply_bytes=len(reply.masked),
            )
        )
        ledger.record_answer(
            plan_sha256=request.plan_sha256,
            roster_sha256=request.roster_sha256,
            participants=participants,
            nonce=request.nonce,
            attempt=request.attempt,
            epoch_id=epoch.epoch_id,
            data_fingerprint=fingerprint,
            self_mask_seed=seed,
        )
    return encode_reply(reply)


def _approved(request: AnalysisRequest, node: NodeContext) -> Approval:
    """The centre's approval of the requested plan, under the same roster; else refuse."""
    text_hash = hashlib.sha256(request.plan_toml.encode("utf-8")).hexdigest()
    if text_hash != request.plan_sha256:
        raise _RequestRefusedError("the plan text does not match the plan hash", request)
    approval = node.approvals.find(request.plan_sha256)
    if approval is None:
        raise _RequestRefusedError(
            f"plan {request.plan_sha256[:12]} is not approved by this centre "
            "(sscjak-node approve)",
            request,
        )
    if approval.plan_toml != request.plan_toml:
        raise _RequestRefusedError("the plan text differs from the approved plan text", request)
    if request.roster_sha256 != approval.roster_sha256:
        raise _RequestRefusedError(
            f"the study roster changed: request under roster {request.roster_sha256[:12]},"
            f" this centre approved roster {approval.roster_sha256[:12]}",
            request,
        )
    outsiders = [name for name in request.participants if name not in approval.roster]
    if outsiders:
        raise _RequestRefusedError(
            "participants outside the approved roster: " + ", ".join(outsiders), request
        )
    return approval


def _pinned_own_key(
    request: AnalysisRequest, approval: Approval, node: NodeContext
) -> X25519PrivateKey:
    """This node's private key, if the approved roster pins its public key; else refuse."""
    private_key = load_private_key(node.state_dir)
    if approval.roster.member(node.name).x25519_public_key != public_key_hex(private_key):
        raise _RequestRefusedError(
            "this node's key is not the one pinned in the approved roster", request
        )
    return private_key


def _summarise(request: AnalysisRequest, node: NodeContext, plan: Plan) -> np.ndarray:
    try:
        return np.asarray(node.summarise(node.data_folder, plan))
    except Exception as error:
        _log.exception("summarising the centre's data failed")
        raise _RequestRefusedError(
            f"the centre's data could not be summarised ({type(error).__name__}); "
            "the centre should run sscjak-node validate",
            request,
        ) from error


def _reveal_self_mask(request: UnmaskRequest, node: NodeContext) -> Payload:
    """Second exchange: reveal the seed of one answer, within the release epoch.

    Revealed only for an answer this node gave to exactly this nonce, plan, roster and
    participant set, under the current epoch, and only if the epoch allows that set,
    roster and data (the first reveal pins them). Logged and fsync'd before it is sent.
    """
    ledger = node.ledger
    with ledger.locked():
        answers = ledger.answers_for_nonce(request.nonce)
        if len(answers) > 1:
            raise _RequestRefusedError(
                "this nonce was answered more than once: none of its answers is unmasked", request
            )
        answer = answers[0] if answers else None
        if answer is None or answer["plan_sha256"] != request.plan_sha256:
            raise _RequestRefusedError("this node did not answer that request", request)
        if (
            answer["participants"] != list(request.participants)
            or answer["roster_sha256"] != request.roster_sha256
        ):
            raise _RequestRefusedError(
                "the participant set or roster differs from the one this node answered for",
                request,
            )
        epoch = ledger.epoch()
        if answer["epoch_id"] != epoch.epoch_id:
            raise _RequestRefusedError(
                "that answer belongs to an earlier release epoch; it stays masked", request
            )
        refusal = epoch.refusal(
            request.participants, request.roster_sha256, answer["data_fingerprint"]
        )
        if refusal is not None:
            raise _RequestRefusedError(refusal, request)
        if not epoch.pinned:
            ledger.pin_epoch(
                epoch.pinned_to(
                    request.participants, request.roster_sha256, answer["data_fingerprint"]
                )
            )
        node.audit_log.append(
            reveal_entry(
                node=node.name,
                plan_sha256=request.plan_sha256,
                participants=list(request.participants),
                nonce=request.nonce,
                epoch_id=epoch.epoch_id,
            )
        )
        ledger.record_reveal(
            plan_sha256=request.plan_sha256,
            participants=list(request.participants),
            nonce=request.nonce,
            epoch_id=epoch.epoch_id,
        )
        reply = UnmaskReply(
            node=node.name,
            plan_sha256=request.plan_sha256,
            nonce=request.nonce,
            self_mask_seed=bytes.fromhex(answer["self_mask_seed"]),
        )
    return encode_unmask_reply(reply)


def summary_digest(summary: np.ndarray) -> str:
    """SHA-256 (hex) of the unmasked summary as int64 little-endian bytes."""
    return hashlib.sha256(np.asarray(summary, dtype="<i8").tobytes()).hexdigest()


def _refuse(
    node: NodeContext, reason: str, request: AnalysisRequest | UnmaskRequest | None
) -> Payload:
    """Audit-log and return a refusal; a failing audit log is reported but not raised."""
    refusal = Refusal(node=node.name, reason=reason[:MAX_REASON_CHARS])
    try:
        node.audit_log.append(
            refusal_entry(
                node=node.name,
                reason=refusal.reason,
                plan_sha256=request.plan_sha256 if request else None,
                participants=list(request.participants) if request else None,
                nonce=request.nonce if request else None,
                attempt=getattr(request, "attempt", None),
            )
        )
    except Exception:
        _log.exception("could not write the refusal to the audit log")
    return encode_refusal(refusal)
