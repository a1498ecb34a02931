"""The richest plan, end to end in process: vector sizes, and time per exchange.

Run: ``python bench/bench_richest_plan.py [--centres N] [--patients N] [--runs R]``
(default 10 centres, 5,000 patients in all, 3 runs).

Synthesizes the centres' folders (``sscjak-coordinator synthesize``'s cohort model),
then runs each plan the way ``simulate`` does, but with every node reading, validating,
deriving and summarising its own folder inside the handler (no precomputed summary):
the plan's secure sum and, for a heterogeneity plan, the random-effects secure sum, each
a masked exchange and an unmasking exchange, then ``build_results``. Plans: the
reference plan, and the richest a plan can ask for — every outcome at 12 and 24 months,
every time-to-event endpoint by drug on the month grid, and heterogeneity. Printed per
plan: words and bytes per node for each secure sum, and the wall time of each exchange
and of the results.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sscjak.coordinator.federation.plan_rounds import run_plan_rounds
from sscjak.coordinator.federation.secure_round import InProcessTransport
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.coordinator.synthetic.cohort_model import generate_cohort, split_into_centres
from sscjak.coordinator.synthetic.writers import write_centre
from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.shared.plan import TIME_TO_EVENT_ENDPOINTS, Plan, default_plan
from sscjak.shared.summary_layout import RandomEffectsLayout, SummaryLayout


class TimedTransport(InProcessTransport):
    """InProcessTransport that records each exchange's request kind and wall time."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.timings: list[tuple[str, float]] = []

    def exchange(self, requests, timeout):
        kind = next(iter(requests.values())).get("kind")
        started = time.perf_counter()
        try:
            return super().exchange(requests, timeout)
        finally:
            self.timings.append((str(kind), time.perf_counter() - started))


def richest_plan() -> Plan:
    """Every outcome, every endpoint by drug, heterogeneity: the longest useful vector."""
    return replace(
        default_plan(),
        title="richest plan",
        time_to_event=TIME_TO_EVENT_ENDPOINTS,
        by="jaki_drug",
        heterogeneity=True,
    )


def run_once(folders: list[Path], plan: Plan, root: Path) -> dict[str, object]:
    roster, nodes = prepare_simulated_nodes(folders, plan, root)
    handlers = {
        name: functools.partial(handle_analysis_request, node=node) for name, node in nodes.items()
    }
    transport = TimedTransport(handlers)
    started = time.perf_counter()
    rounds = run_plan_rounds(transport, plan, roster)
    secure = time.perf_counter() - started
    started = time.perf_counter()
    build_results(rounds.summary.pooled, plan, len(folders), rounds.random_effects)
    return {
        "exchanges": transport.timings,
        "secure_s": secure,
        "results_s": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centres", type=int, default=10)
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sscjak-bench-richest-") as scratch:
        root = Path(scratch)
        cohort = generate_cohort(args.patients, seed=7)
        folders = []
        for index, centre in enumerate(split_into_centres(cohort, args.centres, 7), start=1):
            folder = root / "data" / f"centre_{index}"
            write_centre(centre, folder)
            folders.append(folder)
        for name, plan in (("reference", default_plan()), ("richest", richest_plan())):
            words = SummaryLayout.for_plan(plan).length
            extra = RandomEffectsLayout.for_plan(plan).length if plan.heterogeneity else 0
            print(
                f"{name}: {words:,} words ({8 * words:,} bytes) per node"
                + (f", random-effects sum {extra} words ({8 * extra} bytes)" if extra else "")
            )
            for run in range(1, args.runs + 1):
                figures = run_once(folders, plan, root / "state" / f"{name}-{run}")
                steps = ", ".join(
                    f"{kind.split('/')[0].removeprefix('sscjak.')} {seconds:.2f} s"
                    for kind, seconds in figures["exchanges"]
                )
                print(
                    f"  run {run}: secure sums {figures['secure_s']:.2f} s ({steps}); "
                    f"results {figures['results_s']:.2f} s"
                )


if __name__ == "__main__":
    main()
