"""The coordinator's side of a secure analysis: two exchanges, retries after dropouts.

:func:`run_secure_analysis` sends every node of the participant set S the same analysis
request (plan, S, fresh nonce) and collects the doubly masked summaries; when every
member of S answered, it asks each for its self-mask seed (the unmasking exchange),
checks every seed against the commitment sent with the summary, adds the masked
vectors modulo 2**64 and removes the self-masks: only the pooled summary appears
(:mod:`sscjak.shared.secure_aggregation`).

Dropouts. Before any seed was revealed, a node that does not answer, refuses, or
answers something malformed is left out and the others are asked again with a fresh
nonce (nothing was unmasked, so nothing is lost) — never below ``min_nodes``. Once a
seed was revealed for S, S is kept: the nodes pinned their release epoch to S and would
refuse any other set, so a node lost between the two exchanges is waited for and the
same S asked again with a fresh nonce. Masked replies of an incomplete attempt are
discarded, never combined across attempts; they stay self-masked for good.

How messages travel is a :class:`Transport`: Flower's Grid in deployment (the Flower
ServerApp), :class:`InProcessTransport` for ``simulate`` and tests.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from sscjak.coordinator.federation.round_settings import DEFAULT_ROUND_SETTINGS, RoundSettings
from sscjak.shared.errors import SscjakError
from sscjak.shared.plan import Plan
from sscjak.shared.protocol import (
    NONCE_BYTES,
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
from sscjak.shared.secure_aggregation import remove_self_masks, self_mask_commitment, sum_masked
from sscjak.shared.summary_layout import RandomEffectsLayout, SummaryLayout

#: Exchange names used in progress reports.
SUMMARIES = "summaries"
SEEDS = "seeds"
RANDOM_EFFECTS = "random-effects"
RANDOM_EFFECTS_SEEDS = "random-effects-seeds"
#: What a progress line says has happened in each exchange.
EXCHANGE_WORDS: dict[str, str] = {
    SUMMARIES: "nodes answered",
    SEEDS: "seeds revealed",
    RANDOM_EFFECTS: "random-effects sums answered",
    RANDOM_EFFECTS_SEEDS: "random-effects seeds revealed",
}


class Transport(Protocol):
    """Delivers one request per node and collects the answers of one exchange."""

    def exchange(self, requests: dict[str, Payload], timeout: float) -> dict[str, Payload]:
        """Send ``requests[name]`` to each node; return node name → reply payload.

        A node that did not answer within ``timeout`` seconds is simply absent from the
        result. Must not raise for a single node's failure.
        """
        ...

    def wait_for(self, names: list[str], timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every named node is reachable."""
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

    def wait_for(self, names: list[str], timeout: float) -> bool:
        """Whether every named node is reachable now (in process nobody comes back later)."""
        return all(name in self.handlers and name not in self.unreachable for name in names)


@dataclass(frozen=True)
class RoundProgress:
    """What one exchange of an attempt gave: nodes that answered, and why others did not.

    ``exchange`` is :data:`SUMMARIES` (the masked summaries) or :data:`SEEDS` (the
    unmasking exchange), or their random-effects counterparts.
    """

    attempt: int
    participants: tuple[str, ...]
    answered: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    malformed: dict[str, str] = field(default_factory=dict)
    exchange: str = SUMMARIES

    @property
    def complete(self) -> bool:
        return len(self.answered) == len(self.participants)

    def describe(self) -> str:
        """One line for the console: ``attempt 1: 3/4 nodes answered; …``."""
        what = EXCHANGE_WORDS[self.exchange]
        text = f"attempt {self.attempt}: {len(self.answered)}/{len(self.participants)} {what}"
        by_reason: dict[str, list[str]] = {}
        for name, reason in sorted(self.refused.items()):
            by_reason.setdefault(f"refused: {reason}", []).append(name)
        for name in self.missing:
            by_reason.setdefault("did not answer", []).append(name)
        for name, reason in sorted(self.malformed.items()):
            by_reason.setdefault(f"sent an invalid reply: {reason}", []).append(name)
        details = [f"{', '.join(names)} {reason}" for reason, names in by_reason.items()]
        return text + ("; " + "; ".join(details) if details else "")

    def problems(self) -> dict[str, str]:
        """Node → why it did not answer, for every node that did not."""
        problems = dict(self.refused)
        problems.update(self.malformed)
        problems.update({name: "did not answer" for name in self.missing})
        return problems


@dataclass(frozen=True)
class SecureRoundResult:
    """The pooled summary and how it was obtained."""

    pooled: np.ndarray
    participants: list[str]
    attempts: int
    excluded: dict[str, str] = field(default_factory=dict)
    history: list[RoundProgress] = field(default_factory=list)


