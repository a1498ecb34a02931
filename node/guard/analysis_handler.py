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
7. the release epoch (:mod:`sscjak.node.guard.release_epoch`) allows this set, roster and
   data (guards 2–7: :mod:`sscjak.node.guard.request_checks`);

then the summary is computed and doubly masked (pairwise masks bound to plan, roster
and S, plus a fresh self-mask), the answer and its seed are recorded, audit-logged and
returned with a commitment to the seed.

A heterogeneity plan's request also passes
:func:`~sscjak.node.guard.request_checks.accept_heterogeneity` (per release epoch, one
``min_centre_n`` per estimate). A **random-effects request** (its second secure sum)
passes the same guards, then
:func:`~sscjak.node.guard.request_checks.accept_random_effects` (the plan asks for
heterogeneity, at least 4 participants, one τ² per cell, and per release epoch one τ²
per estimate); the vector released is the small random-effects vector, masked the same
way.

**Unmask request**: the node reveals the seed of an answer only for exactly the set it
answered, under the current epoch, and only if the epoch allows that set, roster and
data — pinning the epoch at the first reveal. So the coordinator can unmask sums over
one participant set per epoch, across all plans, whatever it claims about dropouts.
"""


from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sscjak.node.guard.audit_log import refusal_entry
from sscjak.node.guard.disclosure_policy import PolicyError
from sscjak.node.guard.node_context import NodeContext
from sscjak.node.guard.release import release_masked_summary, reveal_self_mask
from sscjak.node.guard.release_epoch import EpochFileError
from sscjak.node.guard.request_checks import (
    RequestRefusedError,
    accept_analysis_request,
    accept_heterogeneity,
    accept_random_effects,
)
from sscjak.shared.protocol import (
    MAX_REASON_CHARS,
    AnalysisRequest,
    Payload,
    ProtocolError,
    Refusal,
    UnmaskRequest,
    decode_node_message,
    encode_refusal,
)
from sscjak.shared.summary_layout import RandomEffectsLayout, SummaryLayout

__all__ = ["NodeContext", "handle_analysis_request"]

_log = logging.getLogger(__name__)
#: Longest error text quoted back in a refusal reason.
_MAX_QUOTED_ERROR = 300


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
            raise RequestRefusedError(
                f"malformed request: {str(error)[:_MAX_QUOTED_ERROR]}"
            ) from error
        if isinstance(message, UnmaskRequest):
            return reveal_self_mask(message, node)
        return _answer(message, node)
    except RequestRefusedError as refusal:
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
    """First exchange: check the request, summarise the data, release the masked summary."""
    with node.ledger.locked():
        accepted = accept_analysis_request(request, node)
        plan = accepted.plan
        settings = None
        if request.tau2 is None:
            if plan.heterogeneity:
                settings = accept_heterogeneity(accepted, node)
            layout = SummaryLayout.for_plan(plan)
            summary = _summarise(request, lambda: node.summarise(node.data_folder, plan))
        else:
            tau2, settings = accept_random_effects(accepted, node)
            layout = RandomEffectsLayout.for_plan(plan)
            summary = _summarise(
                request, lambda: node.summarise_random_effects(node.data_folder, plan, tau2)
            )
        layout.check(summary)
        if node.fingerprint(node.data_folder) != accepted.data_fingerprint:
            raise RequestRefusedError(
                "the centre's data changed while they were being read; ask again", request
            )
        if settings is not None and settings.new:
            node.ledger.record_estimate_settings(
                accepted.epoch.epoch_id, settings.setting, settings.new
            )
        return release_masked_summary(accepted, node, summary, layout)


def _summarise(request: AnalysisRequest, compute: Callable[[], np.ndarray]) -> np.ndarray:
    try:
        return np.asarray(compute())
    except Exception as error:
        _log.exception("summarising the centre's data failed")
        raise RequestRefusedError(
            f"the centre's data could not be summarised ({type(error).__name__}); "
            "the centre should run sscjak-node validate",
            request,
        ) from error


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
