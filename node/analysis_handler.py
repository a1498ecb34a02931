"""The node's side of a secure analysis round: check the request, then answer or refuse.

:func:`handle_analysis_request` is the only code path by which anything derived from
the centre's data leaves the node (``sscjak-node serve`` and ``simulate`` both call it).
It never raises: a malformed or unacceptable request gets a refusal payload, and every
outgoing message — reply or refusal — is first written to the audit log.

Guards, in order (docs/secure-aggregation.md, "Node guards"):

1. the payload is a well-formed ``sscjak.analysis/1`` request (:mod:`sscjak.shared.protocol`);
2. this node is in the participant set S and |S| ≥ 3;
3. the nonce was never seen before (recorded for good before anything else happens);
4. the plan text hashes to the claimed plan hash;
5. the centre approved that plan (``sscjak-node approve``) with the exact same text;
6. the request's roster hash equals the pinned roster's, every participant is in the
   pinned roster, and this node's pinned key is its own key;
7. the plan has been answered fewer than ``max_answers_per_plan`` times under its
   current approval;

then the summary is computed, masked with the pinned keys, audit-logged and returned.

In ``confirmed`` unmasking mode the mask also contains the node's self-mask, and a
later ``sscjak.unmask/1`` request makes the node reveal the seed — once per approved
plan, only for a round it answered with exactly that participant set; after that the
plan is closed until the centre approves it again (docs/secure-aggregation.md §5).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from sscjak.node.audit_log import refusal_entry, reply_entry
from sscjak.node.node_context import NodeContext
from sscjak.node.node_keys import load_private_key, public_key_hex
from sscjak.node.round_ledger import single_centre_differences
from sscjak.shared.plan import parse_plan
from sscjak.shared.protocol import (
    UNMASKING_CONFIRMED,
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
from sscjak.shared.secure_aggregation import mask_summary, masked_to_bytes, self_mask_seed
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
    """Answer one analysis request: a masked-summary reply or a refusal; never raises.

    ``payload`` is the request as received (a flat mapping, see
    :mod:`sscjak.shared.protocol`); the result is the reply or refusal payload to send.
    Every outgoing message is audit-logged (fsync'd) before this returns.
    """
    try:
        return _answer(payload, node)
    except _RequestRefusedError as refusal:
        return _refuse(node, refusal.reason, refusal.request)
    except Exception as error:  # the node must answer something sane whatever happens
        _log.exception("unexpected error while answering an analysis request")
        reason = f"the node failed while answering ({type(error).__name__}); see its log"
        return _refuse(node, reason, None)


def _answer(payload: Mapping[str, Any], node: NodeContext) -> Payload:
    try:
        message = decode_node_message(payload)
    except ProtocolError as error:
        raise _RequestRefusedError(
            f"malformed request: {str(error)[:_MAX_QUOTED_ERROR]}"
        ) from error
    if isinstance(message, UnmaskRequest):
        return _reveal_self_mask(message, node)
    request = message

    participants = list(request.participants)
    if node.name not in participants:
        raise _RequestRefusedError(
            f"this node ({node.name}) is not in the participant set", request
        )
    confirmed = request.unmasking == UNMASKING_CONFIRMED
    if node.require_confirmed_unmasking and not confirmed:
        raise _RequestRefusedError(
            "this centre answers only with confirmed unmasking (two exchanges)", request
        )
    if len(participants) < node.min_participants:
        raise _RequestRefusedError(
            f"participant set of {len(participants)} is below the minimum of "
            f"{node.min_participants}: the others could learn this centre's summary",
            request,
        )

    ledger = node.ledger
    with ledger.locked():
        if ledger.nonce_seen(request.nonce):
            raise _RequestRefusedError(
                "this nonce was already used: a replayed request is never answered", request
            )
        ledger.record_nonce(request.nonce)

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
        outsiders = [name for name in participants if name not in approval.roster]
        if outsiders:
            raise _RequestRefusedError(
                "participants outside the approved roster: " + ", ".join(outsiders), request
            )
        private_key = load_private_key(node.state_dir)
        if approval.roster.member(node.name).x25519_public_key != public_key_hex(private_key):
            raise _RequestRefusedError(
                "this node's key is not the one pinned in the approved roster", request
            )
        if ledger.reveals_under_approval(request.plan_sha256, approval.approval_id):
            raise _RequestRefusedError(
                "this plan was completed with confirmed unmasking; the centre must approve it "
                "again before another analysis",
                request,
            )
        answered = ledger.answers_under_approval(request.plan_sha256, approval.approval_id)
        if answered >= node.max_answers_per_plan:
            raise _RequestRefusedError(
                f"this plan was already answered {answered} times (cap "
                f"{node.max_answers_per_plan}); the centre must approve it again",
                request,
            )

        earlier_sets = [
            list(answered)
            for answered in dict.fromkeys(
                tuple(row["participants"]) for row in ledger.answered_sets(request.plan_sha256)
            )
        ]
        warnings = [
            f"this set differs by one centre ({centre}) from a set answered before for this "
            f"plan ({', '.join(earlier)}): the two sums give {centre}'s summary; check with "
            f"{centre} that it really did not answer"
            for earlier, centre in single_centre_differences(earlier_sets, participants)
        ]
        plan = parse_plan(approval.plan_toml, "approved plan")
        layout = SummaryLayout.for_plan(plan)
        try:
            summary = node.summarise(node.data_folder, plan)
        except Exception as error:
            _log.exception("summarising the centre's data failed")
            raise _RequestRefusedError(
                f"the centre's data could not be summarised ({type(error).__name__}); "
                "the centre should run sscjak-node validate",
                request,
            ) from error
        summary = np.asarray(summary)
        layout.check(summary)

        masked = mask_summary(
            summary,
            own_name=node.name,
            own_private_key=private_key,
            participant_keys=approval.roster.public_keys(participants),
            plan_sha256=request.plan_sha256,
            nonce=bytes.fromhex(request.nonce),
            self_mask_seed=(
                self_mask_seed(
                    private_key,
                    plan_sha256=request.plan_sha256,
                    nonce=bytes.fromhex(request.nonce),
                )
                if confirmed
                else None
            ),
        )
        reply = AnalysisReply(
            node=node.name,
            plan_sha256=request.plan_sha256,
            nonce=request.nonce,
            masked=masked_to_bytes(masked),
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
                warnings=warnings,
            )
        )
        ledger.record_answer(
            plan_sha256=request.plan_sha256,
            approval_id=approval.approval_id,
            participants=participants,
            nonce=request.nonce,
            attempt=request.attempt,
            unmasking=request.unmasking,
        )
    return encode_reply(reply)


def _reveal_self_mask(request: UnmaskRequest, node: NodeContext) -> Payload:
    """Second exchange of confirmed unmasking: reveal ``b_i`` once per approved plan.

    Revealed only for a round this node answered in confirmed mode, with exactly the
    participant set the coordinator now says all answered, under the current approval,
    and only if no seed was revealed for this plan under this approval before.
    """
    ledger = node.ledger
    with ledger.locked():
        answer = ledger.answer_for_nonce(request.plan_sha256, request.nonce)
        if answer is None:
            raise _RequestRefusedError("this node did not answer that round", request)
        if answer.get("unmasking") != UNMASKING_CONFIRMED:
            raise _RequestRefusedError(
                "that round was not in confirmed unmasking mode: nothing to reveal", request
            )
        if answer["participants"] != list(request.participants):
            raise _RequestRefusedError(
                "the participant set differs from the one this node answered for", request
            )
        approval = node.approvals.find(request.plan_sha256)
        if approval is None or approval.approval_id != answer["approval_id"]:
            raise _RequestRefusedError(
                "the plan's approval changed since that round was answered", request
            )
        revealed = ledger.reveals_under_approval(request.plan_sha256, approval.approval_id)
        if revealed:
            raise _RequestRefusedError(
                "a self-mask for this plan was already revealed under this approval", request
            )
        seed = self_mask_seed(
            load_private_key(node.state_dir),
            plan_sha256=request.plan_sha256,
            nonce=bytes.fromhex(request.nonce),
        )
        reply = UnmaskReply(
            node=node.name,
            plan_sha256=request.plan_sha256,
            nonce=request.nonce,
            self_mask_seed=seed,
        )
        node.audit_log.append(
            {
                "event": "self-mask-revealed",
                "node": node.name,
                "plan_sha256": request.plan_sha256,
                "participants": list(request.participants),
                "nonce": request.nonce,
                "note": "the pooled sum of this round can now be unmasked; "
                "the plan is closed until approved again",
            }
        )
        ledger.record_reveal(
            plan_sha256=request.plan_sha256,
            approval_id=approval.approval_id,
            nonce=request.nonce,
        )
    return encode_unmask_reply(reply)


def summary_digest(summary: np.ndarray) -> str:
    """SHA-256 (hex) of the unmasked summary as int64 little-endian bytes."""
    return hashlib.sha256(np.asarray(summary, dtype="<i8").tobytes()).hexdigest()


def _refuse(
    node: NodeContext, reason: str, request: AnalysisRequest | UnmaskRequest | None
) -> Payload:
    """Audit-log and return a refusal; a failing audit log is reported but not raised."""
    refusal = Refusal(node=node.name, reason=reason[:2000])
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
