"""In-process pooled analysis over local centre folders (``sscjak-coordinator simulate``).

Each folder becomes one in-process node with its own throw-away state directory
(identity, X25519 key, approval, ledger, audit log). The pooled summary is obtained
through the same secure round as in deployment: the coordinator's
:func:`~sscjak.coordinator.federation.secure_round.run_secure_analysis` sends the analysis request,
every node's ClientApp message path
(:func:`~sscjak.node.flower.client_app.answer_payload_in_process`, the same code a
deployed node runs) checks it, masks its summary with pairwise masks and replies, and the
coordinator adds the masked vectors — only the transport differs
(:class:`InProcessTransport`: direct calls, no network).

simulate **approves the plan automatically** at every simulated node: the person
running simulate is the data steward of every folder, on their own machine, so the
approval step has nobody else to protect (see
:mod:`sscjak.node.guard.simulated_centres`). Real nodes are approved with
``sscjak-node approve``.

This is the one coordinator module that imports ``sscjak.node``: in a simulation the
coordinator process also plays every node.
"""

from __future__ import annotations

import functools
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sscjak.coordinator.federation.round_settings import RoundSettings
from sscjak.coordinator.federation.secure_round import InProcessTransport, run_secure_analysis
from sscjak.coordinator.results.heterogeneity import RandomEffectsRound, tau2_per_cell
from sscjak.coordinator.results.pooled_consistency import check_pooled_summary
from sscjak.node.data.centre_reader import CentreDataError
from sscjak.node.flower.client_app import answer_payload_in_process
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.node.summarise.summary_vector import summarise_centre
from sscjak.shared.disclosure import MIN_HETEROGENEITY_CENTRES
from sscjak.shared.errors import SscjakError
from sscjak.shared.plan import Plan
from sscjak.shared.protocol import MIN_PARTICIPANTS
from sscjak.shared.summary_layout import SummaryLayout


class CentreFoldersError(SscjakError, ValueError):
    """One or more local centre folders break the contract; the message lists every
    problem of every folder."""


def centre_summaries(folders: Sequence[Path], plan: Plan) -> list[np.ndarray]:
    """Each folder's summary vector; every problem of every folder in one
    :class:`CentreFoldersError`."""
    vectors: list[np.ndarray] = []
    failures: list[str] = []
    for folder in folders:
        try:
            vectors.append(summarise_centre(folder, plan))
        except CentreDataError as error:
            lines = "\n".join(f"  {problem}" for problem in error.problems)
            failures.append(f"{folder}: {len(error.problems)} problem(s)\n{lines}")
    if failures:
        raise CentreFoldersError("centre data not valid:\n" + "\n".join(failures))
    return vectors


def pool_centre_summaries(folders: Sequence[Path], plan: Plan) -> tuple[np.ndarray, int]:
    """(pooled vector, number of centres) through one in-process secure round.

    Every folder is first read and summarised by the node code, so that all data
    problems of all folders are reported together before any round starts; each
    simulated node then answers the round with that summary, masked.

    The protocol never pools fewer than 3 centres. With 1 or 2 folders — all of them on
    this machine, in the hands of the person running simulate — there is nobody to hide
    a summary from, so the summaries are added directly and a note says so on stderr;
    the numbers are the same either way.
    """
    folders = [Path(folder) for folder in folders]
    vectors = centre_summaries(folders, plan)
    if len(folders) < MIN_PARTICIPANTS:
        print(
            f"note: secure aggregation needs at least {MIN_PARTICIPANTS} nodes; "
            f"with {len(folders)} "
            "local folder(s) the summaries are added directly (nothing leaves this machine)",
            file=sys.stderr,
        )
        return np.sum(np.stack(vectors), axis=0, dtype=np.int64), len(vectors)
    summaries = {folder: vector for folder, vector in zip(folders, vectors, strict=True)}

    def summarise(folder: Path, _plan: Plan) -> np.ndarray:
        # the node code already summarised this folder above (same plan)
        return summaries[folder]

    with tempfile.TemporaryDirectory(prefix="sscjak-simulate-") as state_root:
        roster, nodes = prepare_simulated_nodes(
            folders, plan, Path(state_root), summarise=summarise
        )
        transport = InProcessTransport(
            {
                name: functools.partial(answer_payload_in_process, node=node)
                for name, node in nodes.items()
            }
        )
        result = run_secure_analysis(
            transport, plan, roster, settings=RoundSettings(max_attempts=1)
        )
    return result.pooled, len(result.participants)


def pool_random_effects(
    folders: Sequence[Path], plan: Plan, pooled: np.ndarray
) -> RandomEffectsRound | None:
    """The random-effects secure sum of a heterogeneity plan, after
    :func:`pool_centre_summaries` gave ``pooled`` over the same ``folders``.

    ``pooled`` is checked first (InconsistentPooledSummaryError); τ² per cell comes from
    it. ``None`` with fewer folders than a heterogeneity result needs (every row is
    suppressed then, and nodes refuse the exchange).
    """
    folders = [Path(folder) for folder in folders]
    check_pooled_summary(pooled, SummaryLayout.for_plan(plan), len(folders))
    if len(folders) < MIN_HETEROGENEITY_CENTRES:
        return None
    tau2 = tau2_per_cell(pooled, plan)
    with tempfile.TemporaryDirectory(prefix="sscjak-simulate-") as state_root:
        roster, nodes = prepare_simulated_nodes(folders, plan, Path(state_root))
        transport = InProcessTransport(
            {
                name: functools.partial(answer_payload_in_process, node=node)
                for name, node in nodes.items()
            }
        )
        result = run_secure_analysis(
            transport, plan, roster, settings=RoundSettings(max_attempts=1), tau2=tau2
        )
    return RandomEffectsRound(tau2, result.pooled)
