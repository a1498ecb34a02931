"""One plan, one analysis: the secure sum of the summary vectors, and for a heterogeneity
plan the random-effects secure sum that follows it.

The random-effects weights 1/(v + τ²) depend on τ², which the coordinator learns only
from the first pooled sum; so a plan with ``heterogeneity = true`` takes a second secure
sum (a masked exchange and an unmasking exchange, like the first) over the same
participant set, carrying one τ² per change cell. Each node answers one τ² per estimate
and release epoch (docs/secure-aggregation.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sscjak.coordinator.federation.round_settings import DEFAULT_ROUND_SETTINGS, RoundSettings
from sscjak.coordinator.federation.secure_round import (
    RoundProgress,
    SecureRoundResult,
    Transport,
    run_secure_analysis,
)
from sscjak.coordinator.results.heterogeneity import RandomEffectsRound, tau2_per_cell
from sscjak.coordinator.results.pooled_consistency import check_pooled_summary
from sscjak.shared.disclosure import MIN_HETEROGENEITY_CENTRES
from sscjak.shared.plan import Plan
from sscjak.shared.roster import Roster
from sscjak.shared.summary_layout import SummaryLayout


@dataclass(frozen=True)
class PlanRounds:
    """The plan's secure sum, and the random-effects one for a heterogeneity plan."""

    summary: SecureRoundResult
    random_effects: RandomEffectsRound | None


def run_plan_rounds(
    transport: Transport,
    plan: Plan,
    roster: Roster,
    *,
    participants: list[str] | None = None,
    settings: RoundSettings = DEFAULT_ROUND_SETTINGS,
    progress: Callable[[RoundProgress], None] | None = None,
) -> PlanRounds:
    """Run the plan's secure sum(s); the first pooled vector is checked before any τ² is
    computed from it (InconsistentPooledSummaryError), so no node can steer τ² with terms
    no honest centre produces."""
    summary = run_secure_analysis(
        transport, plan, roster, participants=participants, settings=settings, progress=progress
    )
    if not plan.heterogeneity or len(summary.participants) < MIN_HETEROGENEITY_CENTRES:
        return PlanRounds(summary, None)  # too few centres: every row is suppressed
    check_pooled_summary(summary.pooled, SummaryLayout.for_plan(plan), len(summary.participants))
    tau2 = tau2_per_cell(summary.pooled, plan)
    second = run_secure_analysis(
        transport,
        plan,
        roster,
        participants=summary.participants,
        settings=settings,
        progress=progress,
        tau2=tau2,
        keep_participants=True,
    )
    return PlanRounds(summary, RandomEffectsRound(tau2, second.pooled))
