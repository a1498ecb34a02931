"""The coordinator's side of a secure analysis: one exchange, reruns only after dropouts.

:func:`run_secure_analysis` sends every roster member the same analysis request (plan,
participant set S, fresh nonce), collects the masked summaries and adds them modulo
2**64: the pairwise masks cancel and only the pooled summary appears
(:mod:`sscjak.shared.secure_aggregation`). If a node does not answer, refuses, or
answers something malformed, the masks of the others do not cancel, so the coordinator
reruns with the nodes that did answer and a fresh nonce — never below ``min_nodes`` and
at most ``max_attempts`` times in all. Masked replies of an incomplete attempt are
discarded, never combined across attempts.

How messages travel is a :class:`Transport`: Flower's Grid in deployment (the Flower
ServerApp), :class:`InProcessTransport` for ``simulate`` and tests.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sscjak.shared.cli_support import UserError
from sscjak.shared.plan import Plan
from sscjak.shared.protocol import (
    NONCE_BYTES,
    UNMASKING_CONFIRMED,
    UNMASKING_PAIRWISE,
    AnalysisReply,
    AnalysisRequest,
    Payload,
    ProtocolError,
    Refusal,
    UnmaskReply,
    UnmaskRequest,
    decode_reply,
    encode_request,
    encode_unmask_request,
)
from sscjak.shared.roster import Roster
from sscjak.shared.secure_aggregation import remove_self_masks, sum_masked
from sscjak.shared.summary_layout import SummaryLayout

#: Smallest participant set the protocol allows (docs/secure-aggregation.md).
MIN_NODES = 3


class Transport(Protocol):
    """Delivers one request per node and collects the answers of one exchange."""

    def exchange(self, requests: dict[str, Payload], timeout: float) -> dict[str, Payload]:
        """Send ``requests[name]`` to each node; return node name → reply payload.

        A node that did not answer within ``timeout`` seconds is simply absent from the
        result. Must not raise for a single node's failure.
        """
        ...


class InProcessTransport:
    """Calls each node's handler directly (``simulate`` and tests): no network at all.

    ``handlers`` maps a node name to a function taking the request payload and
    returning the reply payload, typically
    ``functools.partial(handle_analysis_request, node=context)``. A name missing from
    ``handlers`` (or listed in :attr:`unreachable`) behaves like a node that dropped out.
    """

    def __init__(
        self, handlers: Mapping[str, Callable[[Payload], Payload]], *, workers: int = 4
    ) -> None:
        self.handlers = dict(handlers)
        self.unreachable: set[str] = set()
        self.sent: list[dict[str, Payload]] = []
        self.workers = workers

    def exchange(self, requests: dict[str, Payload], timeout: float) -> dict[str, Payload]:
        """Call the handlers, ``workers`` at a time (nodes wait on their own disk syncs)."""
        self.sent.append(dict(requests))
        reachable = {
            name: self.handlers[name]
            for name in requests
            if name in self.handlers and name not in self.unreachable
        }
        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            futures = {
                name: pool.submit(handler, requests[name]) for name, handler in reachable.items()
            }
            return {name: future.result() for name, future in futures.items()}


@dataclass(frozen=True)
class RoundProgress:
    """What one attempt gave: nodes answered out of those asked, and why others did not."""

    attempt: int
    participants: tuple[str, ...]
    answered: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    malformed: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.answered) == len(self.participants)

    def describe(self) -> str:
        """One line for the console: ``attempt 1: 3/4 nodes answered; …``."""
        text = (
            f"attempt {self.attempt}: {len(self.answered)}/{len(self.participants)} nodes answered"
        )
        details = [f"{n} refused: {r}" for n, r in sorted(self.refused.items())]
        details += [f"{n} did not answer" for n in self.missing]
        details += [f"{n} sent an invalid reply: {r}" for n, r in sorted(self.malformed.items())]
        return text + ("; " + "; ".join(details) if details else "")


@dataclass(frozen=True)
class SecureRoundResult:
    """The pooled summary and how it was obtained."""

    pooled: np.ndarray
    participants: list[str]
    attempts: int
    excluded: dict[str, str] = field(default_factory=dict)
    history: list[RoundProgress] = field(default_factory=list)


class SecureRoundError(UserError):
    """The analysis could not be completed (too few nodes answered)."""


def run_secure_analysis(
    transport: Transport,
    plan: Plan,
    roster: Roster,
    *,
    participants: list[str] | None = None,
    min_nodes: int = MIN_NODES,
    max_attempts: int = 3,
    timeout: float = 120.0,
    progress: Callable[[RoundProgress], None] | None = None,
    confirmed_unmasking: bool = False,
) -> SecureRoundResult:
    """Run the plan on the roster's nodes; return the pooled summary (int64, exact).

    Parameters
    ----------
    transport : how requests reach the nodes (:class:`Transport`).
    plan : the analysis plan; its canonical text and hash travel with the request.
    roster : the study roster; its hash travels with the request and each node checks
        it against the roster its centre pinned at approval.
    participants : who to ask first; default every roster member.
    min_nodes : default 3, never lower: below it a rerun is not attempted.
    max_attempts : default 3. Attempts in all (first run and reruns). Each rerun after
        a dropout gives the coordinator one more sum over a smaller set; nodes cap the
        answers they give per plan too (docs/secure-aggregation.md).
    timeout : seconds to wait for the answers of one attempt.
    progress : called with a :class:`RoundProgress` after every attempt.
    confirmed_unmasking : default False (one exchange). When True, nodes add a
        self-mask, and after a round every participant answered a second exchange asks
        each for its seed; nodes reveal it once per approved plan, so a coordinator can
        never obtain two unmasked sums of one plan (the lying-about-dropout attack,
        docs/secure-aggregation.md §5). Costs a second exchange; a node lost between the
        two exchanges ends the analysis (the centres must approve the plan again).

    Raises
    ------
    SecureRoundError : fewer than ``min_nodes`` nodes left, attempts exhausted, or (in
        confirmed mode) a node did not reveal its self-mask seed.
    """
    if min_nodes < MIN_NODES:
        raise ValueError(f"min_nodes must be at least {MIN_NODES}")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    asked = sorted(set(roster.names if participants is None else participants))
    outside = [name for name in asked if name not in roster]
    if outside:
        raise SecureRoundError(f"not in the study roster: {', '.join(outside)}")
    vector_length = SummaryLayout.for_plan(plan).length
    excluded: dict[str, str] = {}
    history: list[RoundProgress] = []
    for attempt in range(1, max_attempts + 1):
        if len(asked) < min_nodes:
            raise SecureRoundError(_too_few(asked, min_nodes, excluded))
        request = AnalysisRequest(
            plan_sha256=plan.sha256,
            plan_toml=plan.canonical_toml,
            roster_sha256=roster.sha256,
            participants=tuple(asked),
            nonce=secrets.token_hex(NONCE_BYTES),
            attempt=attempt,
            unmasking=UNMASKING_CONFIRMED if confirmed_unmasking else UNMASKING_PAIRWISE,
        )
        payload = encode_request(request)
        replies = transport.exchange({name: dict(payload) for name in asked}, timeout)
        outcome = _collect(replies, request, vector_length)
        history.append(outcome.progress)
        if progress is not None:
            progress(outcome.progress)
        if outcome.progress.complete:
            pooled = sum_masked(outcome.masked[name] for name in asked)
            if confirmed_unmasking:
                pooled = _unmask(transport, request, pooled, timeout)
            return SecureRoundResult(
                pooled=pooled,
                participants=list(asked),
                attempts=attempt,
                excluded=excluded,
                history=history,
            )
        excluded.update(outcome.progress.refused)
        excluded.update(outcome.progress.malformed)
        excluded.update({name: "did not answer" for name in outcome.progress.missing})
        asked = list(outcome.progress.answered)
    raise SecureRoundError(
        f"no complete round after {max_attempts} attempts; "
        + "; ".join(f"{n}: {r}" for n, r in sorted(excluded.items()))
    )


def _unmask(
    transport: Transport, request: AnalysisRequest, pooled: np.ndarray, timeout: float
) -> np.ndarray:
    """Second exchange of confirmed unmasking: collect every seed, remove the self-masks."""
    unmask = encode_unmask_request(
        UnmaskRequest(
            plan_sha256=request.plan_sha256,
            nonce=request.nonce,
            participants=request.participants,
        )
    )
    replies = transport.exchange({name: dict(unmask) for name in request.participants}, timeout)
    seeds: list[bytes] = []
    problems: list[str] = []
    for name in request.participants:
        if name not in replies:
            problems.append(f"{name} did not answer")
            continue
        try:
            reply = decode_reply(replies[name])
        except ProtocolError as error:
            problems.append(f"{name} sent an invalid reply: {str(error)[:200]}")
            continue
        if isinstance(reply, Refusal):
            problems.append(f"{name} refused: {reply.reason}")
        elif (
            not isinstance(reply, UnmaskReply)
            or reply.node != name
            or reply.nonce != request.nonce
            or reply.plan_sha256 != request.plan_sha256
        ):
            problems.append(f"{name} sent a reply for another round")
        else:
            seeds.append(reply.self_mask_seed)
    if problems:
        raise SecureRoundError(
            "confirmed unmasking incomplete, the pooled sum stays masked; the centres that "
            "revealed their seed must approve the plan again before a new analysis: "
            + "; ".join(problems)
        )
    return remove_self_masks(pooled, seeds)


@dataclass
class _AttemptOutcome:
    progress: RoundProgress
    masked: dict[str, np.ndarray]


def _collect(
    replies: Mapping[str, Any], request: AnalysisRequest, vector_length: int
) -> _AttemptOutcome:
    answered: list[str] = []
    refused: dict[str, str] = {}
    malformed: dict[str, str] = {}
    masked: dict[str, np.ndarray] = {}
    for name in request.participants:
        if name not in replies:
            continue
        try:
            reply = decode_reply(replies[name])
        except ProtocolError as error:
            malformed[name] = str(error)[:300]
            continue
        if reply.node != name:
            malformed[name] = f"reply signed as {reply.node!r}"
        elif isinstance(reply, Refusal):
            refused[name] = reply.reason
        elif not isinstance(reply, AnalysisReply):
            malformed[name] = "not an analysis reply"
        elif reply.plan_sha256 != request.plan_sha256 or reply.nonce != request.nonce:
            malformed[name] = "reply for another plan or attempt"
        elif len(reply.masked) != 8 * vector_length:
            malformed[name] = f"{len(reply.masked)} bytes, expected {8 * vector_length}"
        else:
            answered.append(name)
            masked[name] = reply.masked_vector()
    missing = tuple(
        n
        for n in request.participants
        if n not in answered and n not in refused and n not in malformed
    )
    return _AttemptOutcome(
        RoundProgress(
            attempt=request.attempt,
            participants=request.participants,
            answered=tuple(answered),
            refused=refused,
            missing=missing,
            malformed=malformed,
        ),
        masked,
    )


def _too_few(asked: list[str], min_nodes: int, excluded: dict[str, str]) -> str:
    reasons = "; ".join(f"{n}: {r}" for n, r in sorted(excluded.items()))
    return (
        f"only {len(asked)} node(s) left ({', '.join(asked) or 'none'}), at least {min_nodes} "
        f"are needed for secure aggregation" + (f"; {reasons}" if reasons else "")
    )