class SecureRoundError(SscjakError, RuntimeError):
    """The analysis could not be completed (too few nodes, or the unmasking failed)."""


def run_secure_analysis(
    transport: Transport,
    plan: Plan,
    roster: Roster,
    *,
    participants: list[str] | None = None,
    settings: RoundSettings = DEFAULT_ROUND_SETTINGS,
    progress: Callable[[RoundProgress], None] | None = None,
    tau2: tuple[float, ...] | None = None,
    keep_participants: bool = False,
) -> SecureRoundResult:
    """Run the plan on the roster's nodes; return the pooled summary (int64, exact).

    Parameters
    ----------
    transport : how requests reach the nodes (:class:`Transport`).
    plan : the analysis plan; its canonical text and hash travel with the request.
    roster : the study roster; its hash travels with the request and each node checks
        it against the roster its centre pinned at approval.
    participants : who to ask first; default every roster member.
    settings : timeout, attempts and fewest nodes
        (:class:`~sscjak.coordinator.federation.round_settings.RoundSettings`).
    progress : called with a :class:`RoundProgress` after every exchange.
    tau2 : for the random-effects secure sum of a heterogeneity plan, one τ² per change
        cell; the nodes then answer with the random-effects vector
        (:class:`~sscjak.shared.summary_layout.RandomEffectsLayout`).
    keep_participants : never leave a node out: a lost node is waited for and the same
        set asked again (the random-effects sum must be over the first sum's set).

    Notes
    -----
    A node refuses to reveal its seed for any set but the one its release epoch is
    pinned to, so whatever this function (or a dishonest coordinator) claims about
    dropouts, at most one participant set's sums can ever be unmasked per epoch.

    Raises
    ------
    SecureRoundError : fewer than ``min_nodes`` nodes left, attempts exhausted, a node
        refused to reveal its seed, or a revealed seed did not match its commitment.
    """
    min_nodes, max_attempts, timeout = (
        settings.min_nodes,
        settings.max_attempts,
        settings.timeout,
    )
    asked = sorted(set(roster.names if participants is None else participants))
    outside = [name for name in asked if name not in roster]
    if outside:
        raise SecureRoundError(f"not in the study roster: {', '.join(outside)}")
    layout = SummaryLayout if tau2 is None else RandomEffectsLayout
    vector_length = layout.for_plan(plan).length
    excluded: dict[str, str] = {}
    history: list[RoundProgress] = []
    set_is_pinned = keep_participants

    def report(outcome: RoundProgress) -> None:
        history.append(outcome)
        if progress is not None:
            progress(outcome)

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
            tau2=tau2,
        )
        replies = transport.exchange(
            {name: encode_request(request) for name in asked}, timeout
        )
        summaries = _collect_summaries(replies, request, vector_length)
        if tau2 is not None:
            summaries.progress = replace(summaries.progress, exchange=RANDOM_EFFECTS)
        report(summaries.progress)
        if not summaries.progress.complete:
            excluded.update(summaries.progress.problems())
            if not set_is_pinned:
                asked = list(summaries.progress.answered)
            elif attempt < max_attempts:
                _wait_for_lost(transport, summaries.progress, timeout)
            continue
        seeds = _collect_seeds(transport, request, summaries.commitments, timeout)
        if tau2 is not None:
            seeds.progress = replace(seeds.progress, exchange=RANDOM_EFFECTS_SEEDS)
        report(seeds.progress)
        if seeds.progress.complete:
            pooled = remove_self_masks(
                sum_masked(summaries.masked[name] for name in asked),
                (seeds.seeds[name] for name in asked),
            )
            return SecureRoundResult(
                pooled=pooled,
                participants=list(asked),
                attempts=attempt,
                excluded={n: r for n, r in excluded.items() if n not in asked},
                history=history,
            )
        if seeds.progress.refused or seeds.progress.malformed:
            raise SecureRoundError(
                "the unmasking exchange failed, the pooled sum stays masked: "
                + _grouped(seeds.progress.problems())
            )
        # Someone revealed for this set: only this set can be unmasked from now on.
        set_is_pinned = True
        excluded.update(seeds.progress.problems())
        if attempt < max_attempts:
            _wait_for_lost(transport, seeds.progress, timeout)
    raise SecureRoundError(
        f"no complete analysis after {max_attempts} attempts; " + _grouped(excluded)
    )


