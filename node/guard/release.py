"""Releasing what a node sends: the doubly masked summary, and later its self-mask seed.

Both are recorded in the ledger and written to the audit log (fsync'd) before they are
returned. :func:`release_masked_summary` is the last step of the first exchange;
:func:`reveal_self_mask` is the whole second exchange, within the release epoch.
"""

from __future__ import annotations

import numpy as np

from sscjak.node.guard.audit_log import reply_entry, reveal_entry, summary_digest
from sscjak.node.guard.node_context import NodeContext
from sscjak.node.guard.request_checks import AcceptedRequest, RequestRefusedError
from sscjak.shared.protocol import (
    AnalysisReply,
    Payload,
    UnmaskReply,
    UnmaskRequest,
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


def release_masked_summary(
    accepted: AcceptedRequest, node: NodeContext, summary: np.ndarray, layout: SummaryLayout
) -> Payload:
    """Mask ``summary`` (of ``layout``) twice (pairwise masks bound to plan, roster and S,
    and a fresh self-mask), record the answer and its seed, audit-log it, and return the
    reply. Call under ``node.ledger.locked()``."""
    request, participants = accepted.request, accepted.participants
    released = layout.describe(summary)
    if request.tau2 is not None:
        released["tau2_received"] = {
            f"{outcome}.{months}": value
            for (outcome, months), value in zip(accepted.plan.cells, request.tau2, strict=True)
        }
    ledger = node.ledger
    seed = new_self_mask_seed()
    masked = mask_summary(
        summary,
        own_name=node.name,
        own_private_key=accepted.private_key,
        participant_keys=accepted.approval.roster.public_keys(participants),
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
            released_summary=released,
            reply_bytes=len(reply.masked),
        )
    )
    ledger.record_answer(
        plan_sha256=request.plan_sha256,
        roster_sha256=request.roster_sha256,
        participants=participants,
        nonce=request.nonce,
        attempt=request.attempt,
        epoch_id=accepted.epoch.epoch_id,
        data_fingerprint=accepted.data_fingerprint,
        self_mask_seed=seed,
    )
    return encode_reply(reply)


def reveal_self_mask(request: UnmaskRequest, node: NodeContext) -> Payload:
    """Second exchange: reveal the seed of one answer, within the release epoch.

    Revealed only for an answer this node gave to exactly this nonce, plan, roster and
    participant set, under the current epoch, and only if the epoch allows that set,
    roster and data (the first reveal pins them). Logged and fsync'd before it is sent.
    """
    ledger = node.ledger
    with ledger.locked():
        answers = ledger.answers_for_nonce(request.nonce)
        if len(answers) > 1:
            raise RequestRefusedError(
                "this nonce was answered more than once: none of its answers is unmasked", request
            )
        answer = answers[0] if answers else None
        if answer is None or answer["plan_sha256"] != request.plan_sha256:
            raise RequestRefusedError("this node did not answer that request", request)
        if (
            answer["participants"] != list(request.participants)
            or answer["roster_sha256"] != request.roster_sha256
        ):
            raise RequestRefusedError(
                "the participant set or roster differs from the one this node answered for",
                request,
            )
        epoch = ledger.epoch()
        if answer["epoch_id"] != epoch.epoch_id:
            raise RequestRefusedError(
                "that answer belongs to an earlier release epoch; it stays masked", request
            )
        refusal = epoch.refusal(
            request.participants, request.roster_sha256, answer["data_fingerprint"]
        )
        if refusal is not None:
            raise RequestRefusedError(refusal, request)
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