def _wait_for_lost(transport: Transport, outcome: RoundProgress, timeout: float) -> None:
    """Give the nodes that did not answer ``timeout`` seconds to come back (before a next
    attempt only: after the last one, waiting would only delay the failure)."""
    lost = sorted(outcome.problems())
    wait_for = getattr(transport, "wait_for", None)
    if wait_for is not None and lost:
        wait_for(lost, timeout)


@dataclass
class _Summaries:
    progress: RoundProgress
    masked: dict[str, np.ndarray]
    commitments: dict[str, str]


@dataclass
class _Seeds:
    progress: RoundProgress
    seeds: dict[str, bytes]


def _collect_summaries(
    replies: Mapping[str, Any], request: AnalysisRequest, vector_length: int
) -> _Summaries:
    """The first exchange's replies: each node's masked summary and seed commitment."""

    def problem(reply: AnalysisReply | UnmaskReply) -> str | None:
        if not isinstance(reply, AnalysisReply):
            return "not an analysis reply"
        if reply.plan_sha256 != request.plan_sha256 or reply.nonce != request.nonce:
            return "reply for another plan or attempt"
        if len(reply.masked) != 8 * vector_length:
            return f"{len(reply.masked)} bytes, expected {8 * vector_length}"
        return None

    progress, accepted = _sort_replies(replies, request, SUMMARIES, problem)
    summaries = {n: r for n, r in accepted.items() if isinstance(r, AnalysisReply)}
    return _Summaries(
        progress,
        {name: reply.masked_vector() for name, reply in summaries.items()},
        {name: reply.self_mask_commitment for name, reply in summaries.items()},
    )


def _collect_seeds(
    transport: Transport,
    request: AnalysisRequest,
    commitments: Mapping[str, str],
    timeout: float,
) -> _Seeds:
    """The unmasking exchange: every participant's seed, each checked against its commitment."""
    unmask = UnmaskRequest(
        plan_sha256=request.plan_sha256,
        roster_sha256=request.roster_sha256,
        nonce=request.nonce,
        participants=request.participants,
    )
    replies = transport.exchange(
        {name: encode_unmask_request(unmask) for name in request.participants}, timeout
    )

    def problem(reply: AnalysisReply | UnmaskReply) -> str | None:
        if (
            not isinstance(reply, UnmaskReply)
            or reply.nonce != request.nonce
            or reply.plan_sha256 != request.plan_sha256
        ):
            return "not the seed of this attempt"
        if self_mask_commitment(reply.self_mask_seed) != commitments[reply.node]:
            return (
                "revealed a self-mask seed that does not match the commitment it sent "
                "with its summary"
            )
        return None

    progress, accepted = _sort_replies(replies, request, SEEDS, problem)
    return _Seeds(
        progress,
        {n: r.self_mask_seed for n, r in accepted.items() if isinstance(r, UnmaskReply)},
    )


def _sort_replies(
    replies: Mapping[str, Any],
    request: AnalysisRequest,
    exchange: str,
    problem: Callable[[AnalysisReply | UnmaskReply], str | None],
) -> tuple[RoundProgress, dict[str, AnalysisReply | UnmaskReply]]:
    """Decode each participant's reply: accepted, refused, malformed (``problem``) or absent."""
    answered: list[str] = []
    refused: dict[str, str] = {}
    malformed: dict[str, str] = {}
    accepted: dict[str, AnalysisReply | UnmaskReply] = {}
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
        elif (found := problem(reply)) is not None:
            malformed[name] = found
        else:
            answered.append(name)
            accepted[name] = reply
    return _progress(request, answered, refused, malformed, exchange), accepted


def _progress(
    request: AnalysisRequest,
    answered: list[str],
    refused: dict[str, str],
    malformed: dict[str, str],
    exchange: str,
) -> RoundProgress:
    missing = tuple(
        n
        for n in request.participants
        if n not in answered and n not in refused and n not in malformed
    )
    return RoundProgress(
        attempt=request.attempt,
        participants=request.participants,
        answered=tuple(answered),
        refused=refused,
        missing=missing,
        malformed=malformed,
        exchange=exchange,
    )


def _grouped(excluded: dict[str, str]) -> str:
    """``a, b: reason; c: other reason`` — nodes that gave the same reason named together."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in sorted(excluded.items()):
        by_reason.setdefault(reason, []).append(name)
    return "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())


def _too_few(asked: list[str], min_nodes: int, excluded: dict[str, str]) -> str:
    reasons = _grouped(excluded)
    return (
        f"only {len(asked)} node(s) left ({', '.join(asked) or 'none'}), at least {min_nodes} "
        f"are needed for secure aggregation" + (f"; {reasons}" if reasons else "")
    )
